#!/usr/bin/env bash
# Builds Kaniko's executor, the performance peer of bench/, once into the
# cache keyed by version. Only the benchmarks use it; CI does not.
# `go install …@version` does not work through the module proxy here, so
# build from inside the module cache, as install-buildkit.sh does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

dest="${KIMIA_TOOLS}/kaniko-${KANIKO_VERSION}"
if [ -x "$dest/executor" ]; then
  echo "$dest"
  exit 0
fi
echo "install-kaniko: building Kaniko ${KANIKO_VERSION}'s executor (a few minutes, once)" >&2
mkdir -p "$dest.tmp"
export GOFLAGS=-mod=mod
go mod download "github.com/GoogleContainerTools/kaniko@${KANIKO_VERSION}"
src=$(go env GOMODCACHE)/github.com/!google!container!tools/kaniko@${KANIKO_VERSION}
(
  cd "$src"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dest.tmp/executor" ./cmd/executor
)
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$dest"
