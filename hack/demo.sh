#!/usr/bin/env bash
# kimia's main job, end to end, on a fresh Debian 12 machine: install what
# is needed, build both binaries, start an embedded registry, build
# examples/hello with kimia (BuildKit) and kimia-bud (Buildah), push, and
# print the digests.
set -euo pipefail
cd "$(dirname "$0")/.."
KIMIA_SETUP_COSIGN=0 bash hack/setup.sh
make build
go run ./hack/demo
