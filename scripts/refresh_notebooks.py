"""Re-execute notebooks in place so their committed outputs match the code (maintainers' tool).

    .venv/bin/python scripts/refresh_notebooks.py [notebooks/01_quickstart.ipynb ...]   (default: all)
    .venv/bin/python scripts/refresh_notebooks.py --html OUT [notebooks ...]   (no execution: render static HTML)

Each notebook runs top to bottom in a fresh kernel from the notebooks/ folder; the saved widget state
(``metadata.widgets``, megabytes of slider/figure models that nbval never reads) is dropped so that the committed
files stay small. Prints the run time and size of each.

``--html OUT`` renders the saved notebooks as a reader without a kernel sees them (nbconvert's HTML, no widget
state) into ``OUT/<name>.html`` and writes every picture in their outputs to ``OUT/<name>/cell<i>_<k>.png``, so
that each figure can be looked at on its own.
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


def render_html(path: Path, out: Path) -> list[Path]:
    """Static HTML of a saved notebook plus one PNG per image output; returns the written files."""
    import base64

    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    html, _ = HTMLExporter().from_notebook_node(nb)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / f"{path.stem}.html"]
    written[0].write_text(html)
    pictures = out / path.stem
    pictures.mkdir(exist_ok=True)
    for i, cell in enumerate(nb.cells):
        for k, output in enumerate(cell.get("outputs", [])):
            data = output.get("data", {}).get("image/png")
            if data:
                target = pictures / f"cell{i:02d}_{k}.png"
                target.write_bytes(base64.b64decode(data))
                written.append(target)
    return written


def main(argv: list[str]) -> int:
    if argv[:1] == ["--html"]:
        if len(argv) < 2:
            raise SystemExit("usage: refresh_notebooks.py --html OUT [notebooks ...]")
        out = Path(argv[1])
        for path in [Path(p) for p in argv[2:]] or sorted(NOTEBOOKS.glob("*.ipynb")):
            files = render_html(path, out)
            print(f"{path.name:<40} {files[0]}  ({len(files) - 1} pictures)")
        return 0
    paths = [Path(p) for p in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        seconds, size = refresh(path)
        print(f"{path.name:<40} {seconds:6.1f} s  {size / 1e6:5.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
