"""Export: assemble a weights folder that :func:`dgkit.load_dg` reads from trained runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..errors import WeightsError, WeightsNotFoundError
from ..weights import (
    OFFICIAL_FILES,
    TRAINED_MARKER,
    synthetic_seed,
    synthetic_weights_dir,
    weights_search_dirs,
)
from .checkpoints import latest_checkpoint
from .vgg import find_weight_file

__all__ = ["export_trained_weights"]


def export_trained_weights(*run_dirs: str | os.PathLike, out_dir: str | os.PathLike,
                           weights_dir: str | os.PathLike | None = None, allow_synthetic_vgg: bool = False,
                           link: bool = True) -> Path:
    """Assemble a weights folder that :func:`dgkit.load_dg` reads from trained runs.

    The latest RFG and IDSG ``nets_ema`` checkpoints of ``run_dirs`` are copied under the official names
    (``expr/checkpoints/501500_nets_ema.ckpt``, ``expr_lm/checkpoints/30000_nets_ema.ckpt``, whatever the
    step); a stage no run has comes from ``weights_dir``'s weights (dgkit's search path when None), and so
    does ``vgg_face_dag.pth``; files from a weights folder are symlinked when ``link`` (else copied), trained
    ones are copied. ``DGKIT_TRAINED.json`` records where each file came from and whether it is synthetic.

    Returns:
        ``out_dir`` (pass it to ``dgkit.load_dg``).
    Raises:
        WeightsError: ``out_dir`` already holds weight files (nothing is overwritten).
        WeightsNotFoundError: a stage is in no run and not in the weight folders.
    """
    out = Path(out_dir).expanduser()
    targets = {kind: out / rel for kind, rel in OFFICIAL_FILES.items()}
    existing = [str(p) for p in targets.values() if p.exists() or p.is_symlink()]
    if existing:
        raise WeightsError(f"{out} already holds weight files ({', '.join(existing)}); export into a new folder")
    sources: dict[str, tuple[Path, str]] = {}
    for run in run_dirs:
        for kind in ("rfg", "idsg"):
            found = latest_checkpoint(run, kind)
            if found is not None:
                sources[kind] = (found, "trained")
    folders = weights_search_dirs(weights_dir) + ([synthetic_weights_dir()] if allow_synthetic_vgg else [])
    for kind in ("rfg", "idsg", "vgg_face"):
        if kind in sources:
            continue
        found = find_weight_file(kind, folders)
        if found is None:
            raise WeightsNotFoundError(
                f"no {kind} weights for the export: no run in {', '.join(map(str, run_dirs)) or '(none)'} has "
                f"them and {OFFICIAL_FILES[kind]} is not in {', '.join(map(str, folders))}")
        sources[kind] = (found, "weights folder")
    for kind, (src, origin) in sources.items():
        if origin == "trained":
            load_checkpoint(src, kind)  # refuse a damaged or mismatched file before placing it
        dst = targets[kind]
        dst.parent.mkdir(parents=True, exist_ok=True)
        if link and origin == "weights folder":
            try:
                dst.symlink_to(src.resolve())
                continue
            except OSError:
                pass
        shutil.copy2(src, dst)
    marker = {"trained_by": "dgkit", "files": {}}
    for kind, (src, origin) in sources.items():
        marker["files"][kind] = {"source": str(src.resolve()), "origin": origin,
                                 "placed": "symlink" if targets[kind].is_symlink() else "copy",
                                 "synthetic": synthetic_seed(src) is not None}
    (out / TRAINED_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return out
