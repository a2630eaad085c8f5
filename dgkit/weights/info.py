"""What a loaded set of weights is: :class:`WeightsInfo` (label, trained, paths) and how it is decided.

A folder written by :func:`dgkit.training.export_trained_weights` holds a ``DGKIT_TRAINED.json`` marker
(:data:`TRAINED_MARKER`) that records where each file came from and whether it is synthetic.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .manifest import TRAINED_MARKER, layout_root
from .records import read_json

__all__ = ["TRAINED_MARKER", "WeightsInfo", "read_trained_marker", "weights_info"]


@dataclass(frozen=True)
class WeightsInfo:
    """Where a model's weights came from.

    Attributes:
        label: ``"official"``, ``"synthetic (untrained)"``, ``"dgkit-trained"`` or
            ``"dgkit-trained (synthetic vgg_face)"`` (any other label is allowed for hand-made models).
        trained: False for synthetic (random) weights, or a set that contains any synthetic file: images made
            from them are not real results.
        paths: ``{"rfg": Path, "idsg": Path, "vgg_face": Path}`` of the files loaded (empty when unknown).
    """

    label: str
    trained: bool
    paths: dict[str, Path] = field(default_factory=dict)


def read_trained_marker(folder: str | os.PathLike) -> dict | None:
    """The ``DGKIT_TRAINED.json`` record of a weights folder, or None when it has none (or it is unreadable)."""
    path = Path(folder) / TRAINED_MARKER
    if not path.is_file():
        return None
    return read_json(path)


def weights_info(paths: Mapping[str, str | os.PathLike], *, synthetic: bool) -> WeightsInfo:
    """Label a set of weight files: "official", "synthetic (untrained)" or "dgkit-trained ...".

    Args:
        paths: ``{"rfg": path, "idsg": path, "vgg_face": path}`` as :func:`dgkit.weights.locate_weights` returns.
        synthetic: any of the files is dgkit's synthetic weights (see :func:`dgkit.weights.synthetic_set_seed`).

    A folder written by the training export holds ``DGKIT_TRAINED.json`` beside the RFG file's layout; a set that
    mixes in any synthetic file is not counted as trained (its images are not meaningful).
    """
    paths = {kind: Path(path) for kind, path in paths.items()}
    if synthetic:
        return WeightsInfo("synthetic (untrained)", trained=False, paths=paths)
    marker = read_trained_marker(layout_root(paths["rfg"], "rfg"))
    if marker is None:
        return WeightsInfo("official", trained=True, paths=paths)
    files = marker.get("files", {})
    files = files if isinstance(files, dict) else {}
    synthetic_parts = sorted(kind for kind, facts in files.items() if isinstance(facts, dict) and facts.get("synthetic"))
    label = "dgkit-trained" + (f" (synthetic {', '.join(synthetic_parts)})" if synthetic_parts else "")
    return WeightsInfo(label, trained=not synthetic_parts, paths=paths)
