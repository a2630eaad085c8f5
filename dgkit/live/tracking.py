"""Face tracking for the live shape path: one landmark-model run per camera frame instead of a full search.

A full search of one photo with the ``"mediapipe"`` backend (:func:`dgkit.landmarks.detect_faces`) runs two
face detectors (short and full range, again on a padded image when they find nothing) and then the 478-point
mesh several times on a crop: about 60 ms of CPU for a 640x480 frame, more than a 15 frames/s camera leaves.
Between camera frames a face moves little, so :class:`FaceTracker` uses MediaPipe's face mesh in its video
(tracking) mode on the whole frame: the region of interest of each frame comes from the previous frame's mesh,
and only the landmark model runs on it (about 8 ms of CPU). The mesh's own face detector runs only when
there is nothing to track.

* **Lost face**: when the mesh finds no face where the last one was (the face left, jumped, or is covered),
  the tracker runs the backend's full search on that same frame, so a frame gives either landmarks of that
  frame or no face, never the previous frame's landmarks.
* **Periodic re-detection**: every ``redetect_every`` frames the tracking state is dropped and the next frame
  starts from a detection (a drifted region of interest or a second, nearer face is picked up).

Landmarks are the backend's: (68, 3) float64 in image pixels, x, y, and z (relative depth on the x scale,
zero-mean, smaller = closer to the camera), from the same 478 -> 68 mapping as :func:`detect_faces`.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..landmarks import LandmarkBackend, detect_faces, resolve_backend
from ..landmarks.base import FaceDetection, landmark_box

__all__ = ["FaceTracker"]


class FaceTracker:
    """Landmarks of one face per video frame, tracked between frames (mediapipe backend).

    Args:
        backend: the :class:`~dgkit.landmarks.mediapipe_backend.MediapipeBackend` (instance or ``"mediapipe"``)
            whose full search runs when the tracked face is lost.
        redetect_every: drop the tracking state every this many frames (0: only when the face is lost).
        min_score: minimum face-detection and tracking confidence of the mesh.

    Attributes:
        frames: frames seen; tracked: frames whose face came from the tracking mesh; searched: frames that
        needed the backend's full search (tracking lost or not started); redetections: periodic resets.

    Example:
        >>> tracker = FaceTracker("mediapipe")            # doctest: +SKIP
        >>> faces = tracker(frame)                          # [] or [FaceDetection], largest face only
    """

    def __init__(self, backend: str | LandmarkBackend = "mediapipe", *, redetect_every: int = 30,
                 min_score: float = 0.5) -> None:
        self.backend = resolve_backend(backend)
        if self.backend.name != "mediapipe":
            raise InputError(f"FaceTracker needs the mediapipe backend, got {self.backend.name!r}")
        self.redetect_every = int(redetect_every)
        self.min_score = float(min_score)
        self._mesh = None
        self.frames = self.tracked = self.searched = self.redetections = 0

    @staticmethod
    def supports(backend: str | LandmarkBackend) -> bool:
        """Whether ``backend`` (name or instance; ``"auto"`` as it resolves here) can be tracked."""
        try:
            return resolve_backend(backend).name == "mediapipe"
        except Exception:  # noqa: BLE001 - an unavailable backend fails later with its own clear message
            return False

    def _build(self):
        if self._mesh is None:
            from ..landmarks.mediapipe_backend import _import_mediapipe, quiet_mediapipe

            mp = _import_mediapipe()
            with quiet_mediapipe(native=True):
                self._mesh = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=False, max_num_faces=1, refine_landmarks=True,
                    min_detection_confidence=self.min_score, min_tracking_confidence=self.min_score)
                self._mesh.process(np.zeros((64, 64, 3), np.uint8))  # start the graph while its logs are muted
        return self._mesh

    def reset(self, *, counters: bool = False) -> None:
        """Forget the tracked face: the next frame starts from a detection (``counters``: zero them too)."""
        if counters:
            self.frames = self.tracked = self.searched = self.redetections = 0
        if self._mesh is not None:
            from ..landmarks.mediapipe_backend import quiet_mediapipe

            with quiet_mediapipe():  # a frame without a face ends the mesh's tracking (no graph restart)
                self._mesh.process(np.zeros((64, 64, 3), np.uint8))

    def close(self) -> None:
        """Release the mesh graph and its worker threads (a later frame builds it again)."""
        mesh, self._mesh = self._mesh, None
        if mesh is not None:
            mesh.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: mediapipe may already be gone
            pass

    def warm_up(self, image_rgb: np.ndarray) -> None:
        """Build the models and run them once (then forget the face)."""
        self(image_rgb)
        self.reset(counters=True)

    def _mesh_points(self, image_rgb: np.ndarray) -> np.ndarray | None:
        from ..landmarks.mediapipe_backend import quiet_mediapipe

        mesh = self._build()
        with quiet_mediapipe():
            result = mesh.process(image_rgb)
        if not result.multi_face_landmarks:
            return None
        h, w = image_rgb.shape[:2]
        pts = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
        pts *= (w, h, w)  # normalized -> image px (z on the x scale), as the backend maps its crops
        return pts

    def __call__(self, image_rgb: np.ndarray) -> list[FaceDetection]:
        """The face in ``image_rgb`` ((H,W,3) uint8 RGB, C-contiguous): ``[FaceDetection]`` or ``[]``."""
        if self.redetect_every > 0 and self.frames > 0 and self.frames % self.redetect_every == 0:
            self.reset()
            self.redetections += 1
        self.frames += 1
        image_rgb = np.ascontiguousarray(image_rgb)  # mediapipe reads the buffer as is (no copy when already so)
        pts = self._mesh_points(image_rgb)
        if pts is None:  # nothing tracked on this frame: the full search, on this frame only
            self.searched += 1
            return detect_faces(image_rgb, self.backend)[:1]
        self.tracked += 1
        lm = self.backend._to68(pts)
        return [FaceDetection(lm, landmark_box(pts), float("nan"), self.backend.name)]
