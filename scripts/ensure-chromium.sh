#!/usr/bin/env bash
# Make sure Debian's Chromium is on this machine (the portal's browser tests drive it with
# Playwright); prints its path.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  "$(dirname "$0")/apt-install.sh" chromium
fi
command -v chromium
