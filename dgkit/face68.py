"""The 68-point face scheme dgkit uses everywhere: point indices, face parts, the crop size, one validator.

The points follow the iBUG 300-W layout (0-based). "Right" and "left" are the *subject's*: the subject's right
eye (points 36-41) is on the image's left. Coordinates are pixels, columns x (to the right), y (down) and an
optional relative depth z (docs/conventions.md).

Index tables (tuples of ints, or ``range`` objects that can index NumPy arrays after ``list(...)``):

=================  ============  ===========================================================
name               points        used by
=================  ============  ===========================================================
``JAW``            0-16          sketch, viz, geometry (pose), training (per-part jitter)
``RIGHT_BROW``     17-21         sketch, viz
``LEFT_BROW``      22-26         sketch, viz
``NOSE_BRIDGE``    27-30         sketch, viz; ``NOSE_TIP`` = 30 (alignment, pose rule)
``NOSTRILS``       31-35         sketch, viz
``RIGHT_EYE``      36-41         eye correction, viz, metrics (eye centre)
``LEFT_EYE``       42-47         eye correction, viz, metrics
``OUTER_LIPS``     48-59         sketch, viz; ``MOUTH_CORNERS`` = (48, 54)
``INNER_LIPS``     60-67         sketch, viz; ``INNER_LIP_PAIRS`` (mouth opening)
=================  ============  ===========================================================

``FACE_PARTS`` lists the nine contours (name -> (first, last, closed)); ``REGIONS`` groups them into the
five coarse regions the training losses and the synthetic data use (jaw, brows, nose, eyes, mouth).
``EYELID_PAIRS`` pairs each upper-lid point with the lower-lid point below it (eye opening, eye correction).

:func:`check_landmarks` is THE landmark validator: every public function that takes 68 landmarks calls it, so
every mistake (wrong shape, strings, NaN, a flattened network vector) gets the same clear message.

Dtype policy: landmark arrays dgkit *returns* are NumPy ``float64`` (detectors, alignment, geometry, the DG
target landmarks, eye correction, baselines). Inside the networks everything is ``float32``; a network output
is cast to float64 when it leaves dgkit (exact: every float32 is a float64). :data:`LANDMARK_DTYPE` names it.
The one exception is :func:`dgkit.align_face`, whose crop landmarks keep the released demo's float32 arithmetic
and dtype (the conformance tests pin them). Inputs of any numeric dtype are accepted.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import LandmarkError

__all__ = [
    "CROP_SIZE",
    "NUM_POINTS",
    "LANDMARK_DTYPE",
    "JAW",
    "RIGHT_BROW",
    "LEFT_BROW",
    "BROWS",
    "NOSE_BRIDGE",
    "NOSTRILS",
    "NOSE",
    "NOSE_TIP",
    "RIGHT_EYE",
    "LEFT_EYE",
    "EYES",
    "EYE_CORNERS",
    "OUTER_LIPS",
    "INNER_LIPS",
    "MOUTH",
    "MOUTH_CORNERS",
    "INNER_MOUTH_CORNERS",
    "EYELID_PAIRS",
    "INNER_LIP_PAIRS",
    "FACE_PARTS",
    "REGIONS",
    "part_indices",
    "check_landmarks",
]

CROP_SIZE = 256
"""Side of DG's aligned face crop in pixels; "crop pixels" are pixels of this crop, normalized = crop px / 256."""
NUM_POINTS = 68
LANDMARK_DTYPE = np.float64
"""The dtype of every landmark array dgkit returns (see the module docstring)."""

JAW = range(0, 17)
RIGHT_BROW = range(17, 22)  # the subject's right: image left
LEFT_BROW = range(22, 27)
BROWS = range(17, 27)
NOSE_BRIDGE = range(27, 31)
NOSTRILS = range(31, 36)
NOSE = range(27, 36)
NOSE_TIP = 30
RIGHT_EYE = range(36, 42)  # the subject's right eye, on the image's left
LEFT_EYE = range(42, 48)
EYES = range(36, 48)
EYE_CORNERS = (36, 39, 42, 45)
"""Outer and inner corner of the subject's right eye, then inner and outer corner of the left eye."""
OUTER_LIPS = range(48, 60)
INNER_LIPS = range(60, 68)
MOUTH = range(48, 68)
MOUTH_CORNERS = (48, 54)
INNER_MOUTH_CORNERS = (60, 64)
EYELID_PAIRS: tuple[tuple[int, int], ...] = ((37, 41), (38, 40), (43, 47), (44, 46))
"""(upper lid, lower lid) point pairs: the vertical gaps measure how open each eye is."""
INNER_LIP_PAIRS: tuple[tuple[int, int], ...] = ((61, 67), (62, 66), (63, 65))
"""(upper inner lip, lower inner lip) point pairs: the vertical gaps measure how open the mouth is."""

FACE_PARTS: dict[str, tuple[int, int, bool]] = {
    "jaw": (JAW[0], JAW[-1], False),
    "right brow": (RIGHT_BROW[0], RIGHT_BROW[-1], False),
    "left brow": (LEFT_BROW[0], LEFT_BROW[-1], False),
    "nose bridge": (NOSE_BRIDGE[0], NOSE_BRIDGE[-1], False),
    "nostrils": (NOSTRILS[0], NOSTRILS[-1], False),
    "right eye": (RIGHT_EYE[0], RIGHT_EYE[-1], True),
    "left eye": (LEFT_EYE[0], LEFT_EYE[-1], True),
    "outer lips": (OUTER_LIPS[0], OUTER_LIPS[-1], True),
    "inner lips": (INNER_LIPS[0], INNER_LIPS[-1], True),
}
"""The nine contours of the scheme: name -> (first, last index (inclusive), closed contour or not). Every point
0..67 is in exactly one part. Sketches and landmark plots draw these lines."""

REGIONS: dict[str, range] = {"jaw": JAW, "brows": BROWS, "nose": NOSE, "eyes": EYES, "mouth": MOUTH}
"""Five coarse regions (each a union of whole parts) covering 0..67 once: the local-shape loss and the synthetic
training faces work per region."""


def part_indices(part: str) -> list[int]:
    """The point indices of a face part of :data:`FACE_PARTS` (e.g. ``"left eye"`` -> ``[42, ..., 47]``)."""
    if part not in FACE_PARTS:
        raise LandmarkError(f"unknown face part {part!r}; choose one of {tuple(FACE_PARTS)}.")
    first, last, _ = FACE_PARTS[part]
    return list(range(first, last + 1))


def _shape_text(dims: tuple[int, ...], batch: bool) -> str:
    one = " or ".join(f"({NUM_POINTS},{d})" for d in dims)
    if not batch:
        return one
    return one + " or " + " or ".join(f"(N,{NUM_POINTS},{d})" for d in dims)


def check_landmarks(
    landmarks: Any,
    name: str = "landmarks",
    *,
    dims: tuple[int, ...] = (2, 3),
    batch: bool = False,
    crop_frame: bool = False,
    dtype: Any = LANDMARK_DTYPE,
) -> np.ndarray:
    """Validate 68 landmarks and return them as a new array (never the caller's; it is not modified).

    Args:
        landmarks: array-like of shape ``(68, d)`` (``d`` in ``dims``; columns x, y[, z] in pixels); with
            ``batch=True`` also ``(N, 68, d)``. A batch of one ``(1, 68, d)`` is accepted where one set is
            expected (detectors return that).
        name: the argument's name, used in the error messages.
        dims: accepted numbers of columns: ``(2, 3)``, ``(2,)`` or ``(3,)``.
        batch: return ``(N, 68, d)`` (a single set becomes a batch of one) instead of ``(68, d)``.
        crop_frame: also check the values look like crop pixels of the 256 crop (not normalized values in
            [0, 1] and not photo pixels far outside the crop).
        dtype: the dtype of the result (default :data:`LANDMARK_DTYPE`, float64).

    Returns:
        ``(68, d)`` or, with ``batch=True``, ``(N, 68, d)`` array of ``dtype``.

    Raises:
        LandmarkError: (a :class:`dgkit.InputError`) not numeric, wrong shape, an empty batch, NaN or infinite
            values, or (``crop_frame``) values in the wrong coordinate frame. The message names ``name`` and
            says what to do.
    """
    try:
        arr = np.array(landmarks)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise LandmarkError(f"{name} must be a numeric array of shape {_shape_text(dims, batch)}: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise LandmarkError(f"{name} must be numeric (x, y[, z] pixels), got dtype {arr.dtype}; convert them "
                            "with np.asarray(landmarks, dtype=float)")
    if arr.shape == (2 * NUM_POINTS,) and 2 in dims:
        raise LandmarkError(f"{name} has shape (136,), the DG networks' flattened normalized layout. Use "
                            f"landmarks.reshape(68, 2) * {CROP_SIZE} to get crop pixels first.")
    if not batch and arr.ndim == 3 and arr.shape[0] == 1:  # a batch of one, as detectors return
        arr = arr[0]
    if batch and arr.ndim == 2:
        arr = arr[None]
    ok = arr.ndim == (3 if batch else 2) and arr.shape[-2] == NUM_POINTS and arr.shape[-1] in dims
    if not ok:
        hint = ""
        if dims == (3,) and arr.shape[-2:] == (NUM_POINTS, 2):
            hint = " Add depth with dgkit.geometry.lift_to_3d(landmarks2d)."
        elif arr.ndim >= 2 and arr.shape[-2] != NUM_POINTS:
            hint = f" dgkit uses the {NUM_POINTS}-point iBUG layout (docs/conventions.md)."
        raise LandmarkError(f"{name} must have shape {_shape_text(dims, batch)} ({NUM_POINTS} iBUG points, "
                            f"columns x, y[, z] in pixels); got {arr.shape}.{hint}")
    if batch and len(arr) == 0:
        raise LandmarkError(f"{name} is an empty batch (shape {arr.shape}); pass at least one landmark set")
    arr = arr.astype(dtype, copy=True)
    finite = np.isfinite(arr)
    if not finite.all():
        if batch:
            bad = sorted({int(i) for i in np.argwhere(~finite)[:, 0]})
            where = f"batch items {bad}; drop those frames or re-detect"
        else:
            bad = np.unique(np.nonzero(~finite)[0]).tolist()
            where = f"points {bad}; a detector probably failed: re-detect or drop this frame"
        raise LandmarkError(f"{name} contain NaN or infinite values ({where}).")
    if crop_frame:
        xy = arr[..., :2]
        if np.abs(xy).max() <= 1.5:
            raise LandmarkError(f"{name} look normalized (all values <= 1.5); dgkit expects {CROP_SIZE}-crop "
                                f"pixels: multiply by {CROP_SIZE}")
        if np.abs(xy - CROP_SIZE / 2).max() > 4 * CROP_SIZE:
            raise LandmarkError(f"{name} reach {np.abs(xy).max():.0f} px, far outside the {CROP_SIZE} crop; they "
                                "look like image pixels: align first with dgkit.align_face (it returns crop-pixel "
                                "landmarks)")
    return arr
