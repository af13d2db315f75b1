#!/usr/bin/env bash
# Make sure a redis-server binary is on this machine (Debian's `redis-server` package) and print
# its path. The rate-limit tests start their own server on a loopback port.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  "$(dirname "$0")/apt-install.sh" redis-server
fi
command -v redis-server
