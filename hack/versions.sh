# shellcheck shell=bash
# Pinned versions of the tools kimia builds, tests and ships with.
# Sourced by the other hack/ scripts and read by the Makefile.
BUILDKIT_VERSION=v0.34.2
COSIGN_VERSION=v2.6.5
# Where expensive-to-build tools are cached, keyed by version.
KIMIA_CACHE="${KIMIA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kimia}"
KIMIA_TOOLS="${KIMIA_CACHE}/tools"
