#!/usr/bin/env bash
# Install Debian packages the test harness needs (as root; elsewhere, say what is missing).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "missing: install Debian's $* package(s)" >&2
  exit 1
fi
echo "installing Debian's $*…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "$@" >&2
