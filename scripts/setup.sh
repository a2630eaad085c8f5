#!/usr/bin/env bash
# Set up dgkit and open the notebooks in JupyterLab.
#
#   scripts/setup.sh            create/refresh .venv/ at the repository root, then open JupyterLab on notebooks/
#   scripts/setup.sh --no-lab   only set up (what CI does)
#
# Environment variables:
#   PYTHON      interpreter used to create .venv (default: python3; needs 3.11+, what the pinned constraints support)
#   TORCH_SPEC  torch requirement installed first (default: torch==2.13.0, this machine's CPU wheel; on a CUDA
#               machine e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126").
#               An unpinned torch here would pull a multi-GB CUDA build, so it is installed explicitly, first.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
VENV_PY=.venv/bin/python
pip_install() { "$VENV_PY" -m pip install --disable-pip-version-check --progress-bar off "$@"; }

if [ ! -x "$VENV_PY" ]; then
    echo "dgkit setup: creating .venv/ with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
pip_install -q --upgrade "pip>=24"
# shellcheck disable=SC2086  # TORCH_SPEC may hold several words (a version and an index URL)
pip_install -q $TORCH_SPEC
# Exact versions of everything else (scripts/constraints.txt) so a fresh machine gets what CI tested.
# mediapipe pulls opencv-contrib-python, which shares the cv2/ folder with opencv-python: both are pinned
# to the same version there, so whichever is installed last, cv2 is complete.
pip_install -q -c scripts/constraints.txt -e ".[all]"
"$VENV_PY" -m pip check
"$VENV_PY" - <<'PY'
import cv2, mediapipe, torch, dgkit
from mediapipe.python.solutions import face_mesh  # noqa: F401  (the offline landmark backend)
print(f"dgkit setup: dgkit {dgkit.__version__}, torch {torch.__version__}, OpenCV {cv2.__version__}, "
      f"mediapipe {mediapipe.__version__}: ready")
PY
.venv/bin/dgkit weights status || true   # tells whether official weights are present (notebooks fall back)

if [ "${1:-}" != "--no-lab" ]; then
    exec .venv/bin/jupyter lab notebooks/
fi
