#!/usr/bin/env bash
# Makes, once, a Debian 12 minbase root filesystem tarball for tests and
# benchmarks that need a real distribution (useradd, bash, dpkg). Cached.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

out="${KIMIA_DEV_CACHE}/images/debian-bookworm-minbase-amd64.tar"
if [ -s "$out" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
echo "make-debian-rootfs: running mmdebstrap (a minute or two, once)" >&2
SOURCE_DATE_EPOCH=1700000000 mmdebstrap --quiet --variant=minbase --format=tar \
  --architectures=amd64 bookworm "$out.tmp" http://deb.debian.org/debian
mv "$out.tmp" "$out"
echo "$out"
