#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries are on this machine (Debian's `postgresql` package);
# prints the directory that holds initdb and pg_ctl. The test harness starts its own cluster.
set -euo pipefail
find_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}
if ! find_bindir >/dev/null; then
  "$(dirname "$0")/apt-install.sh" postgresql
fi
find_bindir
