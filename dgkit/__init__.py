"""dgkit: explore, teach and reproduce the Dual-Generator (DG) network for large-pose face reenactment.

The top level holds the inference path: load the model, detect and align faces, run DG step by step or on
photos and videos, read and write images, and the errors::

    import dgkit
    dg = dgkit.load_dg()                                   # official weights (see `dgkit weights status`)
    crop, lm = dgkit.align_face(photo_rgb, landmarks68)     # 256x256 ArcFace-aligned crop
    out = dg.reenact(source_crop, reference_landmarks)      # -> Reenactment (numpy arrays, batch first)

Everything else lives in its sub-package: training in ``dgkit.training`` (dataset preparation, the IDSG and
RFG training loops, exporting trained weights), weight files in ``dgkit.weights`` (``weights_status``,
``download_weights``, ...), the single-face primitives in ``dgkit.sketch`` / ``dgkit.eyes`` / ``dgkit.align``,
pose and expression editing in ``dgkit.geometry``, the weight-free baselines in ``dgkit.baselines``.

Names are resolved lazily so that ``import dgkit`` stays fast and optional parts (landmark backends,
training) only import their dependencies when used. The ``TYPE_CHECKING`` block at the end names every lazy
export, so editors and type checkers see the real types (``tests/test_project.py`` keeps the two in step).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import *  # noqa: F401,F403  (exception classes are cheap and always available)
from .errors import __all__ as _error_names

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    # the dual-generator model and its step types
    "load_dg": "dgkit.pipeline",
    "DualGenerator": "dgkit.pipeline",
    "SourceEncoding": "dgkit.pipeline",
    "ReferenceEncoding": "dgkit.pipeline",
    "Reenactment": "dgkit.pipeline",
    "ChainResult": "dgkit.pipeline",
    "PRECISIONS": "dgkit.pipeline",
    "SKETCH_INTENSITIES": "dgkit.pipeline",
    # face detection and alignment (docs/how-dg-works.md)
    "detect_landmarks": "dgkit.landmarks",
    "detect_faces": "dgkit.landmarks",
    "FaceDetection": "dgkit.landmarks",
    "align_face": "dgkit.align",
    "alignment_matrix": "dgkit.align",
    "ARCFACE_TEMPLATE_256": "dgkit.align",
    # the single-face primitives behind dg's steps (one face at a time; dg.draw / run_chain do batches)
    "draw_sketch": "dgkit.sketch",
    "sketch_branch": "dgkit.sketch",
    "correct_eyes": "dgkit.eyes",
    # images and videos
    "read_image": "dgkit.io",
    "write_image": "dgkit.io",
    "sample_image": "dgkit.io",
    "sample_names": "dgkit.io",
    "video_info": "dgkit.io",
    "iter_video_frames": "dgkit.io",
    "VideoWriter": "dgkit.io",
    # photos and videos end to end
    "prepare_face": "dgkit.reenact",
    "AlignedFace": "dgkit.reenact",
    "reenact_photos": "dgkit.reenact",
    "PhotoReenactment": "dgkit.reenact",
    "reenact_video": "dgkit.reenact",
    "iter_reenact_video": "dgkit.reenact",
    "VideoReport": "dgkit.reenact",
}

# sub-modules reachable as attributes after a plain ``import dgkit`` (e.g. ``dgkit.viz.image_grid``)
_SUBMODULES = {"align", "baselines", "checkpoint", "evaluate", "eyes", "face68", "figures", "geometry", "interpolate",
               "io", "landmarks", "live", "models", "pipeline", "reenact", "sheet", "sketch", "training", "viz",
               "weights", "widgets"}

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


if TYPE_CHECKING:  # pragma: no cover - for editors and type checkers only: every name of _LAZY and _SUBMODULES
    from . import (align, baselines, checkpoint, evaluate, eyes, face68, figures, geometry, interpolate, io, landmarks,
                   live, models, pipeline, reenact, sheet, sketch, training, viz, weights, widgets)
    from .align import ARCFACE_TEMPLATE_256, align_face, alignment_matrix
    from .eyes import correct_eyes
    from .io import VideoWriter, iter_video_frames, read_image, sample_image, sample_names, video_info, write_image
    from .landmarks import FaceDetection, detect_faces, detect_landmarks
    from .pipeline import (PRECISIONS, SKETCH_INTENSITIES, ChainResult, DualGenerator, Reenactment,
                           ReferenceEncoding, SourceEncoding, load_dg)
    from .sketch import draw_sketch, sketch_branch
    from .reenact import (AlignedFace, PhotoReenactment, VideoReport, iter_reenact_video, prepare_face,
                          reenact_photos, reenact_video)
