#!/usr/bin/env bash
# Make sure Debian's nginx is on this machine and print its binary's path. The edge tests run
# their own nginx (not as a daemon, in a temporary prefix, on a loopback port) in front of a
# real `codeshelf serve`; the package's own service is not needed and is not started here.
set -euo pipefail
find_nginx() {
  local path
  for path in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx; do
    [ -n "$path" ] && [ -x "$path" ] && { echo "$path"; return 0; }
  done
  return 1
}
if ! find_nginx >/dev/null; then
  # policy-rc.d 101: the package's post-install must not start a system nginx on port 80.
  if [ "$(id -u)" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  "$(dirname "$0")/apt-install.sh" nginx
fi
find_nginx
