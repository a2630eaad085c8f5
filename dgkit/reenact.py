"""Reenact real photos and videos: detect, align, run DG (and the no-learning baselines), keep every stage.

::

    photo/array --read_image--> (H,W,3) uint8 --detect_faces (largest)--> (68,3) image px
                --alignment_matrix / align_face--> AlignedFace(crop (256,256,3), crop_landmarks (68,3) crop px)

    reenact_photos(source, reference, dg=dg)  -> PhotoReenactment (DG result + baselines, every intermediate)
    contact_sheet(result)                     -> one labelled RGB image of all stages
    reenact_video(source, driving, "out.mp4", dg=dg) -> VideoReport (streams frames, constant memory)
    iter_reenact_video(source, driving, dg=dg)       -> VideoFrame per driving frame (for notebooks)

Frames: "image px" are pixels of the photo or video frame, "crop px" of the 256x256 ArcFace-aligned crop;
landmark columns are x, y[, z] (z relative depth on the x scale, scaled like x by the alignment). Each
driving frame is aligned with its *own* ArcFace matrix, as the released demo did (``get_arcface`` per frame),
so the reference landmarks the networks see are always in crop px.

Without a DG model (``dg=None``) the baselines of :mod:`dgkit.baselines` still give an image: the source crop
warped onto the relative-3D target. The command line is ``dgkit reenact SOURCE REFERENCE -o OUT``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from .align import CROP_SIZE, align_face, alignment_matrix
from .baselines import naive_transfer, relative_transfer_3d, warp_to_landmarks
from .device import resolve_device
from .errors import InputError, NoFaceError, OutputExistsError, VideoError, WeightsNotFoundError
from .io import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    ImageSource,
    _refuse_protected,  # the writers' rule, checked before the slow work
    check_input_file,
    iter_video_frames,
    make_output_folder,
    read_image,
    video_info,
    write_image,
)
from .sketch import draw_sketch

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import DualGenerator, Reenactment, SourceEncoding

__all__ = [
    "AlignedFace",
    "PhotoReenactment",
    "VideoFrame",
    "VideoReport",
    "contact_sheet",
    "iter_reenact_video",
    "prepare_face",
    "reenact_photos",
    "reenact_video",
    "register_cli",
]

NO_DG_LABEL = "none (baselines only)"
# suffixes treated as videos on the command line (OpenCV's FFmpeg reads more than dgkit writes)
READ_VIDEO_SUFFIXES = (*VIDEO_SUFFIXES, ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
SMALL_FACE_EYE_PX = 40.0  # eye-centre distance in image px below which the crop is strongly upscaled


# --- one face ------------------------------------------------------------------------------------------------
@dataclass
class AlignedFace:
    """A photo, its largest face and that face's 256x256 ArcFace-aligned crop.

    Attributes:
        photo: (H,W,3) uint8 RGB, the whole photo as read.
        landmarks: (68,3) float64 image px: x, y, z (relative depth on the x scale).
        crop: (256,256,3) uint8 RGB aligned crop (black where the crop reaches outside the photo).
        crop_landmarks: (68,3) float32 crop px; x, y mapped by ``matrix``, z multiplied by its scale.
        matrix: (2,3) float64 similarity, image px -> crop px (``[x', y'] = M @ [x, y, 1]``).
        n_faces: number of faces found in the photo (the largest one is used).
        backend: landmark backend that found the face ("mediapipe", "fan", ...).
        notes: things worth telling the user (several faces, small face, face at the border).
    """

    photo: np.ndarray
    landmarks: np.ndarray
    crop: np.ndarray
    crop_landmarks: np.ndarray
    matrix: np.ndarray
    n_faces: int
    backend: str
    notes: list[str] = field(default_factory=list)


def _describe(photo: object) -> str:
    """A short name of an input for messages: the path, or the kind of object."""
    if isinstance(photo, (str, os.PathLike)):
        return str(photo)
    shape = getattr(photo, "shape", None) or getattr(photo, "size", None)
    return f"the given {type(photo).__name__}" + (f" {tuple(shape)}" if shape else "")


def _backend_name(backend) -> str:
    from .landmarks import resolve_backend

    return resolve_backend(backend).name


def _no_face_message(where: str, image: np.ndarray, backend_name: str) -> str:
    from .landmarks import available_backends

    h, w = image.shape[:2]
    others = [b for b in available_backends() if b != backend_name]
    other = f", or another landmark backend (backend={others[0]!r})" if others else ""
    return (
        f"no face found in {where} ({w}x{h} px) with the {backend_name!r} landmark backend. Use a photo where the "
        f"face is larger or closer to the camera (eyes at least ~{SMALL_FACE_EYE_PX:.0f} px apart), roughly frontal "
        f"and well lit{other}."
    )


def _crop_coverage(image_shape: tuple[int, ...], matrix: np.ndarray) -> float:
    """Share of the 256 crop that comes from inside the photo (1.0 = no black border)."""
    inside = np.ones(image_shape[:2], np.uint8)
    warped = cv2.warpAffine(inside, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_NEAREST, borderValue=0)
    return float(warped.mean())


def _face_notes(n_faces: int, landmarks: np.ndarray, coverage: float) -> list[str]:
    notes = []
    if n_faces > 1:
        notes.append(f"{n_faces} faces found; used the largest")
    eyes = np.linalg.norm(landmarks[36:42, :2].mean(0) - landmarks[42:48, :2].mean(0))
    if eyes < SMALL_FACE_EYE_PX:
        notes.append(f"the face is small (eyes {eyes:.0f} px apart): the 256 crop is upscaled and will look blurry")
    if coverage < 0.9:
        notes.append(f"the face is near the photo border: {100 * (1 - coverage):.0f}% of the crop is black fill")
    return notes


def prepare_face(photo: ImageSource, *, backend="auto") -> AlignedFace:
    """Read a photo, find its largest face and ArcFace-align it to DG's 256x256 crop.

    Args:
        photo: a file path, an RGB array or a PIL image (anything :func:`dgkit.io.read_image` takes:
            grayscale, RGBA, 16-bit files are converted to RGB uint8).
        backend: landmark backend, ``"auto"``, ``"mediapipe"``, ``"fan"``, ... (see :mod:`dgkit.landmarks`).

    Returns:
        :class:`AlignedFace` (photo, image-px and crop-px landmarks, crop, matrix, face count, notes).

    Raises:
        NoFaceError: no face in the photo (the message names the file and the backend, and what to try).
        ImageReadError / InputError: the photo cannot be read.

    Example:
        >>> face = prepare_face(dgkit.io.sample_image())
        >>> face.crop.shape, face.crop_landmarks.shape
        ((256, 256, 3), (68, 3))
    """
    from .landmarks import detect_faces

    image = read_image(photo)
    name = _backend_name(backend)
    faces = detect_faces(image, backend)
    if not faces:
        raise NoFaceError(_no_face_message(_describe(photo), image, name))
    lm = faces[0].landmarks  # largest first
    matrix = alignment_matrix(lm)
    crop, crop_lm = align_face(image, lm)
    notes = _face_notes(len(faces), lm, _crop_coverage(image.shape, matrix))
    return AlignedFace(photo=image, landmarks=lm.copy(), crop=crop, crop_landmarks=crop_lm, matrix=matrix,
                       n_faces=len(faces), backend=faces[0].backend, notes=notes)


# --- two photos ----------------------------------------------------------------------------------------------
@dataclass
class PhotoReenactment:
    """A source photo reenacted with a reference photo's pose and expression; every stage kept.

    Attributes:
        source, reference: the two :class:`AlignedFace`.
        dg: the DG :class:`~dgkit.pipeline.Reenactment` (batch of 1) or None when no model was given.
        baselines: ``"naive"`` (68,2) the reference's crop landmarks as target; ``"relative3d"`` (68,2) the
            source's shape moved by the reference's pose/expression (crop px); ``"warp"`` (256,256,3) uint8 the
            source crop warped onto the DG target (onto ``"relative3d"`` without DG or with untrained weights).
        weights_label: ``dg.weights.label`` ("official", "synthetic (untrained)") or "none (baselines only)".
        weights_trained: False for synthetic weights or without DG (images from them need a warning label).
        notes: messages for the user (from both faces and from the run).
    """

    source: AlignedFace
    reference: AlignedFace
    dg: Reenactment | None
    baselines: dict[str, np.ndarray]
    weights_label: str
    notes: list[str] = field(default_factory=list)
    weights_trained: bool = False

    @property
    def image(self) -> np.ndarray:
        """(256,256,3) uint8: the DG output, or the warp baseline when DG did not run."""
        return self.dg.image[0] if self.dg is not None else self.baselines["warp"]

    @property
    def target_landmarks(self) -> np.ndarray:
        """(68,2) crop px: DG's target shape, or the relative-3D baseline without DG."""
        return self.dg.target_landmarks[0] if self.dg is not None else self.baselines["relative3d"]


def _weights(dg: DualGenerator | None) -> tuple[str, bool]:
    """(label, trained) of a model; no model counts as untrained."""
    if dg is None:
        return NO_DG_LABEL, False
    return dg.weights.label, bool(dg.weights.trained)


def reenact_photos(source: ImageSource, reference: ImageSource, *, dg: DualGenerator | None = None,
                   backend="auto", sketch_intensity: str | None = None) -> PhotoReenactment:
    """Give the source photo's person the reference photo's head pose and expression.

    Both photos are detected and aligned (:func:`prepare_face`). DG (if given) runs on the source crop and
    the reference's crop landmarks (x, y). The baselines always run: ``naive`` and ``relative3d`` target
    landmarks, and ``warp``, the source crop warped onto DG's target (or onto ``relative3d`` without DG).

    Args:
        source, reference: photos (paths, RGB arrays or PIL images).
        dg: a :class:`~dgkit.pipeline.DualGenerator` (``dgkit.load_dg(...)``) or None for baselines only.
        backend: landmark backend for both photos.
        sketch_intensity: "demo" or "train" for this call only (None keeps ``dg.sketch_intensity``).

    Returns:
        :class:`PhotoReenactment`; ``result.image`` is the (256,256,3) output.

    Example:
        >>> r = reenact_photos("me.jpg", "pose.jpg", dg=dgkit.load_dg(allow_synthetic=True))
        >>> dgkit.io.write_image("sheet.png", contact_sheet(r))
    """
    src = prepare_face(source, backend=backend)
    ref = prepare_face(reference, backend=backend)
    notes = [f"source: {n}" for n in src.notes] + [f"reference: {n}" for n in ref.notes]
    run = None
    if dg is not None:
        run = dg.reenact(src.crop, ref.crop_landmarks[None, :, :2], sketch_intensity=sketch_intensity)
    relative = relative_transfer_3d(src.crop_landmarks, ref.crop_landmarks)
    label, trained = _weights(dg)
    # untrained IDSG targets are a collapsed blob: warping onto them would teach nothing
    target = run.target_landmarks[0] if run is not None and trained else relative
    baselines = {
        "naive": naive_transfer(ref.crop_landmarks),
        "relative3d": relative,
        "warp": warp_to_landmarks(src.crop, src.crop_landmarks, target),
    }
    if dg is None:
        notes.append("no DG model given: showing the baselines only (load one with dgkit.load_dg())")
    elif not trained:
        notes.append(f"DG weights are {label}: the DG image is not a real result")
    return PhotoReenactment(source=src, reference=ref, dg=run, baselines=baselines, weights_label=label,
                            notes=notes, weights_trained=trained)


# --- contact sheet -------------------------------------------------------------------------------------------
_TILE = 256
_BAR = 22  # title bar height, px
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _fit(image: np.ndarray, size: int = _TILE) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Letterbox an RGB image into (size,size,3) on grey; returns (tile, scale, (offset_x, offset_y))."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    tile = np.full((size, size, 3), 64, np.uint8)
    ox, oy = (size - nw) // 2, (size - nh) // 2
    tile[oy:oy + nh, ox:ox + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return tile, scale, (ox, oy)


def _dots(tile: np.ndarray, lm: np.ndarray, scale: float = 1.0, offset=(0, 0), colour=(0, 255, 0)) -> np.ndarray:
    """Draw landmarks (68,2+) given in the un-scaled image's px onto a tile (in place; returns it)."""
    for x, y in np.asarray(lm)[:, :2] * scale + np.asarray(offset):
        cv2.circle(tile, (round(x), round(y)), 2, colour, -1, lineType=cv2.LINE_AA)
    return tile


def _titled(tile: np.ndarray, title: str, *, warning: str | None = None) -> np.ndarray:
    """Add a dark title bar above a (256,256,3) tile; ``warning`` puts a red banner over the tile's top."""
    tile = tile.copy()
    if warning:
        cv2.rectangle(tile, (0, 0), (_TILE - 1, 26), (200, 0, 0), -1)
        cv2.putText(tile, warning, (6, 19), _FONT, 0.55, (255, 255, 255), 2, cv2.LINE_AA)
    bar = np.full((_BAR, _TILE, 3), 30, np.uint8)
    cv2.putText(bar, title, (5, 16), _FONT, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, tile], axis=0)


def _gray(sketch: np.ndarray) -> np.ndarray:
    return np.repeat(sketch[:, :, None], 3, axis=2)


def _placeholder(text: str) -> np.ndarray:
    tile = np.full((_TILE, _TILE, 3), 90, np.uint8)
    cv2.putText(tile, text, (20, _TILE // 2), _FONT, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    return tile


def _sheet_tiles(result: PhotoReenactment) -> list[np.ndarray]:
    """The eight titled tiles of :func:`contact_sheet`, in reading order."""
    src, ref = result.source, result.reference
    tiles = []
    for face, who in ((src, "source"), (ref, "reference")):
        fitted, scale, offset = _fit(face.photo)
        tiles.append(_titled(_dots(fitted, face.landmarks, scale, offset), f"{who} photo ({face.backend})"))
        tiles.append(_titled(_dots(face.crop.copy(), face.crop_landmarks), f"{who} crop (aligned)"))
    tiles.append(_titled(_gray(draw_sketch(ref.crop_landmarks[:, :2], kind="reference")), "reference sketch"))
    if result.dg is not None:
        tiles.append(_titled(_gray(result.dg.sketch[0]), "target sketch (DG IDSG)"))
        warning = None if result.weights_trained else "UNTRAINED weights"
        tiles.append(_titled(result.dg.image[0], f"DG output ({result.dg.sketch_intensity})", warning=warning))
    else:
        tiles.append(_titled(_gray(draw_sketch(result.baselines["relative3d"])), "target sketch (relative 3D)"))
        tiles.append(_titled(_placeholder("no DG model given"), "DG output"))
    to_dg = result.dg is not None and result.weights_trained
    warp_title = "warp baseline (to DG target)" if to_dg else "warp baseline (relative 3D)"
    tiles.append(_titled(result.baselines["warp"], warp_title))
    return tiles


def contact_sheet(result: PhotoReenactment, *, ncols: int = 4) -> np.ndarray:
    """Every stage of a photo reenactment as one labelled RGB image.

    Tiles (256 px, each with a title): source photo with landmarks, source crop with landmarks, reference
    photo with landmarks, reference crop, reference sketch, target sketch, DG output (red "UNTRAINED weights"
    banner when the weights are synthetic) and the warp baseline; a header line names the weights.

    Returns:
        (H,W,3) uint8 RGB (2 rows x 4 columns by default: 558 x 1024).
    """
    tiles = _sheet_tiles(result)
    ncols = max(1, min(ncols, len(tiles)))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % ncols)
    rows = [np.concatenate(tiles[i:i + ncols], axis=1) for i in range(0, len(tiles), ncols)]
    grid = np.concatenate(rows, axis=0)
    header = np.full((26, grid.shape[1], 3), 245, np.uint8)
    text = f"dgkit reenact - DG weights: {result.weights_label}"
    if result.notes:
        text += " | " + result.notes[0]
    cv2.putText(header, text[:150], (6, 18), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.ascontiguousarray(np.concatenate([header, grid], axis=0))


# --- videos --------------------------------------------------------------------------------------------------
OnNoFace = Literal["hold", "source"]


@dataclass
class VideoFrame:
    """The result for one driving frame (what :func:`iter_reenact_video` yields).

    Attributes:
        index: frame number in the driving video (0-based).
        frame: (H,W,3) uint8 RGB driving frame.
        face_found: whether a face was detected in it.
        reference_landmarks: (68,3) float crop px (after smoothing; x, y, z) or None without a face.
        target_landmarks: (68,2) crop px: DG's target (or relative-3D baseline without DG); None without a face.
        sketch: (256,256) uint8 DG target sketch, or None (no DG, or no face).
        image: (256,256,3) uint8 output frame.
        status: "dg" (DG output), "warp" (warp baseline), "held" (no face: last output repeated) or
            "source" (no face: the source crop).
    """

    index: int
    frame: np.ndarray
    face_found: bool
    reference_landmarks: np.ndarray | None
    target_landmarks: np.ndarray | None
    sketch: np.ndarray | None
    image: np.ndarray
    status: str


@dataclass
class VideoReport:
    """What :func:`reenact_video` did.

    Attributes:
        frames_in: driving frames read (at most ``max_frames``).
        frames_out: frames written (always equal to ``frames_in``: no frame is dropped).
        frames_without_face: frames where no face was found (held or replaced by the source crop).
        fps: frame rate of the output (that of the input).
        output: the written video.
        seconds: wall seconds per stage ("read", "detect", "align", "encode_source", "idsg", "sketch",
            "generator", "warp", "write") and "total".
        weights_label: DG weights used, or "none (baselines only)".
        notes: messages (source notes, unknown fps, untrained weights, truncated input, audio).
        frames_announced: frames the driving video's container announces (up to ``max_frames``); more than
            ``frames_in`` means the file is truncated or damaged (a note and a warning say so).
        audio: True when the driving video's audio track was copied into the output.
    """

    frames_in: int
    frames_out: int
    frames_without_face: int
    fps: float
    output: Path
    seconds: dict[str, float]
    weights_label: str
    notes: list[str] = field(default_factory=list)
    frames_announced: int | None = None
    audio: bool = False

    def summary(self) -> str:
        """One line for logs and the command line."""
        total = self.seconds.get("total", 0.0)
        speed = f", {self.frames_out / total:.2f} frames/s" if total > 0 else ""
        return (f"{self.frames_in} frames in, {self.frames_out} out, {self.frames_without_face} without a face, "
                f"{self.fps:g} fps, weights: {self.weights_label}{speed} -> {self.output}")


class _Timer:
    """Accumulates wall seconds per stage name into a dict."""

    def __init__(self, seconds: dict[str, float] | None):
        self.seconds = seconds if seconds is not None else {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _timed_frames(frames: Iterator[np.ndarray], timer: _Timer) -> Iterator[np.ndarray]:
    """Re-yield frames, charging the decoding time to the "read" stage."""
    while True:
        with timer.stage("read"):
            frame = next(frames, None)
        if frame is None:
            return
        yield frame


def _frame_landmarks(frame: np.ndarray, backend, timer: _Timer) -> np.ndarray | None:
    """(68,3) crop px of the frame's largest face, aligned with the frame's own ArcFace matrix; None if none."""
    from .align import transform_landmarks
    from .landmarks import detect_faces

    with timer.stage("detect"):
        faces = detect_faces(frame, backend)
    if not faces:
        return None
    with timer.stage("align"):
        return transform_landmarks(faces[0].landmarks, alignment_matrix(faces[0].landmarks)).astype(np.float64)


def _dg_batch(dg: DualGenerator, encoding: SourceEncoding, lm: np.ndarray, timer: _Timer) -> Reenactment:
    """``dg.reenact(encoding, lm)`` for a (B,68,2) crop-px batch, each stage charged to ``timer``."""
    return dg.reenact(encoding, lm, timer=timer.stage)


@dataclass
class _Pending:
    """A driving frame waiting for its batch: index, frame and (68,3) crop-px landmarks (None: no face)."""

    index: int
    frame: np.ndarray
    landmarks: np.ndarray | None


class _VideoRun:
    """State of one video reenactment: source encoding, smoothing state, last output, neutral frame."""

    def __init__(self, source: AlignedFace, dg, smoothing: float, on_no_face: str, timer: _Timer):
        self.source, self.dg, self.smoothing, self.on_no_face, self.timer = source, dg, smoothing, on_no_face, timer
        self.encoding = None
        if dg is not None:
            with timer.stage("encode_source"):
                self.encoding = dg.encode_source(source.crop)  # once per video
        self.smoothed: np.ndarray | None = None
        self.neutral: np.ndarray | None = None  # first face of the driving video, for the relative-3D baseline
        self.last_image: np.ndarray | None = None

    def smooth(self, lm: np.ndarray | None) -> np.ndarray | None:
        """Exponential moving average in crop px: s_t = a * s_(t-1) + (1 - a) * x_t (frames without face skip)."""
        if lm is None:
            return None
        if self.smoothed is None or self.smoothing == 0.0:
            self.smoothed = lm.copy()
        else:
            self.smoothed = self.smoothing * self.smoothed + (1.0 - self.smoothing) * lm
        if self.neutral is None:
            self.neutral = lm.copy()
        return self.smoothed.copy()

    def finish(self, batch: list[_Pending]) -> Iterator[VideoFrame]:
        """Run DG (or the warp baseline) on the frames of ``batch`` that have a face; yield all in order."""
        with_face = [p for p in batch if p.landmarks is not None]
        run = None
        if self.dg is not None and with_face:
            run = _dg_batch(self.dg, self.encoding, np.stack([p.landmarks[:, :2] for p in with_face]), self.timer)
        k = 0
        for p in batch:
            if p.landmarks is None:
                yield self._no_face(p)
                continue
            if run is not None:
                target, sketch, image, status = run.target_landmarks[k], run.sketch[k], run.image[k], "dg"
            else:
                target, sketch, status = self._baseline_target(p.landmarks), None, "warp"
                with self.timer.stage("warp"):
                    image = warp_to_landmarks(self.source.crop, self.source.crop_landmarks, target)
            k += 1
            self.last_image = image
            yield VideoFrame(p.index, p.frame, True, p.landmarks, target, sketch, image, status)

    def _baseline_target(self, lm: np.ndarray) -> np.ndarray:
        with self.timer.stage("idsg"):  # the baseline's stand-in for the IDSG stage
            return relative_transfer_3d(self.source.crop_landmarks, lm, neutral3d=self.neutral)

    def _no_face(self, p: _Pending) -> VideoFrame:
        if self.on_no_face == "hold" and self.last_image is not None:
            return VideoFrame(p.index, p.frame, False, None, None, None, self.last_image, "held")
        status = "held" if self.on_no_face == "hold" else "source"
        return VideoFrame(p.index, p.frame, False, None, None, None, self.source.crop.copy(), status)


def _check_video_args(batch_size: int, smoothing: float, max_frames: int | None, on_no_face: str) -> None:
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    if not (isinstance(smoothing, (int, float)) and 0.0 <= smoothing < 1.0):
        raise InputError(f"smoothing must be in [0, 1) (0 = off, 0.5 = moderate, 0.8 = strong), got {smoothing!r}.")
    if max_frames is not None and not (isinstance(max_frames, (int, np.integer)) and max_frames >= 1):
        raise InputError(f"max_frames must be None or an integer >= 1, got {max_frames!r}.")
    if on_no_face not in ("hold", "source"):
        raise InputError(f"on_no_face must be 'hold' or 'source', got {on_no_face!r}.")


def iter_reenact_video(
    source: ImageSource | AlignedFace,
    driving,
    *,
    dg: DualGenerator | None = None,
    backend="auto",
    batch_size: int = 8,
    smoothing: float = 0.0,
    max_frames: int | None = None,
    on_no_face: OnNoFace = "hold",
    timings: dict[str, float] | None = None,
    overlap: bool | None = None,
) -> Iterator[VideoFrame]:
    """Reenact the source with every frame of a driving video, yielding one :class:`VideoFrame` per frame.

    Frames are streamed (at most ``batch_size`` are held at once). Each frame's largest face is detected and
    aligned with the frame's own ArcFace matrix; its (68,3) crop-px landmarks are smoothed (optional EMA) and
    go to DG in batches (``dg.reenact`` with the source encoded once). Without DG, each frame is the source
    crop warped onto the relative-3D target (neutral expression = the first face of the video).
    Frames without a face are never dropped: ``on_no_face="hold"`` repeats the last output (the source crop
    before the first face), ``"source"`` shows the source crop.

    Args:
        source: the source photo (path/array/PIL) or an :class:`AlignedFace` from :func:`prepare_face`.
        driving: path of the driving video.
        dg: a DualGenerator, or None for the warp baseline.
        backend: landmark backend (source and frames).
        batch_size: frames per DG batch (>= 1).
        smoothing: EMA factor in [0, 1) on the crop-px landmarks; 0 = none.
        max_frames: stop after this many frames (None: all).
        on_no_face: "hold" or "source".
        timings: optional dict that receives wall seconds per stage (added to existing values).
        overlap: with DG, read and detect frames on a producer thread while the networks run (at most
            ``2 * batch_size`` frames wait). None (default): on when DG runs on a GPU; on a CPU the detector and
            the networks compete for the same cores and the generator dominates (benchmarks/bench_video.py
            measured no gain on 2 cores), so every stage runs in turn on this thread.

    Raises:
        NoFaceError: no face in the source photo. VideoError: the video cannot be read.

    Example:
        >>> for f in iter_reenact_video("me.jpg", "clip.mp4", dg=dg, max_frames=10):
        ...     plt.imshow(f.image)
    """
    _check_video_args(batch_size, smoothing, max_frames, on_no_face)
    timer = _Timer(timings)
    src = source if isinstance(source, AlignedFace) else prepare_face(source, backend=backend)
    frames = iter_video_frames(driving, stop=max_frames)  # raises VideoError now, not at the first frame
    return _iter_video(src, frames, dg, backend, batch_size, smoothing, on_no_face, timer, overlap)


def _iter_video(src, frames, dg, backend, batch_size, smoothing, on_no_face, timer,
                overlap: bool | None = None) -> Iterator[VideoFrame]:
    state = _VideoRun(src, dg, float(smoothing), on_no_face, timer)
    batch: list[_Pending] = []
    if overlap is None:
        overlap = dg is not None and dg.device.type != "cpu"
    detected = _detected_frames(frames, backend, timer, depth=2 * batch_size) if dg is not None and overlap else (
        (index, frame, _frame_landmarks(frame, backend, timer))
        for index, frame in enumerate(_timed_frames(frames, timer)))
    for index, frame, landmarks in detected:
        batch.append(_Pending(index, frame, state.smooth(landmarks)))
        if len(batch) == batch_size:
            yield from state.finish(batch)
            batch = []
    if batch:
        yield from state.finish(batch)


_DONE = object()


def _detected_frames(frames: Iterator[np.ndarray], backend, timer: _Timer, depth: int):
    """``(index, frame, crop-px landmarks or None)`` for each frame, read/detected/aligned on a producer thread.

    The networks (which release the GIL) run on the consumer side meanwhile, so decoding and landmark detection
    overlap the generator. At most ``depth`` frames wait in the queue (bounded memory). The producer's stages
    ("read", "detect", "align") are charged to ``timer`` as before; with the overlap, stage seconds add up to
    more than the wall time. An exception in the producer is raised here; closing this generator stops it.
    """
    import queue
    import threading

    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for index, frame in enumerate(_timed_frames(frames, timer)):
                if not put((index, frame, _frame_landmarks(frame, backend, timer))):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    worker = threading.Thread(target=produce, name="dgkit-video-frames", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _untrained_banner(image: np.ndarray) -> np.ndarray:
    """A copy of a (256,256,3) frame with a red "UNTRAINED weights" strip at the top."""
    out = image.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1] - 1, 20), (200, 0, 0), -1)
    cv2.putText(out, "UNTRAINED weights", (6, 15), _FONT, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _check_video_output(output, protect: list) -> None:
    if Path(output).suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoError(f"cannot write {output}: use a .mp4 or .avi file name for the output video.")
    _refuse_protected(Path(output), protect)


def _progress(total: int | None, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="frame", desc="reenact", disable=not enabled)


def reenact_video(
    source: ImageSource,
    driving,
    output,
    *,
    dg: DualGenerator | None = None,
    backend="auto",
    batch_size: int = 8,
    smoothing: float = 0.0,
    progress: bool = True,
    max_frames: int | None = None,
    on_no_face: OnNoFace = "hold",
    label_untrained: bool = True,
    audio: bool = True,
    overwrite: bool = False,
) -> VideoReport:
    """Reenact a source photo with a driving video and write the result (256x256 frames) to ``output``.

    The output has the same number of frames (up to ``max_frames``) and the same fps as the input; frames
    without a face are filled (see ``on_no_face``) and counted. Memory stays constant (frames streamed).
    See :func:`iter_reenact_video` for the arguments.

    Args:
        output: ``.mp4`` or ``.avi`` path; never one of the inputs.
        progress: show a tqdm progress bar.
        label_untrained: burn a red "UNTRAINED weights" banner into DG frames made with synthetic weights.
        audio: copy the driving video's audio track (if it has one) into the output, cut to the frames
            written (PyAV). False writes a silent video.
        overwrite: replace an existing ``output`` (default False: OutputExistsError). The output is written
            atomically: an interrupted run leaves no partial file and an existing one untouched.

    Returns:
        :class:`VideoReport` (frame counts, fps, seconds per stage, weights label).
    """
    from .io import VideoWriter

    start = time.perf_counter()
    _check_video_args(batch_size, smoothing, max_frames, on_no_face)
    info = video_info(driving)
    notes = []
    fps = info.fps
    if fps <= 0:
        fps = 25.0
        notes.append("the driving video does not say its fps; wrote 25 fps")
    protect = [driving] + ([source] if isinstance(source, (str, os.PathLike)) else [])
    _check_video_output(output, protect)  # before the slow work
    timings: dict[str, float] = {}
    src = prepare_face(source, backend=backend)
    notes += [f"source: {n}" for n in src.notes]
    frames = iter_reenact_video(src, driving, dg=dg, backend=backend, batch_size=batch_size, smoothing=smoothing,
                                max_frames=max_frames, on_no_face=on_no_face, timings=timings)
    total = min(info.frame_count, max_frames) if max_frames else info.frame_count
    n_in = missing = 0
    finish = _audio_finisher(driving, fps, notes) if audio else None
    with VideoWriter(output, fps, (CROP_SIZE, CROP_SIZE), protect=protect, overwrite=overwrite,
                     finish=finish) as writer, \
            _progress(total, progress) as bar:
        banner = dg is not None and label_untrained and not _weights(dg)[1]
        for item in frames:
            with _Timer(timings).stage("write"):
                writer.write(_untrained_banner(item.image) if banner else item.image)
            n_in += 1
            missing += not item.face_found
            bar.update(1)
        n_out = writer.frames_written
    _note_truncation(driving, total, n_in, notes)
    label, trained = _weights(dg)
    if dg is not None and not trained:
        notes.append(f"DG weights are {label}: the output is not a real result")
    timings["total"] = time.perf_counter() - start
    return VideoReport(frames_in=n_in, frames_out=n_out, frames_without_face=missing, fps=fps, output=Path(output),
                       seconds=timings, weights_label=label, notes=notes, frames_announced=total,
                       audio=any(n.startswith("audio: kept") for n in notes))


def _audio_finisher(driving, fps: float, notes: list[str]):
    """A VideoWriter ``finish`` hook: copy the driving clip's audio, cut to the frames written."""

    def finish(tmp: Path) -> None:
        from .io import mux_audio

        frames = video_info(tmp).frame_count
        try:
            if mux_audio(tmp, driving, duration=frames / fps):
                notes.append(f"audio: kept the driving video's sound (first {frames / fps:.2f} s)")
        except VideoError as exc:  # the frames are done: keep them, without sound, and say so
            message = f"{exc} The video was written without sound."
            notes.append(message)
            warnings.warn(message, stacklevel=2)

    return finish


def _note_truncation(driving, announced: int, decoded: int, notes: list[str]) -> None:
    """Warn (and note in the report) when fewer frames were decoded than the container announced."""
    if decoded >= announced:
        return
    message = (f"the driving video announces {announced} frames but only {decoded} could be decoded: the file is "
               "probably truncated or damaged, so the output is shorter")
    notes.append(message)
    warnings.warn(message, stacklevel=3)


# --- command line --------------------------------------------------------------------------------------------
def add_dg_arguments(p: argparse.ArgumentParser) -> None:
    """The options that choose the DG model (``--weights --synthetic --device --precision --sketch-intensity``),
    shared by every command that runs DG; :func:`_cli_load_dg` reads them."""
    p.add_argument("--weights", default=None, help="folder with the official DG weights (default: search)")
    p.add_argument("--synthetic", action="store_true",
                   help="fall back to UNTRAINED synthetic weights when the official ones are missing")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, mps (default cpu)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16", "tf32"), default="fp32",
                   help="numeric precision: fp32 (exact, default), bf16 (faster on GPUs and CPUs with native "
                        "bfloat16), fp16 / tf32 (GPU only)")
    p.add_argument("--sketch-intensity", choices=("demo", "train"), default="demo",
                   help="sketch line value fed to the generator: demo (1/255, as released) or train (1.0)")
    p.add_argument("--compile", action="store_true",
                   help="compile the generator (torch.compile): faster video/live after a one-time compile per "
                        "batch size, cached in dgkit's cache folder; within a grey level of the exact default")


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dgkit reenact SOURCE REFERENCE -o OUT`` (photo -> PNG, video -> video)."""
    p = subparsers.add_parser(
        "reenact", help="reenact a source photo with a reference photo or a driving video",
        description="Give the SOURCE photo's person the pose and expression of REFERENCE (a photo or a video). "
                    "A photo reference writes an image (the DG output, or with --sheet a contact sheet of every "
                    "stage); a video reference (.mp4, .avi, .mov, ...) writes a 256x256 video.")
    p.add_argument("source", help="source photo (the identity)")
    p.add_argument("reference", help="reference photo or driving video (the pose and expression)")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg) or video (.mp4, .avi)")
    p.add_argument("--sheet", action="store_true", help="photo: write the contact sheet of all stages")
    p.add_argument("--backend", default="auto", help="landmark backend: auto, mediapipe, fan, fan2d")
    add_dg_arguments(p)
    p.add_argument("--baseline-only", action="store_true", help="no DG: write the warp baseline")
    p.add_argument("--batch-size", type=int, default=8, help="video: frames per DG batch (default 8)")
    p.add_argument("--smoothing", type=float, default=0.0, help="video: landmark EMA factor in [0,1) (default 0)")
    p.add_argument("--max-frames", type=int, default=None, help="video: stop after N frames")
    p.add_argument("--on-no-face", choices=("hold", "source"), default="hold",
                   help="video frames without a face: repeat the last output (hold) or show the source crop")
    p.add_argument("--no-progress", action="store_true", help="video: no progress bar")
    p.add_argument("--no-audio", action="store_true",
                   help="video: write no sound (default: keep the driving video's audio, cut to the frames written)")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (default: refuse)")
    p.set_defaults(func=_cli_reenact)


def _is_video(path: str) -> bool:
    return Path(path).suffix.lower() in READ_VIDEO_SUFFIXES


def _cli_load_dg(args: argparse.Namespace):
    """The DG model the command line asked for (None with --baseline-only)."""
    if getattr(args, "baseline_only", False):
        return None
    from .pipeline import load_dg

    try:
        return load_dg(args.weights, device=args.device, sketch_intensity=args.sketch_intensity,
                       allow_synthetic=args.synthetic, precision=args.precision,
                       compile=getattr(args, "compile", False))
    except WeightsNotFoundError as exc:
        raise WeightsNotFoundError(
            f"{exc}\nTo try the pipeline anyway, add --synthetic (UNTRAINED weights: the images are noise-like) "
            "or --baseline-only (warp baseline, no DG); to get the real weights run `dgkit weights download`."
        ) from None


def _check_cli_paths(args: argparse.Namespace, video: bool) -> None:
    out = Path(args.output).suffix.lower()
    if video and out not in VIDEO_SUFFIXES:
        raise InputError(f"the reference is a video, so the output must be a video: use {args.output!r} with "
                         f"one of {tuple(VIDEO_SUFFIXES)}.")
    if not video and out not in IMAGE_SUFFIXES:
        raise InputError(f"the reference is a photo, so the output must be an image ({', '.join(IMAGE_SUFFIXES)}); "
                         f"got {args.output!r}.")
    if _is_video(args.source):
        raise InputError(f"SOURCE must be a photo (the identity), got the video {args.source!r}.")
    # everything that can be checked is checked before the slow work (loading weights, detecting faces)
    check_input_file(args.source, "source photo")
    check_input_file(args.reference, "driving video" if video else "reference photo")
    _refuse_protected(Path(args.output), [args.source, args.reference])
    if Path(args.output).exists() and not args.force:
        raise OutputExistsError(f"{args.output} exists already; add --force to replace it, or choose another "
                                "output path.")
    make_output_folder(Path(args.output).parent)
    if not args.baseline_only:
        resolve_device(args.device)


def _cli_reenact(args: argparse.Namespace) -> int:
    video = _is_video(args.reference)
    _check_cli_paths(args, video)
    dg = _cli_load_dg(args)
    label, trained = _weights(dg)
    if dg is not None and not trained:
        print(f"dgkit: warning: DG weights are {label}: the DG output is NOT a real result")
    if video:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            report = reenact_video(args.source, args.reference, args.output, dg=dg, backend=args.backend,
                                   batch_size=args.batch_size, smoothing=args.smoothing,
                                   progress=not args.no_progress, max_frames=args.max_frames,
                                   on_no_face=args.on_no_face, audio=not args.no_audio, overwrite=args.force)
        ours = set()
        for w in caught:  # dgkit's own warnings as one line each; anything else as Python shows it
            if str(w.message) in report.notes:
                ours.add(str(w.message))
                print(f"dgkit: warning: {w.message}", file=sys.stderr)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        print(f"reenact: {report.summary()}")
        for note in report.notes:
            if note not in ours:
                print(f"  note: {note}")
        return 0
    result = reenact_photos(args.source, args.reference, dg=dg, backend=args.backend)
    image = contact_sheet(result) if args.sheet else result.image
    out = write_image(args.output, image, protect=[args.source, args.reference], overwrite=args.force)
    what = "contact sheet" if args.sheet else ("DG output" if result.dg is not None else "warp baseline")
    print(f"reenact: 1 frame, 0 faces missing, weights: {label}; wrote the {what} to {out}")
    for note in result.notes:
        print(f"  note: {note}")
    return 0
