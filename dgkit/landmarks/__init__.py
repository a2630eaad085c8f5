"""Face landmarks: 68 iBUG points with relative depth, from pluggable backends.

    from dgkit.landmarks import detect_landmarks, detect_faces
    lm = detect_landmarks(photo_rgb)            # (68, 3) x, y image pixels, z depth (smaller = closer)
    faces = detect_faces(photo_rgb)             # every face, largest first: FaceDetection(...)
    resolve_backend("auto").name                # "fan" when its weights are present, else "mediapipe"

Backends (``backend=`` argument): ``"mediapipe"`` (mediapipe 0.10.14 face mesh, runs offline),
``"fan"`` / ``"fan2d"`` (face-alignment's FAN, the paper's detector; needs its weight files, never
downloads them), ``"auto"``. Add one by subclassing :class:`LandmarkBackend` and calling
:func:`register_backend`. Importing this package loads no model and imports neither mediapipe nor torch.

Accuracy against real annotated photos: :mod:`dgkit.landmarks.evaluate` (NME over the 51 inner points).
"""

from __future__ import annotations

from .api import detect_faces, detect_landmarks
from .base import (
    AUTO_ORDER,
    MIN_IMAGE_SIDE,
    FaceDetection,
    LandmarkBackend,
    available_backends,
    backend_status,
    clear_backend_cache,
    get_backend,
    register_backend,
    resolve_backend,
)
from .mesh68 import MESH_TO_IBUG68, mesh_to_ibug68

__all__ = [
    "AUTO_ORDER",
    "MESH_TO_IBUG68",
    "MIN_IMAGE_SIDE",
    "FaceDetection",
    "LandmarkBackend",
    "available_backends",
    "backend_status",
    "clear_backend_cache",
    "detect_faces",
    "detect_landmarks",
    "get_backend",
    "mesh_to_ibug68",
    "register_backend",
    "resolve_backend",
]
