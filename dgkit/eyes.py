"""Eye correction (``turn_eye`` in the demo): give the target the reference's eyelid opening.

The IDSG decoder reproduces eye *shape* poorly, so after decoding the demo copies how far each upper lid sits
from its lower lid in the reference, rescaled by the ratio of the image-left eye widths (docs/how-dg-works.md §4).
"""

from __future__ import annotations

import numpy as np

from .errors import LandmarkError

# (upper lid, lower lid) point pairs of both eyes
EYELID_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))


def correct_eyes(target: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Copy the reference's eyelid openings onto the target landmarks.

    ``r = |p36 - p39|(target) / |p36 - p39|(reference)`` (image-left eye width ratio, used for both eyes), then
    for each (upper, lower) pair ``target[upper] = target[lower] + r * (reference[upper] - reference[lower])``.
    Only points 37, 38, 43, 44 change.

    Args:
        target: (68,2) or (N,68,2) float landmarks (any frame; pixels or normalized, x then y).
        reference: same shape and frame as ``target``.
    Returns:
        a new float32 array, the input is not modified.
    Raises:
        LandmarkError: shapes differ, NaN, or a reference eye width of zero (the demo produced inf/NaN).
    """
    tgt = np.array(target, dtype=np.float32)  # copy: never modify the caller's array
    ref = np.asarray(reference, dtype=np.float32)
    if tgt.shape != ref.shape or tgt.shape[-2:] != (68, 2):
        raise LandmarkError(f"correct_eyes needs two (N,)68x2 arrays of equal shape, got {tgt.shape} and {ref.shape}")
    if not (np.isfinite(tgt).all() and np.isfinite(ref).all()):
        raise LandmarkError("correct_eyes got NaN or inf landmarks")
    ref_width = np.sqrt(((ref[..., 36, :] - ref[..., 39, :]) ** 2).sum(-1))
    if np.any(ref_width == 0):
        raise LandmarkError("the reference's left eye has zero width (points 36 and 39 coincide); "
                            "eye correction is undefined - check the reference landmarks")
    ratio = np.sqrt(((tgt[..., 36, :] - tgt[..., 39, :]) ** 2).sum(-1)) / ref_width
    for upper, lower in EYELID_PAIRS:
        tgt[..., upper, :] = tgt[..., lower, :] + ratio[..., None] * (ref[..., upper, :] - ref[..., lower, :])
    return tgt
