# shellcheck shell=bash
# Pinned versions of the tools kimia builds, tests and ships with.
# Sourced by the other hack/ scripts and read by the Makefile.
BUILDKIT_VERSION=v0.34.2
COSIGN_VERSION=v2.6.5
# Where expensive-to-build tools are cached, keyed by version.
# Not KIMIA_CACHE: KIMIA_<FLAG> variables set kimia's flags (KIMIA_CACHE is --cache).
KIMIA_DEV_CACHE="${KIMIA_DEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kimia}"
KIMIA_TOOLS="${KIMIA_DEV_CACHE}/tools"
# The performance peer of bench/ (not needed by the tests).
KANIKO_VERSION=v1.23.2
