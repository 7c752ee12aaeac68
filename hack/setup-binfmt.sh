#!/usr/bin/env bash
# Registers QEMU user-mode emulators with binfmt_misc, so that RUN steps of
# foreign-architecture builds (--platform=linux/arm64 on an amd64 machine)
# execute. Idempotent; needs root (it changes kernel state, not files).
#
# Debian's qemu-user-static registers its handlers with the F (fix binary)
# flag: the kernel opens the emulator when the handler is registered, so it
# also runs inside build containers whose root filesystem lacks it.
# binfmt_misc is not always mounted at boot (containers, minimal VMs).
set -euo pipefail
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
mnt=/proc/sys/fs/binfmt_misc

if ! command -v update-binfmts >/dev/null 2>&1 || [ ! -e /usr/share/binfmts/qemu-aarch64 ]; then
  echo "setup-binfmt: installing qemu-user-static and binfmt-support" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-user-static binfmt-support >/dev/null
fi

if [ ! -e "$mnt/status" ]; then
  $SUDO mount -t binfmt_misc binfmt_misc "$mnt"
fi

# Import and enable every format binfmt-support knows (qemu-* among them).
# update-binfmts fails on entries that are already registered, so enable
# only what is missing.
missing=0
for f in /usr/share/binfmts/qemu-*; do
  name=$(basename "$f")
  if [ ! -e "$mnt/$name" ]; then
    $SUDO update-binfmts --import "$name" >/dev/null 2>&1 || true
    $SUDO update-binfmts --enable "$name" >/dev/null 2>&1 || missing=1
  fi
done

# The handlers kimia's multi-platform builds and tests use must be there,
# enabled, with the F flag.
for name in qemu-aarch64 qemu-arm; do
  entry="$mnt/$name"
  if ! grep -q '^enabled' "$entry" 2>/dev/null || ! grep -q '^flags:.*F' "$entry"; then
    echo "setup-binfmt: $name is not registered with the F flag (see $entry)" >&2
    exit 1
  fi
done
[ "$missing" = 0 ] || echo "setup-binfmt: some handlers could not be enabled; the ones kimia needs are in place" >&2
echo "setup-binfmt: QEMU handlers registered: $(cd "$mnt" && ls -d qemu-* | tr '\n' ' ')" >&2
