#!/usr/bin/env bash
# Builds the cosign CLI (used by tests as the independent verifier of kimia's
# signatures) once, into the cache keyed by version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

dest="${KIMIA_TOOLS}/cosign-${COSIGN_VERSION}"
if [ -x "$dest/cosign" ]; then
  echo "$dest"
  exit 0
fi
echo "install-cosign: building cosign ${COSIGN_VERSION} (about 13 minutes cold, once)" >&2
mkdir -p "$dest.tmp"
GOBIN="$dest.tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
  "github.com/sigstore/cosign/v2/cmd/cosign@${COSIGN_VERSION}"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$dest"
