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
# shellcheck source=scripts/apt_install.sh
source "$(dirname "$0")/apt_install.sh"
status=0
apt_install xvfb xvfb x11-apps || status=$?
if [ "$status" -eq 3 ]; then
    echo "      (the live window test skips until then)" >&2
    exit 0
fi
exit "$status"
