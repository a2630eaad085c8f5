"""Contact sheets: every stage of a photo reenactment as one labelled RGB image (OpenCV drawing only).

::

    contact_sheet(result)   -> (H,W,3) uint8 RGB: photos and crops with landmarks, sketches, DG output, warp

The tile helpers (:func:`fit_tile`, :func:`draw_points`, :func:`titled_tile`, :func:`gray_tile`,
:func:`placeholder_tile`) are shared with the live view's panels. Images are RGB uint8; landmarks are
``(68,2+)`` float pixels of the image they are drawn on (x, y). DG images made with untrained weights carry the
kit's UNTRAINED banner (:func:`dgkit.viz.stamp_untrained`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from .sketch import draw_sketch
from .viz import is_untrained, stamp_untrained

if TYPE_CHECKING:  # pragma: no cover
    from .reenact import PhotoReenactment

__all__ = ["contact_sheet", "draw_points", "fit_tile", "gray_tile", "placeholder_tile", "titled_tile"]

TILE = 256
"""Side of one contact-sheet tile, px."""
BAR = 22
"""Height of a tile's title bar, px."""
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def fit_tile(image: np.ndarray, size: int = TILE) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Letterbox an RGB image into ``(size,size,3)`` on grey.

    Returns:
        (tile, scale, (offset_x, offset_y)): a point (x, y) of ``image`` lands at ``(x, y) * scale + offset``.
    """
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    tile = np.full((size, size, 3), 64, np.uint8)
    ox, oy = (size - nw) // 2, (size - nh) // 2
    tile[oy:oy + nh, ox:ox + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return tile, scale, (ox, oy)


def draw_points(tile: np.ndarray, landmarks: np.ndarray, scale: float = 1.0, offset=(0, 0),
                colour=(0, 255, 0)) -> np.ndarray:
    """Draw landmarks ``(68,2+)`` given in the un-scaled image's px onto ``tile`` (in place; returns it)."""
    for x, y in np.asarray(landmarks)[:, :2] * scale + np.asarray(offset):
        cv2.circle(tile, (round(x), round(y)), 2, colour, -1, lineType=cv2.LINE_AA)
    return tile


def titled_tile(tile: np.ndarray, title: str) -> np.ndarray:
    """A copy of an RGB tile with a dark title bar (:data:`BAR` px) above it."""
    bar = np.full((BAR, tile.shape[1], 3), 30, np.uint8)
    cv2.putText(bar, title, (5, 16), _FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, tile], axis=0)


def gray_tile(sketch: np.ndarray) -> np.ndarray:
    """A (H,W) grey image (a sketch) as (H,W,3) RGB."""
    return np.repeat(sketch[:, :, None], 3, axis=2)


def placeholder_tile(text: str, size: int = TILE) -> np.ndarray:
    """A grey ``(size,size,3)`` tile saying ``text`` (a panel with nothing to show yet)."""
    tile = np.full((size, size, 3), 90, np.uint8)
    cv2.putText(tile, text, (20, size // 2), _FONT, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    return tile


def _sheet_tiles(result: PhotoReenactment) -> list[np.ndarray]:
    """The eight titled tiles of :func:`contact_sheet`, in reading order."""
    src, ref = result.source, result.reference
    untrained = is_untrained(result)
    tiles = []
    for face, who in ((src, "source"), (ref, "reference")):
        fitted, scale, offset = fit_tile(face.photo)
        tiles.append(titled_tile(draw_points(fitted, face.landmarks, scale, offset), f"{who} photo ({face.backend})"))
        tiles.append(titled_tile(draw_points(face.crop.copy(), face.crop_landmarks), f"{who} crop (aligned)"))
    tiles.append(titled_tile(gray_tile(draw_sketch(ref.crop_landmarks[:, :2], kind="reference")), "reference sketch"))
    if result.dg is not None:
        tiles.append(titled_tile(stamp_untrained(gray_tile(result.dg.sketch[0]), untrained), "target sketch (DG IDSG)"))
        tiles.append(titled_tile(stamp_untrained(result.dg.image[0], untrained),
                                 f"DG output ({result.dg.sketch_intensity})"))
    else:
        tiles.append(titled_tile(gray_tile(draw_sketch(result.baselines["relative3d"])), "target sketch (relative 3D)"))
        tiles.append(titled_tile(placeholder_tile("no DG model given"), "DG output"))
    warp_title = "warp baseline (to DG target)" if result.warp_target == "dg" else "warp baseline (relative 3D)"
    tiles.append(titled_tile(result.baselines["warp"], warp_title))
    return tiles


def contact_sheet(result: PhotoReenactment, *, ncols: int = 4) -> np.ndarray:
    """Every stage of a photo reenactment as one labelled RGB image.

    Tiles (256 px, each with a title): source photo with landmarks, source crop with landmarks, reference
    photo with landmarks, reference crop, reference sketch, target sketch, DG output and the warp baseline; a
    header line names the weights. With untrained weights (``result.weights.trained`` False) the two tiles the
    networks made (target sketch, DG output) carry the red "UNTRAINED weights" banner.

    Args:
        result: a :class:`dgkit.reenact.PhotoReenactment`.
        ncols: tiles per row.
    Returns:
        (H,W,3) uint8 RGB (2 rows x 4 columns by default: 558 x 1024).
    """
    tiles = _sheet_tiles(result)
    ncols = max(1, min(ncols, len(tiles)))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % ncols)
    rows = [np.concatenate(tiles[i:i + ncols], axis=1) for i in range(0, len(tiles), ncols)]
    grid = np.concatenate(rows, axis=0)
    header = np.full((26, grid.shape[1], 3), 245, np.uint8)
    text = f"dgkit reenact - DG weights: {result.weights.label}"
    if result.notes:
        text += " | " + result.notes[0]
    cv2.putText(header, text[:150], (6, 18), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([header, grid], axis=0))
