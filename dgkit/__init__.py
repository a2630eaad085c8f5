"""dgkit: explore, teach and reproduce the Dual-Generator (DG) network for large-pose face reenactment.

The public API is small; everything is importable from the top level::

    import dgkit
    dg = dgkit.load_dg()                                   # official weights (see `dgkit weights status`)
    crop, lm = dgkit.align_face(photo_rgb, landmarks68)     # 256x256 ArcFace-aligned crop
    out = dg.reenact(source_crop, reference_landmarks)      # -> Reenactment (numpy arrays, batch first)

Names are resolved lazily so that ``import dgkit`` stays fast and optional parts (landmark backends,
training) only import their dependencies when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import *  # noqa: F401,F403  (exception classes are cheap and always available)
from .errors import __all__ as _error_names

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    # the dual-generator pipeline
    "load_dg": "dgkit.pipeline",
    "DualGenerator": "dgkit.pipeline",
    "SourceEncoding": "dgkit.pipeline",
    "ReferenceEncoding": "dgkit.pipeline",
    "Reenactment": "dgkit.pipeline",
    "ChainResult": "dgkit.pipeline",
    "PRECISIONS": "dgkit.pipeline",
    "SKETCH_INTENSITIES": "dgkit.pipeline",
    # preprocessing (docs/how-dg-works.md sections 1, 4, 5)
    "align_face": "dgkit.align",
    "alignment_matrix": "dgkit.align",
    "ARCFACE_TEMPLATE_256": "dgkit.align",
    "draw_sketch": "dgkit.sketch",
    "sketch_branch": "dgkit.sketch",
    "correct_eyes": "dgkit.eyes",
    # weights
    "make_synthetic_weights": "dgkit.weights",
    "locate_weights": "dgkit.weights",
    "weights_status": "dgkit.weights",
    "download_weights": "dgkit.weights",
    "import_weights": "dgkit.weights",
    # landmarks, geometry, images and videos
    "detect_landmarks": "dgkit.landmarks",
    "detect_faces": "dgkit.landmarks",
    "FaceDetection": "dgkit.landmarks",
    "read_image": "dgkit.io",
    "write_image": "dgkit.io",
    "sample_image": "dgkit.io",
    "sample_names": "dgkit.io",
    "video_info": "dgkit.io",
    "iter_video_frames": "dgkit.io",
    "VideoWriter": "dgkit.io",
    "head_pose": "dgkit.geometry",
    "rotate_landmarks": "dgkit.geometry",
    "pose_landmarks": "dgkit.geometry",
    "edit_expression": "dgkit.geometry",
    "lift_to_3d": "dgkit.geometry",
    "mean_face_3d": "dgkit.geometry",
    # weight-free baselines
    "naive_transfer": "dgkit.baselines",
    "relative_transfer_3d": "dgkit.baselines",
    "warp_to_landmarks": "dgkit.baselines",
    # photos and videos end to end
    "prepare_face": "dgkit.reenact",
    "AlignedFace": "dgkit.reenact",
    "reenact_photos": "dgkit.reenact",
    "PhotoReenactment": "dgkit.reenact",
    "contact_sheet": "dgkit.reenact",
    "reenact_video": "dgkit.reenact",
    "iter_reenact_video": "dgkit.reenact",
    "VideoReport": "dgkit.reenact",
    # training on your own data
    "prepare_dataset": "dgkit.training.prepare",
    "make_synthetic_dataset": "dgkit.training.data",
    "train_idsg": "dgkit.training.entry",
    "train_rfg": "dgkit.training.entry",
    "export_trained_weights": "dgkit.training.export",
}

# sub-modules reachable as attributes after a plain ``import dgkit`` (e.g. ``dgkit.viz.image_grid``)
_SUBMODULES = {"align", "baselines", "checkpoint", "evaluate", "eyes", "figures", "geometry", "interpolate", "io",
               "landmarks", "models", "pipeline", "reenact", "sketch", "training", "viz", "weights", "widgets"}

__all__ = sorted([*_LAZY, *_error_names, "__version__"])


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"dgkit.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dgkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__():
    return [*__all__, *sorted(_SUBMODULES)]


if TYPE_CHECKING:  # pragma: no cover - for editors and type checkers only
    from .align import ARCFACE_TEMPLATE_256, align_face, alignment_matrix
    from .eyes import correct_eyes
    from .pipeline import (PRECISIONS, ChainResult, DualGenerator, Reenactment, ReferenceEncoding, SourceEncoding,
                           load_dg)
    from .sketch import draw_sketch, sketch_branch
