#!/usr/bin/env bash
# Install what tests/test_browser.py needs: Debian's chromium and the Python `playwright` package.
# Idempotent: each part is skipped when it is already there. We drive the system chromium
# (/usr/bin/chromium), so `playwright install` (its own browser download) is neither run nor needed.
#
# Usage: scripts/install_browser.sh            (inside the project's virtual environment, if any)
set -euo pipefail

CHROMIUM="${DGKIT_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "chromium: already installed ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"))"
else
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "chromium: missing, and this user cannot install system packages (not root, no sudo)." >&2
        echo "          Ask an administrator to run: apt-get install -y chromium" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "chromium: missing, and apt-get is not available; install chromium with your system's package manager" >&2
        echo "          (or set DGKIT_CHROMIUM to its executable)." >&2
        exit 1
    fi
    echo "chromium: installing with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
    "$CHROMIUM" --version
fi

PYTHON="${PYTHON:-python}"
if "$PYTHON" -c "import playwright" >/dev/null 2>&1; then
    echo "playwright: already installed ($("$PYTHON" -m pip show playwright 2>/dev/null | grep -i '^version' || true))"
else
    echo "playwright: installing from PyPI (no browser download: the system chromium is used)"
    "$PYTHON" -m pip install --quiet "playwright>=1.40"
fi

# The notebooks' widgets need these in the kernel's environment too (plotly's FigureWidget needs anywidget).
"$PYTHON" -c "import jupyterlab, ipywidgets, anywidget" 2>/dev/null \
    || "$PYTHON" -m pip install --quiet "jupyterlab>=4.0" "ipywidgets>=8.0" "anywidget>=0.9"

echo "browser check prerequisites are installed; run: python -m pytest -m browser tests/test_browser.py"
