#!/usr/bin/env bash
# Install what tests/test_live_desktop.py needs for the `dgkit live` window test: Debian's Xvfb (a virtual X
# display) and x11-apps (xwd, the screenshot tool). Idempotent; without them those tests skip with the reason.
#
# Usage: scripts/install_xvfb.sh
set -euo pipefail

if command -v Xvfb >/dev/null 2>&1 && command -v xwd >/dev/null 2>&1; then
    echo "xvfb: already installed ($(command -v Xvfb), $(command -v xwd))"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "xvfb: missing, and this user cannot install system packages; ask an administrator to run:" >&2
    echo "      apt-get install -y xvfb x11-apps   (the live window test skips until then)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "xvfb: missing and apt-get is not available; install Xvfb and xwd with your package manager" >&2
    exit 0
fi
echo "xvfb: installing xvfb and x11-apps with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends xvfb x11-apps
