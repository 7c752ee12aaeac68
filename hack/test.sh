#!/usr/bin/env bash
# Sets up the machine (idempotently) and runs kimia's whole test suite:
# formatting, vet, unit tests and the end-to-end tests against both
# binaries, a real registry, real BuildKit and Buildah, and real cosign.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
make test
