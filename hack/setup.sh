#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine to build and test kimia. Idempotent:
# each step skips what is already in place; buildkitd and cosign are built
# once and cached by version under ${KIMIA_DEV_CACHE:-~/.cache/kimia}.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/install-deps.sh"
if [ "${KIMIA_SETUP_BUILDKIT:-1}" = 1 ]; then
  bash "$here/install-buildkit.sh" >/dev/null
fi
bash "$here/fetch-test-assets.sh" >/dev/null
bash "$here/setup-test-user.sh"
if [ -f "$here/setup-binfmt.sh" ]; then
  bash "$here/setup-binfmt.sh"
fi
if [ "${KIMIA_SETUP_COSIGN:-1}" = 1 ]; then
  bash "$here/install-cosign.sh" >/dev/null
fi
