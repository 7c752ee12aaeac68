#!/usr/bin/env bash
# Sets up the machine (idempotently) and runs kimia's whole test suite:
# formatting, vet, unit tests and the end-to-end tests against both
# binaries, a real registry, real BuildKit and Buildah, and real cosign.
#
# On a fresh machine most of the time goes into compiling: buildkitd and
# cosign (each cached by version after the first run) and kimia itself.
# Only kimia's build needs buildkitd and only the end-to-end tests need
# cosign, so both build in the background while the rest of the set-up,
# vet and the unit tests run: their module downloads and single-threaded
# links leave a core idle that the other work uses.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/install-deps.sh

logs=$(mktemp -d)
declare -A jobs
# Each build runs in a process group of its own, so that a failure here
# stops it (and its go processes) instead of leaving it running.
cleanup() {
  for pid in "${jobs[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
  rm -rf "$logs"
}
trap cleanup EXIT
for tool in buildkit cosign; do
  setsid bash "hack/install-$tool.sh" >"$logs/$tool" 2>&1 &
  jobs[$tool]=$!
done
# await TOOL waits for its background build and shows its log on failure.
await() {
  if ! wait "${jobs[$1]}"; then
    echo "hack/test.sh: building $1 failed:" >&2
    cat "$logs/$1" >&2
    exit 1
  fi
}

KIMIA_SETUP_BUILDKIT=0 KIMIA_SETUP_COSIGN=0 bash hack/setup.sh
make fmt vet unit
await buildkit
make build
await cosign
make e2e
