"""Interpolation in DG's latent spaces: landmark codes, identity features and style codes, head poses.

The IDSG encodes a reference's shape into a 136-value *landmark code*; the decoder turns a code plus a
source identity feature into target landmarks. Walking between two codes (linearly or on the sphere)
shows what the code space has learnt, and comparing with walking between the two reference *landmark
sets* (then encoding) shows how linear the encoder is. All DG calls are batched: one encoder, one decoder
and one generator call per path.

Shapes: landmarks (68,2) crop pixels x, y; codes (136,); ``ts`` is a 1-D sequence of mixing weights
(0 -> a, 1 -> b; values outside [0,1] extrapolate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from .weights import WeightsInfo

Method = Literal["linear", "spherical"]


# --- vector interpolation -----------------------------------------------------------------------------------
def _ts(t: Any) -> tuple[np.ndarray, bool]:
    arr = np.asarray(t, dtype=np.float64)
    if arr.ndim > 1:
        raise InputError(f"t must be a number or a 1-D sequence, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("t must be finite")
    return np.atleast_1d(arr), arr.ndim == 0


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"cannot interpolate between shapes {a.shape} and {b.shape}")
    return a, b


def lerp(a: Any, b: Any, t: Any) -> np.ndarray:
    """Linear interpolation ``(1-t) a + t b``.

    Args:
        a, b: arrays of the same shape S.
        t: scalar (returns shape S) or 1-D (T,) (returns (T,)+S). float64.
    """
    a, b = _pair(a, b)
    ts, scalar = _ts(t)
    out = (1 - ts).reshape(-1, *[1] * a.ndim) * a + ts.reshape(-1, *[1] * a.ndim) * b
    return out[0] if scalar else out


def slerp(a: Any, b: Any, t: Any, *, eps: float = 1e-6) -> np.ndarray:
    """Spherical interpolation: along the great circle between the directions of ``a`` and ``b``.

    ``sin((1-t)w)/sin(w) a + sin(t w)/sin(w) b`` with ``w`` the angle between the flattened vectors; the
    norm changes smoothly from |a| to |b| (it is not renormalized). When the vectors are (nearly) parallel
    or anti-parallel (``sin w < eps``), the great circle is ill-defined and :func:`lerp` is returned
    instead, which is the limit for parallel vectors. Shapes as in :func:`lerp`.
    """
    a, b = _pair(a, b)
    ts, scalar = _ts(t)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < eps or nb < eps:
        return lerp(a, b, ts[0] if scalar else ts)
    cos = float(np.clip(np.dot(a.ravel() / na, b.ravel() / nb), -1.0, 1.0))
    omega = float(np.arccos(cos))
    sin = float(np.sin(omega))
    if sin < eps:
        return lerp(a, b, ts[0] if scalar else ts)
    shape = (-1, *[1] * a.ndim)
    wa = (np.sin((1 - ts) * omega) / sin).reshape(shape)
    wb = (np.sin(ts * omega) / sin).reshape(shape)
    out = wa * a + wb * b
    return out[0] if scalar else out


def interpolate(a: Any, b: Any, t: Any, method: Method = "linear") -> np.ndarray:
    """:func:`lerp` or :func:`slerp` by name."""
    if method == "linear":
        return lerp(a, b, t)
    if method == "spherical":
        return slerp(a, b, t)
    raise InputError(f"method must be 'linear' or 'spherical', got {method!r}")


# --- PCA ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PCAResult:
    """Principal components of row vectors X (N,D): ``scores = (X - mean) @ components.T``.

    Attributes: mean (D,), components (k,D) orthonormal rows, explained_ratio (k,) share of the total
    variance, scores (N,k).
    """

    mean: np.ndarray
    components: np.ndarray
    explained_ratio: np.ndarray
    scores: np.ndarray


def pca(x: Any, k: int = 2) -> PCAResult:
    """PCA of (N,D) rows by numpy SVD; component signs fixed so each one's largest loading is positive."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or len(arr) < 2:
        raise InputError(f"PCA needs an (N,D) array with N >= 2, got {arr.shape}")
    mean = arr.mean(0)
    centred = arr - mean
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(k, vt.shape[0])
    comps = vt[:k].copy()
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(1)])
    comps *= signs[:, None]
    var = s ** 2
    ratio = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    if len(ratio) < k:
        ratio = np.pad(ratio, (0, k - len(ratio)))
    return PCAResult(mean=mean, components=comps, explained_ratio=ratio, scores=centred @ comps.T)


# --- DG paths -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CodeInterpolation:
    """A path between two references, every stage kept (batch axis = path position).

    Attributes:
        ts: (T,) mixing weights.
        method: "linear", "spherical" (code space) or "landmarks" (reference landmarks interpolated, then
            encoded).
        reference_landmarks: (T,68,2) crop px: the references' landmarks interpolated linearly; for the code
            methods they are only used for the eye correction (their eyelid openings).
        codes: (T,136) landmark codes.
        decoded_landmarks: (T,68,2) IDSG output; target_landmarks: (T,68,2) after eye correction.
        sketches: (T,256,256) uint8; images: (T,256,256,3) uint8 or None when not rendered.
        weights: the model's :class:`~dgkit.pipeline.WeightsInfo` (``.label``, ``.trained``).
    """

    ts: np.ndarray
    method: str
    reference_landmarks: np.ndarray
    codes: np.ndarray
    decoded_landmarks: np.ndarray
    target_landmarks: np.ndarray
    sketches: np.ndarray
    images: np.ndarray | None
    weights: WeightsInfo

    def __len__(self) -> int:
        return len(self.ts)


def _encoding(dg, source):
    from .pipeline import SourceEncoding

    if source is None:
        raise InputError("a source is needed (an aligned (256,256,3) crop or a SourceEncoding from "
                         "dg.encode_source): the IDSG decoder needs its identity feature")
    enc = source if isinstance(source, SourceEncoding) else dg.encode_source(source)
    return enc.select(0) if len(enc) > 1 else enc


def _pair_landmarks(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    from .pipeline import _as_landmark_batch

    la = _as_landmark_batch(a, "ref_a_lm")
    lb = _as_landmark_batch(b, "ref_b_lm")
    if len(la) != 1 or len(lb) != 1:
        raise InputError("ref_a_lm and ref_b_lm must each be one (68,2) landmark set in crop pixels")
    return la[0], lb[0]


def _finish(dg, ts, method, refs, codes, enc, render: bool) -> CodeInterpolation:
    from .pipeline import ReferenceEncoding

    steps = ReferenceEncoding(refs.astype(np.float32), codes.astype(np.float32))
    chain = dg.run_chain(steps, enc.id_feature, enc.style_code if render else None)
    return CodeInterpolation(ts=ts, method=method, reference_landmarks=steps.landmarks, codes=steps.landmark_code,
                             decoded_landmarks=chain.decoded_landmarks, target_landmarks=chain.target_landmarks,
                             sketches=chain.sketch, images=chain.image, weights=dg.weights)


def interpolate_codes(dg, ref_a_lm: Any, ref_b_lm: Any, ts: Sequence[float] | np.ndarray, method: Method = "linear",
                      *, source: Any, render: bool = True) -> CodeInterpolation:
    """Walk between two references' landmark codes and decode every step with one source's identity.

    Args:
        dg: a :class:`dgkit.DualGenerator`.
        ref_a_lm, ref_b_lm: (68,2) reference landmarks, crop pixels.
        ts: (T,) mixing weights.
        method: "linear" (lerp of the codes) or "spherical" (slerp).
        source: aligned (256,256,3) uint8 crop or a SourceEncoding (its first item is used).
        render: also run the generator (the slow part, ~0.6 s per image on CPU).
    Returns:
        :class:`CodeInterpolation`. The eye correction uses the linearly interpolated reference landmarks.
    """
    la, lb = _pair_landmarks(ref_a_lm, ref_b_lm)
    t, _ = _ts(ts)
    enc = _encoding(dg, source)
    ab = dg.encode_reference(np.stack([la, lb])).landmark_code.astype(np.float64)
    codes = interpolate(ab[0], ab[1], t, method)
    return _finish(dg, t, method, lerp(la, lb, t), codes, enc, render)


def interpolate_landmarks(dg, ref_a_lm: Any, ref_b_lm: Any, ts: Sequence[float] | np.ndarray, *, source: Any,
                          render: bool = True) -> CodeInterpolation:
    """The comparison path: interpolate the reference *landmarks* linearly, then encode and decode each.

    Same arguments and result as :func:`interpolate_codes` (``method="landmarks"``); ``codes`` are the
    encodings of the interpolated landmarks, so both paths can be compared in code space.
    """
    la, lb = _pair_landmarks(ref_a_lm, ref_b_lm)
    t, _ = _ts(ts)
    enc = _encoding(dg, source)
    refs = lerp(la, lb, t)
    codes = dg.encode_reference(refs.astype(np.float32)).landmark_code.astype(np.float64)
    return _finish(dg, t, "landmarks", refs, codes, enc, render)


class CodePathExplorer:
    """Frames along a code path on demand, for sliders: encodings are computed once and every frame is
    cached (by ``t`` rounded to ``decimals``), so moving a slider back and forth costs nothing.

    Example::

        ex = CodePathExplorer(dg, ref_a, ref_b, source=crop, method="spherical")
        frame = ex.frame(0.3)            # CodeInterpolation of length 1 (rendered)
    """

    def __init__(self, dg, ref_a_lm: Any, ref_b_lm: Any, *, source: Any, method: Method = "linear",
                 decimals: int = 2, render: bool = True):
        if method not in ("linear", "spherical", "landmarks"):
            raise InputError(f"method must be 'linear', 'spherical' or 'landmarks', got {method!r}")
        self.dg, self.method, self.decimals, self.render = dg, method, decimals, render
        self.ref_a, self.ref_b = _pair_landmarks(ref_a_lm, ref_b_lm)
        self.encoding = _encoding(dg, source)
        self.end_codes = dg.encode_reference(np.stack([self.ref_a, self.ref_b])).landmark_code.astype(np.float64)
        self._cache: dict[float, CodeInterpolation] = {}

    def frame(self, t: float) -> CodeInterpolation:
        """The path at ``t`` (rounded to ``decimals``); computed once, then served from the cache."""
        key = round(float(t), self.decimals)
        if key not in self._cache:
            ts = np.array([key])
            refs = lerp(self.ref_a, self.ref_b, ts)
            if self.method == "landmarks":
                codes = self.dg.encode_reference(refs.astype(np.float32)).landmark_code.astype(np.float64)
            else:
                codes = interpolate(self.end_codes[0], self.end_codes[1], ts, self.method)
            self._cache[key] = _finish(self.dg, ts, self.method, refs, codes, self.encoding, self.render)
        return self._cache[key]

    @property
    def cached(self) -> tuple[float, ...]:
        """The t values computed so far."""
        return tuple(sorted(self._cache))


@dataclass(frozen=True)
class IdentityInterpolation:
    """A path between two sources' identities under one reference.

    Attributes: ts (T,); method; id_features (T,4096); style_codes (T,128); target_landmarks (T,68,2);
    sketches (T,256,256) uint8; images (T,256,256,3) uint8 or None; weights: the model's
    :class:`~dgkit.pipeline.WeightsInfo`.
    """

    ts: np.ndarray
    method: str
    id_features: np.ndarray
    style_codes: np.ndarray
    target_landmarks: np.ndarray
    sketches: np.ndarray
    images: np.ndarray | None
    weights: WeightsInfo

    def __len__(self) -> int:
        return len(self.ts)


def interpolate_identity(dg, source_a: Any, source_b: Any, reference_lm: Any, ts: Sequence[float] | np.ndarray,
                         method: Method = "linear", *, render: bool = True) -> IdentityInterpolation:
    """Blend two sources: interpolate both the identity feature (shape, IDSG) and the style code (looks, RFG).

    Args:
        source_a, source_b: aligned (256,256,3) uint8 crops (encoded together in one batch) or SourceEncodings.
        reference_lm: (68,2) crop-pixel reference landmarks (pose and expression kept fixed).
        ts, method, render: as in :func:`interpolate_codes`.
    """
    from .pipeline import SourceEncoding

    t, _ = _ts(ts)
    if isinstance(source_a, SourceEncoding) and isinstance(source_b, SourceEncoding):
        ea, eb = source_a.select(0), source_b.select(0)
    else:
        a = _encoding(dg, source_a) if isinstance(source_a, SourceEncoding) else None
        b = _encoding(dg, source_b) if isinstance(source_b, SourceEncoding) else None
        if a is None and b is None:
            both = dg.encode_source(np.stack([np.asarray(source_a), np.asarray(source_b)]))
            a, b = both.select(0), both.select(1)
        a = a if a is not None else _encoding(dg, source_a)
        b = b if b is not None else _encoding(dg, source_b)
        ea, eb = a, b
    ref = dg.encode_reference(reference_lm)
    ids = interpolate(ea.id_feature[0], eb.id_feature[0], t, method).astype(np.float32)
    styles = interpolate(ea.style_code[0], eb.style_code[0], t, method).astype(np.float32)
    chain = dg.run_chain(ref, ids, styles if render else None)
    return IdentityInterpolation(ts=t, method=method, id_features=ids, style_codes=styles,
                                 target_landmarks=chain.target_landmarks, sketches=chain.sketch, images=chain.image,
                                 weights=dg.weights)


# --- pose sweeps --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoseSweep:
    """References made by turning one 3D face, and (optionally) DG's reenactment of each.

    Attributes:
        axis: "yaw", "pitch" or "roll"; angles: (T,) degrees (absolute pose, see
            :func:`dgkit.geometry.pose_landmarks`).
        reference_landmarks: (T,68,3) crop pixels (z on the x scale).
        result: a :class:`dgkit.Reenactment` of batch T, or None without a source.
    """

    axis: str
    angles: np.ndarray
    reference_landmarks: np.ndarray
    result: Any = None

    def __len__(self) -> int:
        return len(self.angles)


def pose_references(landmarks3d: Any, angles: Sequence[float], axis: str = "yaw", *, base: Sequence[float] =
                    (0.0, 0.0, 0.0)) -> np.ndarray:
    """(T,68,3) copies of a 3D face at absolute poses: ``axis`` takes each angle, the other two angles
    keep ``base`` (yaw, pitch, roll) degrees. Landmarks keep their frame (e.g. crop pixels)."""
    from .geometry import pose_landmarks

    names = ("yaw", "pitch", "roll")
    if axis not in names:
        raise InputError(f"axis must be one of {names}, got {axis!r}")
    out = []
    for a in np.asarray(angles, dtype=np.float64).ravel():
        pose = list(base)
        pose[names.index(axis)] = float(a)
        out.append(pose_landmarks(landmarks3d, *pose))
    return np.stack(out)


def pose_sweep(dg, landmarks3d: Any, angles: Sequence[float], axis: str = "yaw", *, source: Any = None,
               base: Sequence[float] = (0.0, 0.0, 0.0)) -> PoseSweep:
    """Turn a 3D reference face (crop pixels, (68,3)) through ``angles`` and reenact ``source`` with each
    pose in one batched DG call (no source: references only)."""
    refs = pose_references(landmarks3d, angles, axis, base=base)
    result = None
    if source is not None:
        enc = _encoding(dg, source)
        result = dg.reenact(enc, refs[:, :, :2].astype(np.float32))
    return PoseSweep(axis=axis, angles=np.asarray(angles, dtype=np.float64).ravel(), reference_landmarks=refs,
                     result=result)
