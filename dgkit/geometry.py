"""Head pose and 3D landmark edits: turn a face, open its mouth, close its eyes, all on 68 landmarks.

Coordinate frame (every function here)
--------------------------------------
Landmarks are float arrays ``(68, 3)`` in iBUG order with columns ``x, y, z``: x to the image right and y down,
in pixels of some frame (photo pixels or 256 ArcFace-crop pixels); z is relative depth on the x scale and
**grows away from the viewer** (the nose tip has the smallest z), like MediaPipe's face mesh. The axes
(x right, y down, z into the image) are right-handed. Only x, y are ever drawn or fed to the DG networks; z
lets us rotate. Projection is weak perspective: orthographic, scale kept (x, y of a rotated point are its
image position).

Head pose (degrees), measured against :func:`mean_face_3d`, which is exactly frontal (0, 0, 0):

* **yaw > 0**: the face turns toward image-right (its nose points to the image right; the DG sketch calls
  this the 'right' pose branch, docs/how-dg-works.md §5).
* **pitch > 0**: looking up (the nose moves up in the image).
* **roll > 0**: the face tilts clockwise in the image.

The rotation for (yaw, pitch, roll) is ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)``: yaw about the head's vertical
axis first, then pitch, then in-image roll. :func:`head_pose` and :func:`rotation_matrix` are exact inverses
(for |pitch| < 90).

Example::

    from dgkit.geometry import mean_face_3d, head_pose, rotate_landmarks, edit_expression

    face = mean_face_3d()                                  # (68, 3), frontal, in the 256 crop
    turned = rotate_landmarks(face, yaw=40)                # nose now points to image right
    head_pose(turned)                                      # HeadPose(yaw=40.0, pitch=0.0, roll=0.0)
    smiling = edit_expression(turned, smile=0.15, mouth_open=0.2)
    lm_for_dg = smiling[:, :2]                             # x, y in crop pixels, like detected landmarks
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
from skimage.transform import SimilarityTransform

from .errors import InputError, LandmarkError
from .face68 import (
    BROWS,
    EYE_CORNERS,
    EYELID_PAIRS,
    INNER_MOUTH_CORNERS,
    JAW,
    LEFT_EYE,
    MOUTH_CORNERS,
    NOSE,
    RIGHT_EYE,
    check_landmarks,
)

__all__ = [
    "HeadPose",
    "PoseFit",
    "mean_face_3d",
    "rotation_matrix",
    "pose_from_rotation",
    "fit_pose",
    "head_pose",
    "rotate_landmarks",
    "pose_landmarks",
    "frontalize",
    "edit_expression",
    "lift_to_3d",
    "inter_ocular_distance",
    "similarity_fit",
    "RIGID_POINTS",
]

# Points that expressions barely move (upper jaw, brows, nose, eye corners): the pose is fitted on these, so
# opening the mouth, smiling or blinking does not change the head pose (and edits compose exactly).
RIGID_POINTS = (*JAW[:4], *JAW[-4:], *BROWS, *NOSE, *EYE_CORNERS)


# --- validation ---------------------------------------------------------------------------------------------
def inter_ocular_distance(landmarks) -> float:
    """Distance between the two eye centres (means of points 36-41 and 42-47), in the landmarks' units.

    Uses x, y (and z if present). Raises LandmarkError when it is zero (degenerate landmarks).
    """
    lm = check_landmarks(landmarks)
    d = float(np.linalg.norm(lm[RIGHT_EYE].mean(0) - lm[LEFT_EYE].mean(0)))
    if not d > 1e-9:
        raise LandmarkError("the two eye centres coincide (zero inter-ocular distance): landmarks are degenerate.")
    return d


# --- the mean face ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _mean_face_crop() -> np.ndarray:
    text = resources.files("dgkit").joinpath("assets/mean_face_3d.json").read_text()
    points = np.asarray(json.loads(text)["points"], dtype=np.float64)
    assert points.shape == (68, 3)
    points.setflags(write=False)
    return points


def mean_face_3d(frame: str = "crop") -> np.ndarray:
    """A canonical, exactly frontal, neutral (mouth closed) 3D face: ``(68, 3)`` float64, iBUG order.

    Derived from MediaPipe's canonical face model (Apache-2.0) through the 478->68 correspondence of
    :mod:`dgkit.landmarks.mesh68`; ``scripts/make_mean_face.py`` regenerates the asset ``dgkit/assets/mean_face_3d.json``
    and documents each step. Its jaw points lie on the 3D face surface (like FAN-3D), slightly inside the
    visible 2D outline that 2D annotations follow.

    Args:
        frame: ``"crop"``: 256x256 ArcFace-crop pixels, placed on the 5-point alignment template (docs/how-dg-works.md §1) by scale +
            translation (eye centres at about (91.3, 104.5) and (164.7, 104.5), nose tip (128.0, 140.2), mouth
            corners at y 184.9; 2.0 px RMS from the template), z mean 0.
            ``"unit"``: centred on the centroid of the 68 points, inter-ocular distance 1.

    Returns:
        A new array (safe to modify).
    """
    face = _mean_face_crop().copy()
    if frame == "crop":
        return face
    if frame == "unit":
        face -= face.mean(axis=0)
        return face / inter_ocular_distance(face)
    raise InputError(f"unknown frame {frame!r}; use 'crop' (256 ArcFace crop pixels) or 'unit'.")


# --- rotations ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadPose:
    """Head orientation in degrees (see the module docstring for the signs).

    yaw > 0: nose points to image right; pitch > 0: looking up; roll > 0: clockwise in the image.
    Unpacks like a tuple: ``yaw, pitch, roll = head_pose(lm)``.
    """

    yaw: float
    pitch: float
    roll: float

    def __iter__(self):
        return iter((self.yaw, self.pitch, self.roll))

    def __str__(self) -> str:
        return f"yaw {self.yaw:+.1f}°, pitch {self.pitch:+.1f}°, roll {self.roll:+.1f}°"


def rotation_matrix(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """The (3, 3) rotation ``Rz(roll) @ Rx(pitch) @ Ry(yaw)`` for angles in degrees, in dgkit's axes.

    Acting on column vectors (x right, y down, z away from the viewer): with yaw > 0 the nose (pointing to
    -z) turns to +x, with pitch > 0 it turns to -y (up), with roll > 0 +x turns to +y (clockwise on screen).
    """
    y, p, r = (math.radians(float(a)) for a in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    ry = np.array([[cy, 0.0, -sy], [0.0, 1.0, 0.0], [sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    rz = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return rz @ rx @ ry


def pose_from_rotation(rotation: np.ndarray) -> HeadPose:
    """Inverse of :func:`rotation_matrix`: (yaw, pitch, roll) in degrees with pitch in [-90, 90]."""
    m = np.asarray(rotation, dtype=np.float64)
    # third row of Rz Rx Ry is (cos p sin y, -sin p, cos p cos y): roll does not touch it
    yaw = math.atan2(m[2, 0], m[2, 2])
    pitch = math.asin(float(np.clip(-m[2, 1], -1.0, 1.0)))
    roll = math.atan2(-m[0, 1], m[1, 1])
    return HeadPose(math.degrees(yaw), math.degrees(pitch), math.degrees(roll))


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ scale * R @ src + t`` (Umeyama, proper rotation), 2D or 3D.

    Args:
        src, dst: ``(N, d)`` point sets, d = 2 or 3.

    Returns:
        ``(scale, R (d, d), t (d,))``. Raises LandmarkError if the points are degenerate.
    """
    tform = _estimate_similarity(np.asarray(src, np.float64), np.asarray(dst, np.float64))
    dim = src.shape[1]
    linear = tform.params[:dim, :dim]
    scale = abs(float(np.linalg.det(linear))) ** (1.0 / dim)
    if not scale > 1e-12:
        raise LandmarkError("landmarks are degenerate (all points coincide); cannot fit a pose.")
    return scale, linear / scale, tform.params[:dim, dim].copy()


def _estimate_similarity(src: np.ndarray, dst: np.ndarray) -> SimilarityTransform:
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        tform = SimilarityTransform.from_estimate(src, dst)
        ok = bool(tform)
    else:  # older scikit-image
        tform = SimilarityTransform(dimensionality=src.shape[1])
        ok = tform.estimate(src, dst)
    if not ok or not np.all(np.isfinite(tform.params)):
        raise LandmarkError("landmarks are degenerate (collinear or coincident); cannot fit a similarity.")
    return tform


@dataclass(frozen=True)
class PoseFit:
    """A fitted ``landmarks ≈ scale * rotation @ mean_face + translation`` (all in the landmarks' frame).

    Attributes:
        rotation: (3, 3) proper rotation (dgkit axes; :attr:`pose` gives the angles).
        scale: landmarks units per mean-face (crop) pixel.
        translation: (3,) offset.
        centroid: (3,) centroid of the 68 landmarks (the default centre of rotation).
        rms: root-mean-square 3D residual over the fitted rigid points, divided by the inter-ocular distance
            (how unlike the mean face the shape is; about 0 for the mean face, 0.05-0.1 for real faces).
    """

    rotation: np.ndarray
    scale: float
    translation: np.ndarray
    centroid: np.ndarray
    rms: float

    @property
    def pose(self) -> HeadPose:
        return pose_from_rotation(self.rotation)

    def to_canonical(self, landmarks3d: np.ndarray) -> np.ndarray:
        """Undo the fit: landmarks in the mean face's frontal frame and scale (crop pixels)."""
        return (np.asarray(landmarks3d) - self.translation) @ self.rotation / self.scale

    def from_canonical(self, canonical3d: np.ndarray) -> np.ndarray:
        """Apply the fit: frontal mean-face-frame points -> this face's pose, position and scale."""
        return self.scale * np.asarray(canonical3d) @ self.rotation.T + self.translation


def fit_pose(landmarks3d) -> PoseFit:
    """Fit the rigid pose + scale of the mean face to 3D landmarks (3D Umeyama, proper rotation).

    Only :data:`RIGID_POINTS` (upper jaw, brows, nose, eye corners) are fitted, so expressions (mouth, lower
    jaw, eyelids) do not tilt the estimate.

    Args:
        landmarks3d: ``(68, 3)``: x, y pixels of any frame, z depth on the x scale growing away from the viewer.

    Raises:
        LandmarkError: bad shape/values, flat z (2D points with zero depth), or a z axis that points toward
            the viewer (the mirror-image fit is much better: negate z).
    """
    lm = check_landmarks(landmarks3d, dims=(3,), name="landmarks3d")
    iod = inter_ocular_distance(lm)
    if np.ptp(lm[:, 2]) < 1e-6 * iod:
        raise LandmarkError(
            "landmarks3d have constant z (no depth), so the head pose is undefined. Use a 3D landmark backend, "
            "or give 2D points a depth with dgkit.geometry.lift_to_3d."
        )
    rigid = list(RIGID_POINTS)
    mean, pts = _mean_face_crop()[rigid], lm[rigid]
    scale, rot, shift = similarity_fit(mean, pts)
    rms = float(np.sqrt(((scale * mean @ rot.T + shift - pts) ** 2).sum(1).mean())) / iod
    mirrored = pts * np.array([1.0, 1.0, -1.0])
    m_scale, m_rot, m_shift = similarity_fit(mean, mirrored)
    m_rms = float(np.sqrt(((m_scale * mean @ m_rot.T + m_shift - mirrored) ** 2).sum(1).mean())) / iod
    if rms > 0.08 and m_rms < 0.5 * rms:
        raise LandmarkError(
            f"landmarks3d fit the mean face far better with z negated (residual {m_rms:.3f} vs {rms:.3f} "
            "inter-ocular distances): their z seems to grow toward the viewer. dgkit's z grows away from the "
            "viewer (nose tip smallest, like MediaPipe); pass landmarks3d * [1, 1, -1]."
        )
    return PoseFit(rotation=rot, scale=scale, translation=shift, centroid=lm.mean(axis=0), rms=rms)


def head_pose(landmarks3d) -> HeadPose:
    """Yaw, pitch and roll (degrees) of a face from its 3D landmarks.

    Fits a rotation + scale + translation of :func:`mean_face_3d` to the landmarks (Umeyama, on the points
    that expressions barely move: :data:`RIGID_POINTS`) and reads the angles of
    ``R = Rz(roll) Rx(pitch) Ry(yaw)``. Signs: yaw > 0 nose toward image right, pitch > 0 looking up,
    roll > 0 clockwise in the image. For faces shaped unlike the mean face the angles are estimates
    (a few degrees); ``fit_pose(lm).rms`` says how well the shape matched.

    Args:
        landmarks3d: ``(68, 3)`` float, x, y pixels, z depth on the x scale, away from the viewer.
    """
    return fit_pose(landmarks3d).pose


def rotate_landmarks(
    landmarks3d, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, *, center=None
) -> np.ndarray:
    """Rotate 3D landmarks by (yaw, pitch, roll) degrees about the face centre; returns ``(68, 3)``.

    The rotation ``R = rotation_matrix(yaw, pitch, roll)`` acts in the camera's axes and on top of the
    current pose (``new R = R @ current R``): a frontal face ends at exactly (yaw, pitch, roll); a face at
    yaw 40 rotated by yaw=30 ends at yaw 70. To undo, rotate by the negated angles one axis at a time in
    the reverse order (roll, then pitch, then yaw), or set an absolute pose with :func:`pose_landmarks`.
    The projection is weak perspective (x, y of the rotated points; scale kept), in the input's frame, so
    the result feeds the DG networks like detected landmarks (``result[:, :2]``). Any yaw, up to ±90 and
    beyond, gives finite points (hidden points stay in the array; the sketch decides what to draw).

    Args:
        landmarks3d: ``(68, 3)`` float (x, y pixels, z depth on the x scale).
        yaw, pitch, roll: degrees, signs as in :class:`HeadPose`.
        center: ``(3,)`` (or ``(2,)``, z then 0 relative to the mean depth) centre of rotation; default the
            centroid of the 68 points.
    """
    lm = check_landmarks(landmarks3d, dims=(3,), name="landmarks3d")
    c = _center(lm, center)
    return (lm - c) @ rotation_matrix(yaw, pitch, roll).T + c


def _center(lm: np.ndarray, center) -> np.ndarray:
    if center is None:
        return lm.mean(axis=0)
    c = np.asarray(center, dtype=np.float64).ravel()
    if c.shape == (2,):
        c = np.array([c[0], c[1], lm[:, 2].mean()])
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise InputError(f"center must be a finite (x, y) or (x, y, z) point, got {center!r}.")
    return c


def pose_landmarks(landmarks3d, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Set an absolute head pose: frontalize (undo :func:`head_pose`), then rotate to (yaw, pitch, roll).

    The face keeps its own shape, expression, centroid and scale; only its orientation changes, so
    ``head_pose(pose_landmarks(lm, 30, 0, 0)) ≈ (30, 0, 0)``. To change the pose *by* some amount about the
    head's own axes use ``pose_landmarks(lm, *(np.add(tuple(head_pose(lm)), (dyaw, dpitch, droll))))``.

    Args:
        landmarks3d: ``(68, 3)`` float (x, y pixels, z depth on the x scale).
        yaw, pitch, roll: target angles in degrees.

    Returns:
        ``(68, 3)`` float64 in the same frame.
    """
    lm = check_landmarks(landmarks3d, dims=(3,), name="landmarks3d")
    fit = fit_pose(lm)
    c = fit.centroid
    return (lm - c) @ (rotation_matrix(yaw, pitch, roll) @ fit.rotation.T).T + c


def frontalize(landmarks3d) -> np.ndarray:
    """The same face turned to yaw = pitch = roll = 0 about its centroid (``pose_landmarks(lm, 0, 0, 0)``)."""
    return pose_landmarks(landmarks3d, 0.0, 0.0, 0.0)


# --- expressions --------------------------------------------------------------------------------------------
# Weights of the jaw-drop for mouth_open: lower lip and chin follow fully, the jaw less toward the ears,
# the mouth corners half (they hinge between both lips).
_MOUTH_OPEN_WEIGHTS = {
    **{i: 1.0 for i in (55, 56, 57, 58, 59, 65, 66, 67)},
    **{i: 0.5 for i in (*MOUTH_CORNERS, *INNER_MOUTH_CORNERS)},
    8: 1.0,
    7: 0.85,
    9: 0.85,
    6: 0.6,
    10: 0.6,
    5: 0.35,
    11: 0.35,
    4: 0.15,
    12: 0.15,
}
_SMILE_CORNERS = {48: -1.0, 60: -1.0, 54: 1.0, 64: 1.0}  # point -> outward x direction in the frontal frame
_SMILE_NEIGHBOURS = {49: -1.0, 59: -1.0, 61: -1.0, 67: -1.0, 53: 1.0, 55: 1.0, 63: 1.0, 65: 1.0}


def edit_expression(landmarks3d, *, mouth_open: float = 0.0, eyes_open: float = 0.0, smile: float = 0.0) -> np.ndarray:
    """Change the expression of 3D landmarks at any head pose; returns ``(68, 3)`` in the same frame.

    The displacements are defined in the face's own frontal frame (after undoing :func:`fit_pose`'s rotation)
    and rotated back, so "down" means toward the chin whatever the pose. Units: ``IOD`` = the 3D distance
    between the eye centres. All amounts 0 return the input unchanged.

    Args:
        landmarks3d: ``(68, 3)`` float (x, y pixels, z depth on the x scale).
        mouth_open: the lower lip drops by ``mouth_open * IOD`` (the gap between inner-lip points 62 and 66
            grows by exactly that); the chin follows fully, the jaw less toward the ears, the mouth corners
            half. Negative values close the mouth, clamped at closed lips. Typical range -0.2 .. 0.6.
        eyes_open: the eyelid opening (upper lid 37, 38, 43, 44 relative to lower lid 41, 40, 47, 46) is
            multiplied by ``1 + eyes_open``: -1 closes the eyes (upper lid onto lower lid), 0.5 opens them
            50 % wider. Must be >= -1.
        smile: the mouth corners (48, 54, 60, 64) rise by ``smile * IOD`` and move outward by
            ``smile * IOD / 2``; the lip points next to them move half as much. Negative values pull the
            corners down and in (a frown). Typical range -0.15 .. 0.2 (0.2 is a broad smile).
    """
    lm = check_landmarks(landmarks3d, dims=(3,), name="landmarks3d")
    for label, value in (("mouth_open", mouth_open), ("eyes_open", eyes_open), ("smile", smile)):
        if not math.isfinite(float(value)):
            raise InputError(f"{label} must be a finite number, got {value!r}.")
    if eyes_open < -1.0:
        raise InputError(f"eyes_open must be >= -1 (-1 closes the eyes), got {eyes_open}.")
    out = lm.copy()
    if eyes_open != 0.0:
        # linear in the lid vector, so it needs no frontal frame
        for upper, lower in EYELID_PAIRS:
            out[upper] = lm[lower] + (1.0 + eyes_open) * (lm[upper] - lm[lower])
    if mouth_open == 0.0 and smile == 0.0:
        return out
    fit = fit_pose(lm)
    iod = inter_ocular_distance(lm)
    frontal = fit.to_canonical(lm) * fit.scale  # face's own frontal frame, landmarks' scale
    delta = np.zeros((68, 3))
    if mouth_open != 0.0:
        gap = float(frontal[66, 1] - frontal[62, 1])  # y down: lower minus upper inner lip
        amount = max(float(mouth_open) * iod, -max(gap, 0.0))  # never push the lips through each other
        for i, w in _MOUTH_OPEN_WEIGHTS.items():
            delta[i, 1] += w * amount
    if smile != 0.0:
        for group, weight in ((_SMILE_CORNERS, 1.0), (_SMILE_NEIGHBOURS, 0.5)):
            for i, outward in group.items():
                delta[i, 0] += weight * outward * 0.5 * smile * iod
                delta[i, 1] -= weight * smile * iod  # up = -y
    return out + delta @ fit.rotation.T


# --- 2D -> 3D -----------------------------------------------------------------------------------------------
def lift_to_3d(landmarks2d, reference3d=None) -> np.ndarray:
    """Give 2D landmarks a depth borrowed from 3D reference landmarks; returns ``(68, 3)``.

    Rule: fit a 2D similarity (Umeyama: scale s, in-plane rotation, translation) from ``reference3d[:, :2]``
    to ``landmarks2d``; the result keeps the given x, y exactly and takes
    ``z = s * (z_ref - mean(z_ref)) + mean(z_ref)`` (the reference's relief, scaled like its x, y, around its
    mean depth). Used to plot 2D IDSG target landmarks next to the 3D reference they were made from, or to
    feed 2D-only detections to the 3D tools (the depth is then only as right as the reference's pose is
    close to the 2D face's).

    Args:
        landmarks2d: ``(68, 2)`` (or ``(68, 3)``, z ignored) x, y pixels.
        reference3d: ``(68, 3)`` x, y pixels (any frame), z depth on the x scale; default :func:`mean_face_3d`.
    """
    lm2 = check_landmarks(landmarks2d, name="landmarks2d")[:, :2]
    ref = _mean_face_crop() if reference3d is None else check_landmarks(reference3d, dims=(3,), name="reference3d")
    scale, _, _ = similarity_fit(ref[:, :2], lm2)
    z_mean = ref[:, 2].mean()
    return np.column_stack([lm2, scale * (ref[:, 2] - z_mean) + z_mean])
