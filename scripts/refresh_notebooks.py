"""Re-execute notebooks in place so their committed outputs match the code (maintainers' tool).

    .venv/bin/python scripts/refresh_notebooks.py [notebooks/01_quickstart.ipynb ...]   (default: all)

Each notebook runs top to bottom in a fresh kernel from the notebooks/ folder; the saved widget state
(``metadata.widgets``, megabytes of slider/figure models that nbval never reads) is dropped so that the committed
files stay small. Prints the run time and size of each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def refresh(path: Path, timeout: int = 600) -> tuple[float, int]:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(NOTEBOOKS)}})
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return seconds, path.stat().st_size


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        seconds, size = refresh(path)
        print(f"{path.name:<40} {seconds:6.1f} s  {size / 1e6:5.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
