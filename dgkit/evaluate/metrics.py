"""Per-output metrics of a reenacted face: small typed functions on landmarks and images.

Frames: every landmark array here is ``(68, 2|3)`` float, iBUG order, columns x, y[, z] in the pixels of the
*output* image, i.e. 256x256 ArcFace-crop pixels of the reference (DG and the baselines draw their output in the
reference's crop frame, so output, target and reference landmarks share one frame). z, when present, is relative
depth on the x scale (see :mod:`dgkit.geometry`); only the pose needs it.

What each metric compares (see also ``docs`` of :mod:`dgkit.evaluate`):

* :func:`pose_errors`: absolute yaw / pitch / roll differences in degrees (angles from :func:`dgkit.geometry.head_pose`).
* :func:`nme`: mean point-to-point distance over the 68 points divided by the square root of the *truth*
  landmarks' bounding-box area. The box (not the eye-corner distance) keeps the normaliser finite at large yaw,
  where the eye corners overlap in the image; large-pose landmark benchmarks normalise the same way.
* :func:`mouth_opening` / :func:`eye_opening`: mean inner-lip / eyelid gap divided by the distance from the
  eyes' midpoint to the bottom of the nose (point 33): a face-height unit that the yaw barely changes and that
  shrinks with pitch like the gaps do.
* :func:`identity_cosine`: cosine similarity of identity features (1 = same direction).
* :func:`psnr` (capped at :data:`PSNR_CAP_DB` for identical images) and :func:`ssim`, both from scikit-image.
* :func:`landmark_jitter`: how much the output's landmarks move between two frames *beyond* what the
  reference's landmarks moved, in the same box-size unit as :func:`nme`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import InputError
from ..face68 import CROP_SIZE, EYELID_PAIRS, INNER_LIP_PAIRS, LEFT_EYE, RIGHT_EYE, check_landmarks
from ..geometry import head_pose

__all__ = [
    "PSNR_CAP_DB",
    "PoseError",
    "pose_errors",
    "nme",
    "box_size",
    "mouth_opening",
    "eye_opening",
    "opening_errors",
    "identity_cosine",
    "psnr",
    "ssim",
    "landmark_jitter",
    "IdentityEncoder",
    "VggFaceIdentity",
]

PSNR_CAP_DB = 100.0
"""PSNR reported for identical images (whose true PSNR is infinite): 100 dB, far above any real result
(8-bit images that differ by one grey level in one pixel of a 256x256 crop are at ~96 dB). Capping keeps the
number finite in CSV/JSON and in means."""

_NOSE_BOTTOM = 33


# --- pose ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoseError:
    """Absolute angle differences in degrees; ``mean`` is the mean of the three."""

    yaw: float
    pitch: float
    roll: float

    @property
    def mean(self) -> float:
        return (self.yaw + self.pitch + self.roll) / 3.0


def _angle_diff(a: float, b: float) -> float:
    """|a - b| in degrees, wrapped to [0, 180]."""
    d = abs((a - b + 180.0) % 360.0 - 180.0)
    return float(d)


def pose_errors(output_landmarks3d, reference_pose) -> PoseError:
    """Head-pose error of an output face against a reference pose.

    Args:
        output_landmarks3d: ``(68, 3)`` landmarks detected on the output image (x, y px, z depth).
        reference_pose: the reference's (yaw, pitch, roll) in degrees: a :class:`dgkit.geometry.HeadPose`
            or any 3-sequence.

    Returns:
        :class:`PoseError`, absolute differences in degrees (wrapped to [0, 180]).
    """
    out = head_pose(output_landmarks3d)
    ref = tuple(float(v) for v in reference_pose)
    if len(ref) != 3:
        raise InputError(f"reference_pose must be (yaw, pitch, roll) in degrees, got {reference_pose!r}.")
    return PoseError(*(_angle_diff(o, r) for o, r in zip(out, ref)))


# --- shape and expression -----------------------------------------------------------------------------------
def box_size(landmarks) -> float:
    """sqrt(width * height) of the landmarks' x, y bounding box, in their pixels (> 0)."""
    lm = check_landmarks(landmarks)[:, :2]
    w, h = np.ptp(lm, axis=0)
    size = math.sqrt(max(float(w), 0.0) * max(float(h), 0.0))
    if not size > 1e-9:
        raise InputError("landmarks span a zero-area box: they are degenerate (all on one line or point).")
    return size


def nme(predicted, truth) -> float:
    """Normalised mean error: mean over the 68 points of the x, y distance, divided by ``box_size(truth)``.

    Args:
        predicted: ``(68, 2|3)`` e.g. landmarks detected on the output (z ignored).
        truth: ``(68, 2|3)`` in the same pixels, e.g. the target landmarks the method drew.

    Returns:
        a float >= 0 (0.05 = points off by 5 % of the face size on average).
    """
    p = check_landmarks(predicted, name="predicted")[:, :2]
    t = check_landmarks(truth, name="truth")[:, :2]
    return float(np.linalg.norm(p - t, axis=1).mean() / box_size(t))


def _face_height(lm: np.ndarray) -> float:
    eyes = 0.5 * (lm[RIGHT_EYE].mean(0) + lm[LEFT_EYE].mean(0))
    h = float(np.linalg.norm(eyes - lm[_NOSE_BOTTOM]))
    if not h > 1e-9:
        raise InputError("the eyes and the bottom of the nose coincide: landmarks are degenerate.")
    return h


def _gap(lm: np.ndarray, pairs) -> float:
    return float(np.mean([np.linalg.norm(lm[u] - lm[d]) for u, d in pairs]))


def mouth_opening(landmarks) -> float:
    """Mean inner-lip gap (pairs 61-67, 62-66, 63-65) over the eyes-to-nose-bottom distance (x, y only)."""
    lm = check_landmarks(landmarks)[:, :2]
    return _gap(lm, INNER_LIP_PAIRS) / _face_height(lm)


def eye_opening(landmarks) -> float:
    """Mean eyelid gap (pairs 37-41, 38-40, 43-47, 44-46) over the eyes-to-nose-bottom distance (x, y only)."""
    lm = check_landmarks(landmarks)[:, :2]
    return _gap(lm, EYELID_PAIRS) / _face_height(lm)


def opening_errors(output_landmarks, reference_landmarks) -> tuple[float, float]:
    """(mouth, eye) opening errors: ``|opening(output) - opening(reference)|`` in face-height units."""
    return (abs(mouth_opening(output_landmarks) - mouth_opening(reference_landmarks)),
            abs(eye_opening(output_landmarks) - eye_opening(reference_landmarks)))


# --- identity -----------------------------------------------------------------------------------------------
def identity_cosine(a, b) -> float:
    """Cosine similarity of two identity feature vectors (any length D; 1 = same direction, 0 = orthogonal).

    Raises InputError for different lengths or a zero vector.
    """
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    if x.shape != y.shape:
        raise InputError(f"identity features must have the same length, got {x.shape} and {y.shape}.")
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if not (nx > 0 and ny > 0):
        raise InputError("an identity feature is all zeros; its cosine similarity is undefined.")
    return float(np.clip(x @ y / (nx * ny), -1.0, 1.0))


@runtime_checkable
class IdentityEncoder(Protocol):
    """What :func:`dgkit.evaluate.evaluate` needs from an identity model (VGG-Face here; ArcFace, ... yours).

    Attributes:
        name: short label written into every result row, e.g. ``"vggface-fc7 (official)"``.
        trained: False when the encoder's weights are untrained (its cosines then mean nothing).

    ``encode(crops)`` takes ``(N, 256, 256, 3)`` uint8 RGB faces in the ArcFace-aligned 256 crop and returns
    ``(N, D)`` float features. Adapt the crop inside ``encode`` if your model wants another size or alignment.
    """

    name: str
    trained: bool

    def encode(self, crops: np.ndarray) -> np.ndarray: ...


class VggFaceIdentity:
    """VGG-Face fc7 (after ReLU, 4096-D): the identity feature DG's IDSG itself is conditioned on.

    Args:
        dg: a :class:`dgkit.pipeline.DualGenerator`; its VGG-Face network and device are used, and its
            weights label decides ``trained`` (synthetic weights make an untrained encoder).
    """

    def __init__(self, dg) -> None:
        self.dg = dg
        self.trained = bool(dg.weights.trained)
        self.name = f"vggface-fc7 ({dg.weights.label})"

    def encode(self, crops: np.ndarray) -> np.ndarray:
        import torch

        arr = np.asarray(crops)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[1:] != (CROP_SIZE, CROP_SIZE, 3) or arr.dtype != np.uint8:
            raise InputError(f"identity crops must be (N,256,256,3) uint8, got {arr.dtype} {arr.shape}.")
        with torch.inference_mode():
            x = self.dg._images_to_tensor(arr)
            return self.dg.vgg(x).float().cpu().numpy()

    def __repr__(self) -> str:
        return f"VggFaceIdentity({self.name!r})"


# --- images -------------------------------------------------------------------------------------------------
def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape or x.ndim != 3 or x.shape[2] != 3 or x.dtype != np.uint8 or y.dtype != np.uint8:
        raise InputError(f"PSNR/SSIM need two RGB uint8 images of the same shape, got {x.dtype} {x.shape} and "
                         f"{y.dtype} {y.shape}.")
    return x, y


def psnr(output, reference) -> float:
    """Peak signal-to-noise ratio in dB of two (H,W,3) uint8 RGB images (scikit-image, data range 255).

    Identical images give :data:`PSNR_CAP_DB` (their true value is infinite).
    """
    from skimage.metrics import peak_signal_noise_ratio

    x, y = _pair(output, reference)
    if np.array_equal(x, y):
        return PSNR_CAP_DB
    return float(min(peak_signal_noise_ratio(y, x, data_range=255), PSNR_CAP_DB))


def ssim(output, reference) -> float:
    """Structural similarity of two (H,W,3) uint8 RGB images (scikit-image, colour channels averaged; 1 = same)."""
    from skimage.metrics import structural_similarity

    x, y = _pair(output, reference)
    return float(structural_similarity(y, x, channel_axis=2, data_range=255))


# --- video --------------------------------------------------------------------------------------------------
def landmark_jitter(output_prev, output_now, reference_prev, reference_now) -> float:
    """Frame-to-frame landmark motion of the output that the reference did not have.

    ``mean_i |(out_now - out_prev)_i - (ref_now - ref_prev)_i| / box_size(ref_now)`` over the 68 points
    (x, y). 0 when the output moves exactly as the reference does (a still reference and a still output
    give 0; a flickering output gives > 0 even when its per-frame pose is right).
    """
    o0, o1 = (check_landmarks(v, name="output landmarks")[:, :2] for v in (output_prev, output_now))
    r0, r1 = (check_landmarks(v, name="reference landmarks")[:, :2] for v in (reference_prev, reference_now))
    return float(np.linalg.norm((o1 - o0) - (r1 - r0), axis=1).mean() / box_size(r1))
