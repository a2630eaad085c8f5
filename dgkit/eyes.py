"""Eye correction (``turn_eye`` in the demo): give the target the reference's eyelid opening.

The IDSG decoder reproduces eye *shape* poorly, so after decoding the demo copies how far each upper lid sits
from its lower lid in the reference, rescaled by the ratio of the image-left eye widths (docs/how-dg-works.md §4).
"""

from __future__ import annotations

import numpy as np

from .errors import LandmarkError
from .face68 import EYELID_PAIRS, LANDMARK_DTYPE, check_landmarks


def correct_eyes(target: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Copy the reference's eyelid openings onto the target landmarks.

    ``r = |p36 - p39|(target) / |p36 - p39|(reference)`` (image-left eye width ratio, used for both eyes), then
    for each (upper, lower) pair ``target[upper] = target[lower] + r * (reference[upper] - reference[lower])``.
    Only points 37, 38, 43, 44 change.

    Args:
        target: (68,2) or (N,68,2) float landmarks (any frame; pixels or normalized, x then y).
        reference: same shape and frame as ``target``.
    Returns:
        a new float64 array (the arithmetic is float32, as in the demo); the input is not modified.
    Raises:
        LandmarkError: shapes differ, NaN, or a reference eye width of zero (the demo produced inf/NaN).
    """
    single = np.ndim(target) == 2
    # new float32 arrays (the caller's are never modified), (N,68,2)
    tgt = check_landmarks(target, "target", dims=(2,), batch=True, dtype=np.float32)
    ref = check_landmarks(reference, "reference", dims=(2,), batch=True, dtype=np.float32)
    if tgt.shape != ref.shape or np.ndim(reference) != np.ndim(target):
        raise LandmarkError(f"correct_eyes needs target and reference of equal shape, got {np.shape(target)} "
                            f"and {np.shape(reference)}")
    ref_width = np.sqrt(((ref[..., 36, :] - ref[..., 39, :]) ** 2).sum(-1))
    if np.any(ref_width == 0):
        raise LandmarkError("the reference's left eye has zero width (points 36 and 39 coincide); "
                            "eye correction is undefined - check the reference landmarks")
    ratio = np.sqrt(((tgt[..., 36, :] - tgt[..., 39, :]) ** 2).sum(-1)) / ref_width
    for upper, lower in EYELID_PAIRS:
        tgt[..., upper, :] = tgt[..., lower, :] + ratio[..., None] * (ref[..., upper, :] - ref[..., lower, :])
    out = tgt.astype(LANDMARK_DTYPE)  # computed in float32 like the demo; widening to float64 is exact
    return out[0] if single else out
