"""Landmark sketches: the line drawing the RFG turns into a face (SPEC §3 ``drawshape`` / ``show_map``).

Two renderers exist in the released demo and both are kept, pixel for pixel:

* ``kind="reference"`` (``drawshape``) draws the reference face's aligned landmarks (display only);
* ``kind="target"`` (``show_map``) draws the IDSG target landmarks; this sketch is fed to the generator.

Both draw white 2-px OpenCV ``LINE_8`` segments between landmark positions truncated toward zero, on a
256x256 canvas. At large yaw (eye-corner distance <= 30 px) the half of the face turned away is hidden.
The two renderers differ only in the 'left' test and in the direction of one mouth segment (quirk Q2).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from .errors import InputError, LandmarkError

SketchKind = Literal["reference", "target"]
Branch = Literal["frontal", "left", "right"]

SKETCH_SIZE = 256
LINE_THICKNESS = 2
# Yaw threshold: horizontal eye-corner distance (crop pixels) at or below which one side is hidden.
HIDE_THRESHOLD_PX = 30


def _chain(a: int, b: int) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(a, b)]


# Segments drawn for each branch, in the demo's order; ``(a, b)`` pairs are single extra segments.
_FRONTAL = (_chain(0, 16) + _chain(17, 21) + _chain(22, 26) + _chain(27, 30) + _chain(31, 35)
            + _chain(36, 41) + [(36, 41)] + _chain(42, 47) + [(42, 47)]
            + _chain(48, 59) + [(48, 59)] + _chain(60, 67) + [(60, 67)])


def _right(closing_segment: tuple[int, int]) -> list[tuple[int, int]]:
    """Nose points to image-right: the image-right half of the face is hidden."""
    return (_chain(0, 12) + _chain(17, 21) + _chain(27, 30) + _chain(31, 33) + _chain(36, 41) + [(36, 41)]
            + _chain(48, 51) + [(51, 62)] + _chain(60, 62) + [(60, 67), closing_segment, (57, 66)]
            + _chain(57, 59) + [(48, 59)])


_LEFT = (_chain(4, 16) + _chain(22, 26) + _chain(27, 30) + _chain(33, 35) + _chain(42, 47) + [(42, 47)]
         + _chain(51, 57) + [(51, 62)] + _chain(62, 66) + [(66, 57)])

SEGMENTS: dict[SketchKind, dict[Branch, tuple[tuple[int, int], ...]]] = {
    "reference": {"frontal": tuple(_FRONTAL), "right": tuple(_right((67, 66))), "left": tuple(_LEFT)},
    "target": {"frontal": tuple(_FRONTAL), "right": tuple(_right((66, 67))), "left": tuple(_LEFT)},
}
"""Line segments (point index pairs) per renderer and pose branch."""


def _truncated(landmarks_px: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks_px)
    if lm.ndim != 2 or lm.shape[0] != 68 or lm.shape[1] not in (2, 3):
        raise InputError(f"a sketch needs landmarks of shape (68,2) in 256-crop pixels, got {lm.shape}")
    if not np.all(np.isfinite(lm[:, :2])):
        raise LandmarkError("cannot draw landmarks containing NaN or inf")
    if np.abs(lm[:, :2]).max() > 1e6:
        raise LandmarkError("landmark coordinates beyond 1e6 px; are they normalized twice or in another frame?")
    return np.trunc(lm[:, :2]).astype(np.int64)  # int() in the demo truncates toward zero


def sketch_branch(landmarks_px: np.ndarray, kind: SketchKind = "target") -> Branch:
    """Which half of the face a renderer hides: 'frontal' (none), 'right' or 'left' (SPEC §3 pose branch).

    'right' means the nose points to image-right (x30 > x42) and the image-right half is hidden.
    """
    p = _truncated(landmarks_px)
    x = p[:, 0]
    if kind == "reference":
        narrow = x[42] - x[36] <= HIDE_THRESHOLD_PX
        if narrow and x[30] > x[42]:
            return "right"
        if narrow and x[30] < x[42]:
            return "left"
        return "frontal"
    if kind == "target":
        if x[42] - x[36] <= HIDE_THRESHOLD_PX and x[30] > x[42]:
            return "right"
        if x[45] - x[39] <= HIDE_THRESHOLD_PX and x[30] < x[42]:
            return "left"
        return "frontal"
    raise InputError(f"kind must be 'reference' or 'target', got {kind!r}")


def draw_sketch(landmarks_px: np.ndarray, kind: SketchKind = "target") -> np.ndarray:
    """Draw the landmark sketch.

    Args:
        landmarks_px: (68,2) (or (68,3), z ignored) landmarks in 256-crop pixels, x then y.
        kind: "target" (show_map, what the generator sees) or "reference" (drawshape).
    Returns:
        (256,256) uint8 with values {0, 255}.

    Example:
        >>> sk = draw_sketch(target_landmarks, kind="target")
        >>> sk.shape, sk.dtype
        ((256, 256), dtype('uint8'))
    """
    p = _truncated(landmarks_px)
    canvas = np.zeros((SKETCH_SIZE, SKETCH_SIZE), dtype=np.uint8)
    branch = sketch_branch(landmarks_px, kind)  # validates kind before SEGMENTS is indexed
    for a, b in SEGMENTS[kind][branch]:
        cv2.line(canvas, (int(p[a, 0]), int(p[a, 1])), (int(p[b, 0]), int(p[b, 1])), 255, LINE_THICKNESS)
    return canvas


def hidden_points(branch: Branch) -> tuple[int, ...]:
    """Landmark indices not touched by any segment in a branch (for teaching plots of what is hidden)."""
    drawn = {i for seg in SEGMENTS["target"][branch] for i in seg}
    return tuple(i for i in range(68) if i not in drawn)
