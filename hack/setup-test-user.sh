#!/usr/bin/env bash
# Creates the unprivileged user the rootless end-to-end tests run kimia as,
# with subordinate uid/gid ranges for its user namespaces. Idempotent.
# UID 1000 often belongs to someone on a host, so the tests use their own.
set -euo pipefail
user=kimia-e2e
uid=1500
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
if ! id "$user" >/dev/null 2>&1; then
  $SUDO groupadd --gid "$uid" "$user"
  $SUDO useradd --uid "$uid" --gid "$uid" --create-home --shell /bin/sh "$user"
fi
for f in /etc/subuid /etc/subgid; do
  $SUDO touch "$f"
  if ! grep -q "^$user:" "$f"; then
    echo "$user:300000:65536" | $SUDO tee -a "$f" >/dev/null
  fi
done
