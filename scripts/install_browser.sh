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
    # shellcheck source=scripts/apt_install.sh
    source "$(dirname "$0")/apt_install.sh"
    if ! apt_install chromium chromium; then
        echo "          (or set DGKIT_CHROMIUM to a chromium executable)" >&2
        exit 1
    fi
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
