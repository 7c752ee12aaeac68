#!/usr/bin/env bash
# Installs the Debian 12 packages kimia needs to build and to be tested.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail

packages=(
  # building kimia-bud (cgo, seccomp)
  gcc pkg-config libseccomp-dev
  # running builds
  runc uidmap rootlesskit libcap2-bin git ca-certificates
  # multi-arch RUN under QEMU
  qemu-user-static binfmt-support
  # the test sandbox: a real registry, base images, inspection
  docker-registry busybox-static skopeo mmdebstrap util-linux
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's docker-registry package starts a registry on :5000 as a service;
# kimia's tests start their own on random loopback ports, so stop it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
