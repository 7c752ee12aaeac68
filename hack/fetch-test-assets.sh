#!/usr/bin/env bash
# Fetches, once, what the tests need to make their offline base images:
# the arm64 busybox-static package (for multi-platform tests). Idempotent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

debs="${KIMIA_DEV_CACHE}/debs"
mkdir -p "$debs"
if ! ls "$debs"/busybox-static_*_arm64.deb >/dev/null 2>&1; then
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
  fi
  # Only the package lists change; nothing arm64 is installed.
  $SUDO apt-get update -qq
  (cd "$debs" && apt-get download -qq busybox-static:arm64)
fi
ls "$debs"/busybox-static_*_arm64.deb
