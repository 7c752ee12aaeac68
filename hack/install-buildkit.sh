#!/usr/bin/env bash
# Builds buildkitd and buildctl at the pinned version, once, into the cache
# keyed by version; later runs only link them into place.
# `go install` refuses buildkit (its go.mod has exclude directives), so build
# from inside the module cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

dest="${KIMIA_TOOLS}/buildkit-${BUILDKIT_VERSION}"
if [ -x "$dest/buildkitd" ] && [ -x "$dest/buildctl" ]; then
  echo "$dest"
  exit 0
fi
echo "install-buildkit: building buildkit ${BUILDKIT_VERSION} (several minutes, once)" >&2
mkdir -p "$dest.tmp"
export GOFLAGS=-mod=mod
go mod download "github.com/moby/buildkit@${BUILDKIT_VERSION}"
src=$(go env GOMODCACHE)/github.com/moby/buildkit@${BUILDKIT_VERSION}
(
  cd "$src"
  for cmd in buildkitd buildctl; do
    CGO_ENABLED=0 go build -trimpath -tags "osusergo netgo static_build" \
      -ldflags "-s -w -X github.com/moby/buildkit/version.Version=${BUILDKIT_VERSION}" \
      -o "$dest.tmp/$cmd" "./cmd/$cmd"
  done
)
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$dest"
