"""Face alignment: 68 landmarks -> the 256x256 ArcFace-style crop DG works in (docs/how-dg-works.md §1).

Frames: ``landmarks68`` are image pixels (x, y) of the input photo; the returned landmarks are crop pixels of
the 256x256 crop. Normalized DG landmarks are crop pixels / 256.

The similarity is fitted with Umeyama's least-squares method *in float32*, exactly like the released demo
(scikit-image 0.19 on float32 points): a float64 fit moves the matrix by ~1e-5, which changes single crop
pixels by 1 through bilinear interpolation.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError, LandmarkError
from .face68 import CROP_SIZE, check_landmarks


# The 96x112 ArcFace 5-point template, doubled and shifted right by 31.9721 px, in float32 arithmetic
# (this is how the demo built it; building it in float64 gives a different float32 rounding).
_ARCFACE_96x112 = np.array(
    [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366], [33.5493, 92.3655], [62.7299, 92.2041]],
    dtype=np.float32,
)
ARCFACE_TEMPLATE_256: np.ndarray = _ARCFACE_96x112 * 2
ARCFACE_TEMPLATE_256[:, 0] += np.float32(31.9721)
ARCFACE_TEMPLATE_256.setflags(write=False)
"""(5,2) float32 crop pixels: eye centres (image-left, image-right), nose tip, mouth corners (left, right)."""


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """The 5 alignment points of 68 iBUG landmarks, (5,2), in the input's dtype.

    Eye centres are the means of the eye corners (36, 39) and (42, 45); then nose tip 30, mouth corners 48, 54.
    """
    lm = np.asarray(landmarks68)[:, :2]
    return np.stack([(lm[36] + lm[39]) / 2, (lm[42] + lm[45]) / 2, lm[30], lm[48], lm[54]])


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    Args:
        src, dst: (K,2) points; the arithmetic keeps their dtype (float32 for demo fidelity).
    Returns:
        (3,3) float64 homogeneous matrix M with ``dst ~ M @ [x, y, 1]``.
    """
    n, dim = src.shape
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    signs = np.ones(dim, dtype=np.float64)
    if np.linalg.det(cov) < 0:
        signs[-1] = -1
    u, s, vt = np.linalg.svd(cov)
    if np.linalg.matrix_rank(cov) < dim - 1:
        raise LandmarkError("alignment points are degenerate (all on one spot); check the landmarks")
    m = np.eye(dim + 1, dtype=np.float64)
    m[:dim, :dim] = u @ np.diag(signs) @ vt
    scale = 1.0 / src_c.var(axis=0).sum() * (s @ signs)
    m[:dim, dim] = dst_mean - scale * (m[:dim, :dim] @ src_mean.T)
    m[:dim, :dim] *= scale
    return m


def alignment_matrix(landmarks68: np.ndarray) -> np.ndarray:
    """(2,3) float64 matrix mapping image pixels to 256-crop pixels (float32 Umeyama on the 5 points)."""
    lm = check_landmarks(landmarks68, "landmarks68").astype(np.float32)
    pts = five_points(lm)
    if np.linalg.norm(pts[0] - pts[1]) < 1e-3:
        raise LandmarkError("the two eye centres coincide; these landmarks cannot be aligned")
    _check_spread(pts)
    matrix = umeyama_similarity(pts, np.asarray(ARCFACE_TEMPLATE_256))[:2]
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if not MIN_SCALE <= scale <= MAX_SCALE:
        eyes = float(np.linalg.norm(pts[0] - pts[1]))
        raise LandmarkError(
            f"these landmarks would scale the face by {scale:.3g} to fit the 256x256 crop (eyes {eyes:.3g} px "
            f"apart); dgkit accepts {MIN_SCALE:g} to {MAX_SCALE:g}. Landmarks must be image pixels (not "
            "normalised to [0, 1]) of a face that is at least a few pixels wide."
        )
    return matrix


# the 5 alignment points must span a plane: their smaller spread is at least this share of the larger one
MIN_SPREAD_RATIO = 0.05
# crop px per image px: 100 means eyes less than a pixel apart, 0.001 eyes ~70,000 px apart
MIN_SCALE, MAX_SCALE = 1e-3, 100.0


def _check_spread(pts: np.ndarray) -> None:
    """LandmarkError when the 5 points (eyes, nose, mouth corners) lie (nearly) on one line."""
    centred = pts.astype(np.float64) - pts.mean(axis=0)
    spread = np.linalg.svd(centred, compute_uv=False)
    if spread[0] <= 0 or spread[1] / spread[0] < MIN_SPREAD_RATIO:
        raise LandmarkError(
            "the eyes, nose tip and mouth corners of these landmarks lie on one line, which no face does; the "
            "landmarks are broken (check their order: 68 iBUG points, x then y) and cannot be aligned."
        )


def transform_landmarks(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (68,2|3) image-pixel landmarks with a (2,3) similarity; z (if any) is multiplied by its scale.

    The x, y mapping is float64 arithmetic stored as float32, as in the demo. Returns float32.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    out = np.empty(lm.shape, dtype=np.float32)
    out[:, :2] = lm[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    if lm.shape[1] == 3:
        out[:, 2] = lm[:, 2] * np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return out


def align_face(image_rgb: np.ndarray, landmarks68: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop a face to DG's 256x256 frame with the 5-point ArcFace similarity.

    Args:
        image_rgb: (H,W,3) uint8 photo (RGB; the warp is channel-agnostic).
        landmarks68: (68,2) or (68,3) landmarks in image pixels, x then y (z optional, relative depth).
    Returns:
        crop: (256,256,3) uint8, bilinear, black outside the photo.
        landmarks_in_crop: float32, same number of columns as the input, in crop pixels.

    Example:
        >>> crop, lm = align_face(photo, dgkit.detect_landmarks(photo))
        >>> dg.reenact(source_crop, lm[:, :2])
    """
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(
            f"align_face expects an RGB uint8 image of shape (H,W,3), got {image.dtype} {image.shape}; "
            "use dgkit.read_image() to load and convert photos"
        )
    matrix = alignment_matrix(landmarks68)
    crop = cv2.warpAffine(image, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crop, transform_landmarks(landmarks68, matrix)
