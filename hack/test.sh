#!/usr/bin/env bash
# Sets up the machine (idempotently) and runs kimia's whole test suite:
# formatting, vet, unit tests and the end-to-end tests against both
# binaries, a real registry, real BuildKit and Buildah, and real cosign.
#
# On a fresh machine most of the time goes into compiling: buildkitd,
# cosign (cached by version after the first run) and kimia itself. cosign
# is only needed by the end-to-end tests, so it builds alongside the rest
# of the set-up, the unit tests and kimia's own build; its link steps and
# module downloads leave a core idle that the other work uses.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/install-deps.sh
cosign_log=$(mktemp)
trap 'rm -f "$cosign_log"' EXIT
bash hack/install-cosign.sh >"$cosign_log" 2>&1 &
cosign_pid=$!
KIMIA_SETUP_COSIGN=0 bash hack/setup.sh
make fmt vet unit build
if ! wait "$cosign_pid"; then
  echo "hack/test.sh: building cosign failed:" >&2
  cat "$cosign_log" >&2
  exit 1
fi
make e2e
