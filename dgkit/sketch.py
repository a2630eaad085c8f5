"""Landmark sketches: the line drawing the RFG turns into a face (docs/how-dg-works.md §5).

Two renderers exist in the released demo and both are kept, pixel for pixel:

* ``kind="reference"`` (``drawshape``) draws the reference face's aligned landmarks (display only);
* ``kind="target"`` (``show_map``) draws the IDSG target landmarks; this sketch is fed to the generator.

Both draw white 2-px OpenCV ``LINE_8`` segments between landmark positions truncated toward zero, on a
256x256 canvas. At large yaw (eye-corner distance <= 30 px) the half of the face turned away is hidden.
The two renderers differ only in the 'left' test and in the direction of one mouth segment (docs/how-dg-works.md §5, §8).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from .errors import InputError, LandmarkError
from .face68 import CROP_SIZE, FACE_PARTS, check_landmarks

SketchKind = Literal["reference", "target"]
Branch = Literal["frontal", "left", "right"]

SKETCH_SIZE = CROP_SIZE
"""Side of a sketch canvas: the crop size (a sketch is drawn in the crop's pixels)."""
LINE_THICKNESS = 2
# Yaw threshold: horizontal eye-corner distance (crop pixels) at or below which one side is hidden.
HIDE_THRESHOLD_PX = 30


def _chain(a: int, b: int) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(a, b)]


# Segments drawn for each branch, in the demo's order; ``(a, b)`` pairs are single extra segments.
# frontal: every face part, closed contours closed by a segment (last, first)
_FRONTAL = [seg for first, last, closed in FACE_PARTS.values()
            for seg in _chain(first, last) + ([(first, last)] if closed else [])]


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
    lm = check_landmarks(landmarks_px, "landmarks_px")
    if np.abs(lm[:, :2]).max() > 1e6:
        raise LandmarkError("landmark coordinates beyond 1e6 px; are they normalized twice or in another frame?")
    return np.trunc(lm[:, :2]).astype(np.int64)  # int() in the demo truncates toward zero


def sketch_branch(landmarks_px: np.ndarray, kind: SketchKind = "target") -> Branch:
    """Which half of the face a renderer hides: 'frontal' (none), 'right' or 'left' (docs/how-dg-works.md §5 pose rule).

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


# --- batched tensor renderer (GPU) --------------------------------------------------------------------------------
_BRANCHES: tuple[Branch, ...] = ("frontal", "right", "left")
_CAP = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # plus-shaped stamp at its two ends


def draw_sketches_torch(landmarks_px, kind: SketchKind = "target"):
    """Batched tensor version of :func:`draw_sketch`: same segments and pose rule, on the landmarks' device.

    At a thousand frames per second OpenCV's per-image drawing on the CPU becomes the bottleneck of a GPU
    pipeline; this draws a whole batch with a few tensor operations (CPU, CUDA, MPS), the way OpenCV draws a
    2-px line (the segment widened to a quadrilateral, filled row by row with its edges drawn 8-connected, and
    a radius-1 disc at each end). Rounding ties can still differ from OpenCV by a pixel at a line's edge: on
    faces, about 96 % of the lit pixels agree (at least 90 % on every face tested) and every differing pixel
    touches (8-neighbourhood) a pixel the other renderer lit; tests/test_precision_chain.py checks both.
    Horizontal, vertical and 45-degree segments match exactly.

    Args:
        landmarks_px: (N,68,2) (or (N,68,3), z ignored) float tensor, 256-crop pixels, x then y; finite.
        kind: "target" (what the generator sees) or "reference".
    Returns:
        (N,256,256) uint8 tensor with values {0, 255} on the same device.
    """
    import torch

    if kind not in SEGMENTS:
        raise InputError(f"kind must be 'reference' or 'target', got {kind!r}")
    lm = torch.as_tensor(landmarks_px)
    if lm.ndim != 3 or lm.shape[1] != 68 or lm.shape[2] not in (2, 3):
        raise InputError(f"draw_sketches_torch needs (N,68,2) landmarks in 256-crop pixels, got {tuple(lm.shape)}")
    device, n = lm.device, lm.shape[0]
    p = torch.trunc(lm[..., :2].double()).long()  # int() in the demo truncates toward zero
    x = p[..., 0]
    if kind == "target":
        right = (x[:, 42] - x[:, 36] <= HIDE_THRESHOLD_PX) & (x[:, 30] > x[:, 42])
        left = (x[:, 45] - x[:, 39] <= HIDE_THRESHOLD_PX) & (x[:, 30] < x[:, 42])
    else:
        narrow = x[:, 42] - x[:, 36] <= HIDE_THRESHOLD_PX
        right, left = narrow & (x[:, 30] > x[:, 42]), narrow & (x[:, 30] < x[:, 42])
    branch = torch.where(right, 1, torch.where(left, 2, 0))
    width = max(len(SEGMENTS[kind][b]) for b in _BRANCHES)
    table = torch.zeros(3, width, 2, dtype=torch.long)
    valid = torch.zeros(3, width, dtype=torch.bool)
    for i, b in enumerate(_BRANCHES):
        segs = SEGMENTS[kind][b]
        table[i, : len(segs)] = torch.tensor(segs)
        valid[i, : len(segs)] = True
    table, valid = table.to(device)[branch], valid.to(device)[branch]  # (N,S,2), (N,S)
    rows = torch.arange(n, device=device)[:, None]
    return _rasterize_segments(p[rows, table[..., 0]], p[rows, table[..., 1]], valid)


def _round(t):
    """Round half up, like OpenCV's fixed-point ``(x + 0.5) >> shift`` (torch.round rounds half to even)."""
    import torch

    return torch.floor(t + 0.5)


def _line8(p0, p1, keep, stamp) -> None:
    """Stamp 8-connected lines between (N,S,2) float end points (rounded to pixel centres)."""
    import torch

    p0, p1 = _round(p0), _round(p1)
    steps = (p1 - p0).abs().amax(-1)
    k = int(steps.max()) + 1 if steps.numel() else 1
    t = torch.arange(k, device=p0.device, dtype=p0.dtype)
    pts = _round(p0[..., None, :] + (t / steps.clamp(min=1)[..., None])[..., None] * (p1 - p0)[..., None, :])
    stamp(pts[..., 0].long(), pts[..., 1].long(), keep[..., None] & (t <= steps[..., None]))


def _rasterize_segments(a, b, valid):
    """(N,S,2) integer end points a, b (x, y) and an (N,S) mask -> (N,256,256) uint8 canvas of 2-px lines.

    Follows how OpenCV draws a 2-px line: the segment widened by 1 px on each side as a quadrilateral, filled
    row by row (span ends rounded) with its four edges drawn as 8-connected lines, and a filled circle of
    radius 1 (a plus shape) at each end.
    """
    import torch

    device, n = a.device, a.shape[0]
    canvas = torch.zeros(n * SKETCH_SIZE * SKETCH_SIZE, dtype=torch.uint8, device=device)
    item = torch.arange(n, device=device) * SKETCH_SIZE * SKETCH_SIZE

    def stamp(px: torch.Tensor, py: torch.Tensor, keep: torch.Tensor) -> None:
        base = item.view(-1, *([1] * (px.ndim - 1)))
        keep = keep & (px >= 0) & (px < SKETCH_SIZE) & (py >= 0) & (py < SKETCH_SIZE)
        canvas[(base + py * SKETCH_SIZE + px)[keep]] = 255

    a, b = a.double(), b.double()
    d = b - a
    length = d.norm(dim=-1)
    body = valid & (length > 0)
    perp = torch.stack([d[..., 1], -d[..., 0]], -1) / length.clamp(min=1e-12)[..., None]  # unit normal
    corners = torch.stack([a + perp, a - perp, b - perp, b + perp], -2)  # (N,S,4,2) quadrilateral
    for i in range(4):
        _line8(corners[..., i, :], corners[..., (i + 1) % 4, :], body, stamp)
    # row spans: for each integer row, the quadrilateral's x extent, ends rounded
    top = torch.ceil(corners[..., 1].amin(-1))
    rows = int((torch.floor(corners[..., 1].amax(-1)) - top).max().clamp(min=0)) + 1 if body.any() else 1
    y = top[..., None] + torch.arange(rows, device=device, dtype=a.dtype)  # (N,S,R)
    e0, e1 = corners, corners.roll(-1, dims=-2)  # edges e0 -> e1, (N,S,4,2)
    y0, y1 = e0[..., None, :, 1], e1[..., None, :, 1]  # (N,S,1,4)
    yy = y[..., None]
    crosses = ((yy >= torch.minimum(y0, y1)) & (yy <= torch.maximum(y0, y1)) & (y0 != y1))
    x_at = e0[..., None, :, 0] + (yy - y0) / (y1 - y0).where(y1 != y0, torch.ones_like(y1)) * (
        e1[..., None, :, 0] - e0[..., None, :, 0])
    inf = torch.full_like(x_at, float("inf"))
    xl = _round(torch.where(crosses, x_at, inf).amin(-1))
    xr = _round(torch.where(crosses, x_at, -inf).amax(-1))
    width = int((xr - xl).where(crosses.any(-1), torch.zeros_like(xr)).max().clamp(min=0)) + 1 if body.any() else 1
    xs = xl[..., None] + torch.arange(width, device=device, dtype=a.dtype)  # (N,S,R,W)
    keep = body[..., None, None] & crosses.any(-1)[..., None] & (xs <= xr[..., None])
    stamp(xs.long(), y[..., None].expand_as(xs).long(), keep)
    # round caps of radius 1 at both ends (a plus shape on the pixel grid)
    for dx, dy in _CAP:
        for end in (a, b):
            stamp((end[..., 0] + dx).long(), (end[..., 1] + dy).long(), valid)
    return canvas.view(n, SKETCH_SIZE, SKETCH_SIZE)
