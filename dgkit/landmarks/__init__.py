"""Face landmarks: 68 iBUG points with relative depth, from pluggable backends.

    from dgkit.landmarks import detect_landmarks, detect_faces
    lm = detect_landmarks(photo_rgb)            # (68, 3) x, y image pixels, z depth (smaller = closer)
    faces = detect_faces(photo_rgb)             # every face, largest first: FaceDetection(...)
    resolve_backend("auto").name                # "fan" when its weights are present, else "mediapipe"

Backends (``backend=`` argument): ``"mediapipe"`` (mediapipe 0.10.14 face mesh, runs offline),
``"fan"`` / ``"fan2d"`` (face-alignment's FAN, the paper's detector; needs its weight files, never
downloads them), ``"auto"``. Importing this package loads no model and imports neither mediapipe nor torch.

The backend registry (public; tests use it too)::

    register_backend("mine", MyBackend)         # a LandmarkBackend subclass, or "module:Class" (imported lazily)
    unregister_backend("mine")
    registered_backends()                       # every registered name; available_backends(): usable here
    backend_status()                            # name -> (available, description or what is missing)
    clear_backend_cache()                       # forget built models and "auto"'s choice (e.g. after adding FAN)
    with isolated_backend_registry():           # changes inside are undone on exit (registry and cache)
        ...

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
    isolated_backend_registry,
    register_backend,
    registered_backends,
    resolve_backend,
    unregister_backend,
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
    "isolated_backend_registry",
    "mesh_to_ibug68",
    "register_backend",
    "registered_backends",
    "resolve_backend",
    "unregister_backend",
]
