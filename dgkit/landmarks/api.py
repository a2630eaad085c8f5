"""The two public calls: :func:`detect_faces` (every face) and :func:`detect_landmarks` (the largest)."""

from __future__ import annotations

import numpy as np

from ..errors import NoFaceError
from ..io import as_rgb_uint8
from .base import (
    MIN_IMAGE_SIDE,
    FaceDetection,
    LandmarkBackend,
    available_backends,
    rank_faces,
    resolve_backend,
)


def detect_faces(image_rgb: np.ndarray, backend: str | LandmarkBackend = "auto") -> list[FaceDetection]:
    """Find every face in a photo and its 68 landmarks, largest face first.

    Args:
        image_rgb: (H, W, 3) uint8 RGB; anything :func:`dgkit.io.as_rgb_uint8` accepts (grey, RGBA
            composited on white, bool, float in [0, 1]). The array is not modified.
        backend: ``"auto"`` (FAN when its weights are present, else mediapipe), a registered name
            (``"mediapipe"``, ``"fan"``, ``"fan2d"``) or a :class:`LandmarkBackend` instance.

    Returns:
        A list of :class:`FaceDetection` (empty if there is no face): ``landmarks`` (68, 3) float64 x, y
        in image pixels and z relative depth on the x scale (zero-mean, smaller = closer to the camera),
        ``box`` (4,) x1, y1, x2, y2, ``score``, ``backend``; sorted by box area, largest first.

    Raises:
        InputError: not an image of a supported shape/dtype.
        BackendUnavailableError: the named backend cannot run here (the message says why).

    Example:
        >>> import skimage.data
        >>> faces = detect_faces(skimage.data.astronaut(), backend="mediapipe")
        >>> len(faces), faces[0].landmarks.shape
        (1, (68, 3))
    """
    image = as_rgb_uint8(image_rgb, name="image_rgb")
    chosen = resolve_backend(backend)
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        return []
    return rank_faces(chosen.detect(image))


def detect_landmarks(image_rgb: np.ndarray, backend: str | LandmarkBackend = "auto") -> np.ndarray:
    """68 landmarks of the most prominent (largest) face in a photo.

    Args:
        image_rgb: (H, W, 3) uint8 RGB (grayscale and RGBA accepted, see :func:`detect_faces`).
        backend: ``"auto"``, ``"mediapipe"``, ``"fan"``, ``"fan2d"`` or a :class:`LandmarkBackend`.

    Returns:
        (68, 3) float64: columns x, y in image pixels (iBUG-68 order), z relative depth on the x scale,
        zero-mean over the 68 points, smaller z = closer to the camera.

    Raises:
        NoFaceError: no face was found.
        InputError, BackendUnavailableError: see :func:`detect_faces`.

    Example:
        >>> import skimage.data
        >>> lm = detect_landmarks(skimage.data.astronaut(), backend="mediapipe")
        >>> lm.shape, lm.dtype
        ((68, 3), dtype('float64'))
    """
    image = as_rgb_uint8(image_rgb, name="image_rgb")
    chosen = resolve_backend(backend)
    faces = detect_faces(image, chosen)
    if not faces:
        h, w = image.shape[:2]
        others = [n for n in available_backends() if n != chosen.name]
        hint = f"backend={others[0]!r}" if others else "another backend (see dgkit.landmarks.backend_status())"
        raise NoFaceError(f"no face found in the image ({w}x{h}); try a larger/clearer face, or {hint} "
                          f"(this search used {chosen.name!r})")
    return faces[0].landmarks.copy()
