#!/usr/bin/env bash
# Make sure a redis-server binary is on this machine (Debian's `redis-server` package) and print
# its path. The rate-limit tests start their own server on a loopback port.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "redis-server not found; install Debian's redis-server package" >&2
    exit 1
  fi
  echo "installing Redis (Debian's redis-server package)…" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq redis-server >&2
fi
command -v redis-server
