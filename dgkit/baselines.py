"""Teaching baselines that need no DG weights: what reenactment looks like without the dual generator.

* :func:`naive_transfer`: use the reference's landmarks as the target as they are. The source then takes the
  reference's face *shape* too (eye distance, jaw width, nose length): the identity leak that DG's IDSG fixes.
* :func:`relative_transfer_3d`: keep the source's own shape and move it by the reference's pose and
  expression *change* (a classic 3D-landmark rule, no learning). Landmarks only.
* :func:`warp_to_landmarks`: move the source photo's pixels so its landmarks land on target landmarks
  (piecewise-affine warp). It cannot invent what the source does not show (teeth, the far cheek at large
  yaw, closed eyes), which is what DG's RFG generator learns to do.

Together they give an offline image path: ``warp_to_landmarks(src, src_lm, relative_transfer_3d(...))``.

Frames: landmarks are ``(68, 2)`` or ``(68, 3)`` float (x right, y down, pixels; z depth on the x scale,
growing away from the viewer); see :mod:`dgkit.geometry`.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay, QhullError

from .errors import InputError, LandmarkError
from .face68 import EYELID_PAIRS, INNER_LIP_PAIRS, check_landmarks
from .geometry import fit_pose, mean_face_3d, similarity_fit
from .io import ImageSource, read_image

__all__ = ["naive_transfer", "relative_transfer_3d", "warp_to_landmarks", "piecewise_affine_map"]


def naive_transfer(reference_landmarks) -> np.ndarray:
    """The reference's landmarks used unchanged as the target: ``(68, 2)`` float64 (x, y, same frame).

    This is what driving a landmark-to-face generator with raw reference landmarks does. The result carries
    the reference's identity (face proportions), so a generator following it makes the source look like the
    reference: DG's identity-aware sketch generator (IDSG) exists to avoid exactly this.

    Args:
        reference_landmarks: ``(68, 2)`` or ``(68, 3)`` (z dropped).
    """
    return check_landmarks(reference_landmarks, name="reference_landmarks")[:, :2].copy()


def relative_transfer_3d(source3d, reference3d, *, neutral3d=None, return_3d: bool = False) -> np.ndarray:
    """The source's own face shape with the reference's pose and expression (a no-learning IDSG stand-in).

    Rule (every step in the mean face's frontal frame, see :func:`dgkit.geometry.fit_pose`):

    1. Frontalize source, reference and neutral: undo each one's fitted pose, position and scale.
    2. Expression delta = frontal reference - frontal neutral. The default neutral is
       :func:`~dgkit.geometry.mean_face_3d` (scaled and aligned to the reference); then the delta also holds the
       reference's *shape* difference from the mean face, i.e. some identity leaks. Pass the reference
       person's own neutral frame (e.g. the first frame of the driving video) for a clean expression delta.
    3. Add the delta to the frontal source. Eyelids and inner lips that the delta pushed through each other
       are clamped closed.
    4. Re-pose with the reference's yaw, pitch and roll and place it at the reference's position and scale.

    Args:
        source3d: ``(68, 3)`` landmarks of the source face (any frame).
        reference3d: ``(68, 3)`` landmarks of the reference (driving) face; the result is in its frame.
        neutral3d: optional ``(68, 3)`` landmarks of the reference person with a neutral expression.
        return_3d: return ``(68, 3)`` (with depth) instead of ``(68, 2)``.

    Returns:
        ``(68, 2)`` (x, y; or ``(68, 3)``) float64 in the reference's frame, e.g. 256-crop pixels for the DG
        networks.
    """
    src = check_landmarks(source3d, dims=(3,), name="source3d")
    ref = check_landmarks(reference3d, dims=(3,), name="reference3d")
    src_fit, ref_fit = fit_pose(src), fit_pose(ref)
    frontal_src = src_fit.to_canonical(src)
    frontal_ref = ref_fit.to_canonical(ref)
    if neutral3d is None:
        frontal_neutral = mean_face_3d()
    else:
        neutral = check_landmarks(neutral3d, dims=(3,), name="neutral3d")
        frontal_neutral = fit_pose(neutral).to_canonical(neutral)
    # centroids line up before the subtraction; the translation comes back with the reference's fit
    frontal = (
        frontal_src
        - frontal_src.mean(0)
        + (frontal_ref - frontal_ref.mean(0))
        - (frontal_neutral - frontal_neutral.mean(0))
    )
    _close_crossed(frontal)
    out = ref_fit.from_canonical(frontal + frontal_ref.mean(0))
    return out if return_3d else out[:, :2].copy()


def _close_crossed(frontal: np.ndarray) -> None:
    """In a frontal frame (y down): an upper lid/lip below its lower partner is set onto it, in place."""
    for upper, lower in EYELID_PAIRS:
        if frontal[upper, 1] > frontal[lower, 1]:
            frontal[upper] = frontal[lower]  # closed eye: the upper lid rests on the lower one
    for upper, lower in INNER_LIP_PAIRS:
        if frontal[upper, 1] > frontal[lower, 1]:
            frontal[upper] = frontal[lower] = 0.5 * (frontal[upper] + frontal[lower])


def warp_to_landmarks(
    source_image: ImageSource,
    source_landmarks,
    target_landmarks,
    *,
    output_shape: tuple[int, int] = (256, 256),
    anchors_per_side: int = 8,
) -> np.ndarray:
    """Piecewise-affine warp of a photo so that its landmarks move onto target landmarks.

    The mesh is the Delaunay triangulation of the *source* landmarks plus ``anchors_per_side`` points on each side
    of the output frame (mapped into the source by the least-squares similarity between target and source
    landmarks): triangulating the source face, not the target, keeps triangles well shaped however far the target
    turns. Each mesh triangle is drawn at its target position with its own affine map, like a rasterizer:

    * triangles that flip orientation in the target (they face away: the far cheek, the nose's hidden side at
      large yaw) are not drawn, so they cannot fold the image over itself;
    * background triangles (those touching a frame anchor) are drawn first and face triangles over them;
    * pixels no drawn triangle covers follow the background similarity, so the frame has no holes.

    Sampling is bilinear (``cv2.remap``); pixels that map outside the source photo are black, as in the ArcFace
    crop. A 2D warp cannot show what the photo never saw (the far side of a turned head): that is what a learned
    generator is for. About 10-20 ms for a 256x256 output on one CPU thread.

    Args:
        source_image: the photo (path or RGB array; see :func:`dgkit.io.read_image`).
        source_landmarks: ``(68, 2|3)`` landmarks in *source image* pixels (z ignored).
        target_landmarks: ``(68, 2|3)`` landmarks in *output* pixels (z ignored).
        output_shape: ``(height, width)`` of the result.
        anchors_per_side: frame anchor points per side (>= 2; corners included).

    Returns:
        RGB uint8 ``(height, width, 3)``.
    """
    image = read_image(source_image)
    src = check_landmarks(source_landmarks, name="source_landmarks")[:, :2]
    dst = check_landmarks(target_landmarks, name="target_landmarks")[:, :2]
    height, width = (int(v) for v in output_shape)
    if height < 2 or width < 2:
        raise InputError(f"output_shape must be (height, width) of at least 2x2, got {output_shape!r}.")
    if anchors_per_side < 2:
        raise InputError(f"anchors_per_side must be at least 2, got {anchors_per_side}.")

    # output frame -> source image for the background: one similarity, fitted on the landmarks
    scale, rot, shift = similarity_fit(dst, src)
    edge_x = np.linspace(-1.0, width, anchors_per_side)  # just outside the pixel centres: full coverage
    edge_y = np.linspace(-1.0, height, anchors_per_side)[1:-1]
    frame = np.concatenate(
        [
            np.column_stack([edge_x, np.full_like(edge_x, -1.0)]),
            np.column_stack([edge_x, np.full_like(edge_x, float(height))]),
            np.column_stack([np.full_like(edge_y, -1.0), edge_y]),
            np.column_stack([np.full_like(edge_y, float(width)), edge_y]),
        ]
    )
    frame_src = scale * frame @ rot.T + shift

    # coincident source points (e.g. closed inner lips) cannot be triangulated: keep the first
    _, keep = np.unique(np.round(src, 3), axis=0, return_index=True)
    keep = np.sort(keep)
    in_pts = np.concatenate([src[keep], frame_src])
    out_pts = np.concatenate([dst[keep], frame])
    triangles = _triangulate(in_pts)

    # which triangle covers each output pixel (-1: none), drawn background first, face last
    area_in, area_out = _signed_area(in_pts[triangles]), _signed_area(out_pts[triangles])
    visible = (np.sign(area_in) == np.sign(area_out)) & (np.abs(area_out) > 1e-6)
    triangles = triangles[visible]
    is_face = (triangles < len(keep)).all(axis=1)
    triangles = np.concatenate([triangles[~is_face], triangles[is_face]])
    owner = np.full((height, width), -1, np.int32)
    for index, tri in enumerate(triangles):
        cv2.fillConvexPoly(owner, np.round(out_pts[tri] * 16).astype(np.int32), index, cv2.LINE_8, shift=4)
    maps = np.stack([cv2.getAffineTransform(out_pts[t].astype(np.float32), in_pts[t].astype(np.float32))
                     for t in triangles]) if len(triangles) else np.zeros((0, 2, 3))

    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float64)
    coords = scale * np.stack([grid_x, grid_y], axis=-1) @ rot.T + shift  # background similarity everywhere
    covered = owner >= 0
    affine = maps[owner[covered]]  # (K, 2, 3)
    xy = np.stack([grid_x[covered], grid_y[covered], np.ones(int(covered.sum()))], axis=-1)
    coords[covered] = np.einsum("kij,kj->ki", affine, xy)
    map_x, map_y = coords[..., 0].astype(np.float32), coords[..., 1].astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def _delaunay(points: np.ndarray) -> Delaunay:
    """Delaunay triangulation of ``(K, 2)`` points; a dgkit error when they are degenerate."""
    try:
        return Delaunay(points)
    except QhullError as exc:
        raise LandmarkError(f"could not triangulate the landmarks ({exc.args[0].splitlines()[0]}).") from None


def _triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles ``(T, 3)`` (vertex indices) of ``(K, 2)`` points."""
    return _delaunay(points).simplices


def _signed_area(triangles: np.ndarray) -> np.ndarray:
    """Twice the signed area of ``(T, 3, 2)`` triangles (the sign tells their orientation)."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def piecewise_affine_map(src_points: np.ndarray, dst_points: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Evaluate the piecewise-affine map ``src_points -> dst_points`` at ``coords``; returns ``(N, 2)``.

    The same map as ``skimage.transform.PiecewiseAffineTransform.from_estimate(src_points, dst_points)(coords)``
    (Delaunay triangulation of ``src_points``, one affine map per triangle; points outside the mesh give -1),
    evaluated with barycentric coordinates in one vectorized pass instead of one pass per triangle: about
    8x faster for a 256x256 grid and 68 landmarks (tests/test_baselines.py checks that both agree).

    Args:
        src_points, dst_points: ``(K, 2)`` corresponding points (x, y).
        coords: ``(N, 2)`` points (x, y) to map.
    """
    src_points = np.asarray(src_points, dtype=np.float64)
    dst_points = np.asarray(dst_points, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    tri = _delaunay(src_points)
    simplex = tri.find_simplex(coords)
    affine = tri.transform[simplex]  # (N, 3, 2): barycentric transform of each point's triangle
    partial = np.einsum("nij,nj->ni", affine[:, :2], coords - affine[:, 2])
    bary = np.column_stack([partial, 1.0 - partial.sum(axis=1)])  # (N, 3)
    mapped = np.einsum("nk,nkd->nd", bary, dst_points[tri.simplices[simplex]])
    mapped[simplex < 0] = -1.0
    return mapped
