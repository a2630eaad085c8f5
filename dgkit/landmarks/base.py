"""The pieces every landmark backend shares: the result type, the backend interface, the registry.

Coordinate frame of every result: **image pixels** of the photo given to the backend, x to the right,
y down, (0, 0) the centre of the top-left pixel. Columns are x, y, z; z is relative depth on the x scale,
zero-mean over the 68 points, and **smaller z = closer to the camera**. Points follow the iBUG-68
(Multi-PIE) order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67.

A backend is a small class (like face-alignment's detectors) that turns an RGB uint8 image into a list
of :class:`FaceDetection`. Backends are registered by name; :func:`get_backend` builds each one once and
keeps it, so models load on first use only.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import BackendUnavailableError, InputError
from ..face68 import NUM_POINTS

logger = logging.getLogger("dgkit")


#: Images whose shorter side is below this many pixels cannot hold a face that any backend finds;
#: they give "no face" without running a model (small inputs also crash some detectors).
MIN_IMAGE_SIDE = 16


# --- result type ----------------------------------------------------------------------------------------
@dataclass(eq=False)
class FaceDetection:
    """One face found in an image.

    Attributes:
        landmarks: (68, 3) float64, columns x, y, z in image pixels (see the module docstring for the
            frame and the z sign), iBUG-68 order.
        box: (4,) float64 face box ``x1, y1, x2, y2`` in image pixels, as the backend's face detector
            gave it (it may reach outside the image for faces cut by the border).
        score: detector confidence in [0, 1]; NaN when a backend found the face without its detector.
        backend: name of the backend that produced it (``"mediapipe"``, ``"fan"``, ...).
    """

    landmarks: np.ndarray
    box: np.ndarray
    score: float
    backend: str

    def __post_init__(self) -> None:
        self.landmarks = np.asarray(self.landmarks, dtype=np.float64)
        self.box = np.asarray(self.box, dtype=np.float64).reshape(-1)
        self.score = float(self.score)
        if self.landmarks.shape != (NUM_POINTS, 3):
            raise InputError(f"FaceDetection.landmarks must be (68, 3), got {self.landmarks.shape}")
        if self.box.shape != (4,):
            raise InputError(f"FaceDetection.box must be (4,) x1, y1, x2, y2, got {self.box.shape}")

    @property
    def landmarks_2d(self) -> np.ndarray:
        """(68, 2) float64 view of x, y in image pixels."""
        return self.landmarks[:, :2]

    @property
    def area(self) -> float:
        """Area of :attr:`box` in square pixels (faces are ranked by it, largest first)."""
        return float(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0))

    def __repr__(self) -> str:  # arrays would flood a notebook cell
        box = ", ".join(f"{v:.1f}" for v in self.box)
        return (f"FaceDetection(backend={self.backend!r}, score={self.score:.3f}, box=[{box}], "
                f"landmarks=(68, 3))")


# --- box helpers ----------------------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (4,) x1, y1, x2, y2."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def landmark_box(points: np.ndarray) -> np.ndarray:
    """(4,) x1, y1, x2, y2 bounding box of points (N, >=2) given as x, y columns."""
    return np.concatenate([points[:, :2].min(axis=0), points[:, :2].max(axis=0)]).astype(np.float64)


def rank_faces(faces: list[FaceDetection], same_face_iou: float = 0.5) -> list[FaceDetection]:
    """Drop duplicates (landmark boxes overlapping more than ``same_face_iou``; the higher score stays)
    and sort the rest by box area, largest first."""
    by_score = sorted(faces, key=lambda f: -np.nan_to_num(f.score, nan=-1.0))
    kept: list[FaceDetection] = []
    for face in by_score:
        box = landmark_box(face.landmarks)
        if all(box_iou(box, landmark_box(k.landmarks)) <= same_face_iou for k in kept):
            kept.append(face)
    return sorted(kept, key=lambda f: -f.area)


# --- backend interface ----------------------------------------------------------------------------------
class LandmarkBackend(abc.ABC):
    """A way to find faces and their 68 landmarks. Subclass it and :func:`register_backend` it.

    ``detect`` receives an already-checked (H, W, 3) uint8 RGB C-contiguous array and returns every face
    it finds (any order, the caller ranks them). Build models lazily in ``detect`` and keep them on the
    instance; :func:`get_backend` caches instances, so each model is built once.
    """

    name: ClassVar[str] = ""

    @classmethod
    @abc.abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(True, short description) when usable here, else (False, what is missing and how to fix it).
        Must be cheap: no model is loaded and nothing is downloaded."""

    @abc.abstractmethod
    def detect(self, image_rgb: np.ndarray) -> list[FaceDetection]:
        """All faces in ``image_rgb`` (H, W, 3) uint8 RGB, landmarks in image pixels."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# --- registry -------------------------------------------------------------------------------------------
# name -> backend class, or "module:Class" so that a backend's module is imported only when needed
_REGISTRY: dict[str, type[LandmarkBackend] | str] = {
    "fan": "dgkit.landmarks.fan_backend:FanBackend",
    "fan2d": "dgkit.landmarks.fan_backend:Fan2DBackend",
    "mediapipe": "dgkit.landmarks.mediapipe_backend:MediapipeBackend",
}
#: the order "auto" tries: the paper's detector first, then the one that always runs offline
AUTO_ORDER = ("fan", "mediapipe")
_INSTANCES: dict[str, LandmarkBackend] = {}
_LOCK = threading.Lock()
_AUTO_LOGGED: set[str] = set()


def register_backend(name: str, backend: type[LandmarkBackend] | str, *, overwrite: bool = False) -> None:
    """Make a backend class (or a ``"module:Class"`` string, imported on first use) available by name."""
    if not isinstance(name, str) or not name or name == "auto":
        raise InputError(f"a backend name must be a non-empty string other than 'auto', got {name!r}")
    with _LOCK:
        if name in _REGISTRY and not overwrite:
            raise InputError(f"a landmark backend named {name!r} is already registered; "
                             "pass overwrite=True to replace it")
        _REGISTRY[name] = backend
        _INSTANCES.pop(name, None)
        _INSTANCES.pop("auto", None)


def unregister_backend(name: str) -> None:
    """Remove a registered backend (and its built instance; "auto" chooses again on its next use).

    Raises:
        InputError: no backend of that name is registered.
    """
    with _LOCK:
        if name not in _REGISTRY:
            raise InputError(f"no landmark backend named {name!r} is registered; registered: {sorted(_REGISTRY)}")
        del _REGISTRY[name]
        _INSTANCES.pop(name, None)
        _INSTANCES.pop("auto", None)


def registered_backends() -> list[str]:
    """Names of every registered backend, usable here or not ("auto" excluded); see :func:`backend_status`."""
    return sorted(_REGISTRY)


@contextlib.contextmanager
def isolated_backend_registry() -> Iterator[None]:
    """A block with its own copy of the registry and an empty instance cache, both restored on exit.

    Backends registered or unregistered inside, instances built inside and "auto"'s choice inside are all
    forgotten when the block ends; the process's registry and cache are as they were before. For tests and
    experiments::

        with isolated_backend_registry():
            register_backend("mine", MyBackend)
            detect_landmarks(photo, backend="mine")
    """
    with _LOCK:
        saved = dict(_REGISTRY), dict(_INSTANCES), set(_AUTO_LOGGED)
        _INSTANCES.clear()
        _AUTO_LOGGED.clear()
    try:
        yield
    finally:
        with _LOCK:
            for table, before in zip((_REGISTRY, _INSTANCES, _AUTO_LOGGED), saved, strict=True):
                table.clear()
                table.update(before)


def backend_class(name: str) -> type[LandmarkBackend]:
    """The class registered under ``name`` (imports its module if needed)."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise InputError(f"unknown landmark backend {name!r}; choose 'auto' or one of {sorted(_REGISTRY)}")
    if isinstance(entry, str):
        module_name, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module_name), attr)
        _REGISTRY[name] = entry
    return entry


def backend_status() -> dict[str, tuple[bool, str]]:
    """For every registered backend: (available, description or what is missing). Loads no model."""
    return {name: backend_class(name).available() for name in sorted(_REGISTRY)}


def available_backends() -> list[str]:
    """Names of the backends usable here, "auto"'s preference first."""
    order = [n for n in AUTO_ORDER if n in _REGISTRY] + sorted(n for n in _REGISTRY if n not in AUTO_ORDER)
    return [n for n in order if backend_class(n).available()[0]]


def get_backend(name: str) -> LandmarkBackend:
    """The cached instance of a registered backend (built on first call).

    Raises:
        InputError: unknown name.
        BackendUnavailableError: the backend is not installed or lacks its weights (says what to do).
    """
    if name == "auto":
        return resolve_backend("auto")
    with _LOCK:
        if name in _INSTANCES:
            return _INSTANCES[name]
        cls = backend_class(name)
        ok, reason = cls.available()
        if not ok:
            raise BackendUnavailableError(f"landmark backend {name!r} is not available: {reason}")
        instance = cls()
        _INSTANCES[name] = instance
        return instance


def clear_backend_cache() -> None:
    """Forget the built backends and "auto"'s choice (e.g. after adding FAN weights, so "auto" looks again)."""
    with _LOCK:
        _INSTANCES.clear()
        _AUTO_LOGGED.clear()


def resolve_backend(backend: str | LandmarkBackend = "auto") -> LandmarkBackend:
    """Turn ``"auto"``, a registered name or a backend instance into a backend instance.

    ``"auto"`` is FAN when face-alignment and its weights are present, else mediapipe; which one it chose
    is logged once on the ``"dgkit"`` logger and visible as ``resolve_backend("auto").name``. The choice
    is kept for the session; call :func:`clear_backend_cache` after adding FAN weights.
    """
    if isinstance(backend, LandmarkBackend):
        return backend
    if not isinstance(backend, str):
        raise InputError(f"backend must be 'auto', a backend name or a LandmarkBackend, got {backend!r}")
    if backend != "auto":
        return get_backend(backend)
    cached = _INSTANCES.get("auto")
    if cached is not None:  # decided once per session, so a video never switches backend midway
        return cached
    reasons = []
    for name in AUTO_ORDER:
        ok, reason = backend_class(name).available()
        if ok:
            instance = get_backend(name)
            _INSTANCES["auto"] = instance
            if name not in _AUTO_LOGGED:
                _AUTO_LOGGED.add(name)
                skipped = f" (skipped {'; '.join(r.split('. ')[0] for r in reasons)})" if reasons else ""
                logger.info("landmark backend 'auto' -> %r: %s%s", name, reason, skipped)
            return instance
        reasons.append(f"{name}: {reason}")
    raise BackendUnavailableError("no landmark backend is available here. " + " | ".join(reasons))
