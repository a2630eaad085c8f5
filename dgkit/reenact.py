"""Reenact real photos and videos: detect, align, run DG (and the no-learning baselines), keep every stage.

::

    photo/array --read_image--> (H,W,3) uint8 --detect_faces (largest)--> (68,3) image px
                --alignment_matrix / align_face--> AlignedFace(crop (256,256,3), crop_landmarks (68,3) crop px)

    reenact_photos(source, reference, dg=dg)  -> PhotoReenactment (DG result + baselines, every intermediate)
    add_dg(result, dg)                        -> the same faces and baselines, with DG's result added
    reenact_video(source, driving, "out.mp4", dg=dg) -> VideoReport (streams frames, constant memory)
    iter_reenact_video(source, driving, dg=dg)       -> VideoFrame per driving frame (for notebooks)

Frames: "image px" are pixels of the photo or video frame, "crop px" of the 256x256 ArcFace-aligned crop;
landmark columns are x, y[, z] (z relative depth on the x scale, scaled like x by the alignment). Each
driving frame is aligned with its *own* ArcFace matrix, as the released demo did (``get_arcface`` per frame),
so the reference landmarks the networks see are always in crop px.

Without a DG model (``dg=None``) the baselines of :mod:`dgkit.baselines` still give an image: the source crop
warped onto the relative-3D target. Every result carries the :class:`~dgkit.pipeline.WeightsInfo` of the
weights that made it (``result.weights.trained`` False: the images need the UNTRAINED banner).

The contact sheet of every stage is :func:`dgkit.sheet.contact_sheet`; the command line
``dgkit reenact SOURCE REFERENCE -o OUT`` is :mod:`dgkit.reenact_cli`.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from .align import align_face, alignment_matrix
from .baselines import naive_transfer, relative_transfer_3d, warp_to_landmarks
from .errors import InputError, NoFaceError, VideoError
from .face68 import CROP_SIZE
from .io import (
    VIDEO_SUFFIXES,
    ImageSource,
    _refuse_protected,  # the writers' rule, checked before the slow work
    iter_video_frames,
    read_image,
    video_info,
)
from .viz import stamp_untrained

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import DualGenerator, Reenactment, SourceEncoding
    from .weights import WeightsInfo

__all__ = [
    "AlignedFace",
    "PhotoReenactment",
    "VideoFrame",
    "VideoReport",
    "add_dg",
    "default_video_batch_size",
    "iter_reenact_video",
    "prepare_face",
    "reenact_photos",
    "reenact_video",
    "weights_of",
]

NO_DG_LABEL = "none (baselines only)"
# suffixes treated as videos on the command line (OpenCV's FFmpeg reads more than dgkit writes)
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


def prepare_face(photo: ImageSource, *, backend="auto", landmarks: np.ndarray | None = None) -> AlignedFace:
    """Read a photo, find its largest face and ArcFace-align it to DG's 256x256 crop.

    Args:
        photo: a file path, an RGB array or a PIL image (anything :func:`dgkit.io.read_image` takes:
            grayscale, RGBA, 16-bit files are converted to RGB uint8).
        backend: landmark backend, ``"auto"``, ``"mediapipe"``, ``"fan"``, ... (see :mod:`dgkit.landmarks`).
        landmarks: (68,2) or (68,3) image-pixel landmarks of the face to use instead of detecting one (e.g.
            landmarks recorded earlier); ``backend`` is then not used and ``AlignedFace.backend`` is "given".

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
    if landmarks is not None:
        lm = np.asarray(landmarks, dtype=np.float64)
        if lm.shape == (68, 2):
            lm = np.column_stack([lm, np.zeros(68)])
        if lm.shape != (68, 3):
            raise InputError(f"landmarks must be (68,2) or (68,3) image pixels, got shape {lm.shape}")
        n_faces, found_by = 1, "given"
    else:
        name = _backend_name(backend)
        faces = detect_faces(image, backend)
        if not faces:
            raise NoFaceError(_no_face_message(_describe(photo), image, name))
        lm, n_faces, found_by = faces[0].landmarks, len(faces), faces[0].backend  # largest first
    matrix = alignment_matrix(lm)
    crop, crop_lm = align_face(image, lm)
    notes = _face_notes(n_faces, lm, _crop_coverage(image.shape, matrix))
    return AlignedFace(photo=image, landmarks=lm.copy(), crop=crop, crop_landmarks=crop_lm, matrix=matrix,
                       n_faces=n_faces, backend=found_by, notes=notes)


# --- two photos ----------------------------------------------------------------------------------------------
WarpTarget = Literal["dg", "relative3d"]


@dataclass
class PhotoReenactment:
    """A source photo reenacted with a reference photo's pose and expression; every stage kept.

    Attributes:
        source, reference: the two :class:`AlignedFace`.
        dg: the DG :class:`~dgkit.pipeline.Reenactment` (batch of 1) or None when no model was given.
        baselines: ``"naive"`` (68,2) the reference's crop landmarks as target; ``"relative3d"`` (68,2) the
            source's shape moved by the reference's pose/expression (crop px); ``"warp"`` (256,256,3) uint8 the
            source crop warped onto the target ``warp_target`` names.
        weights: :class:`~dgkit.pipeline.WeightsInfo` of the DG weights (``dg.weights``), or
            ``WeightsInfo("none (baselines only)", trained=False)`` without DG; ``weights.trained`` False means
            the DG images need the UNTRAINED banner.
        notes: messages for the user (from both faces and from the run).
        warp_target: ``"dg"`` when the warp baseline follows DG's target (trained weights), ``"relative3d"``
            otherwise (no DG, or untrained weights whose targets are a collapsed blob).
    """

    source: AlignedFace
    reference: AlignedFace
    dg: Reenactment | None
    baselines: dict[str, np.ndarray]
    weights: WeightsInfo
    notes: list[str] = field(default_factory=list)
    warp_target: WarpTarget = "relative3d"

    @property
    def image(self) -> np.ndarray:
        """(256,256,3) uint8: the DG output, or the warp baseline when DG did not run."""
        return self.dg.image[0] if self.dg is not None else self.baselines["warp"]

    @property
    def target_landmarks(self) -> np.ndarray:
        """(68,2) crop px: DG's target shape, or the relative-3D baseline without DG."""
        return self.dg.target_landmarks[0] if self.dg is not None else self.baselines["relative3d"]


def weights_of(dg: DualGenerator | None) -> WeightsInfo:
    """The :class:`~dgkit.pipeline.WeightsInfo` of a model; without a model, ``"none (baselines only)"``, which
    counts as untrained (there is no DG result to trust)."""
    if dg is not None:
        return dg.weights
    from .weights import WeightsInfo

    return WeightsInfo(NO_DG_LABEL, trained=False)


_NO_DG_NOTE = "no DG model given: showing the baselines only (load one with dgkit.load_dg())"


def reenact_photos(source: ImageSource | AlignedFace, reference: ImageSource | AlignedFace, *,
                   dg: DualGenerator | None = None, backend="auto",
                   sketch_intensity: str | None = None) -> PhotoReenactment:
    """Give the source photo's person the reference photo's head pose and expression.

    Both photos are detected and aligned (:func:`prepare_face`; an :class:`AlignedFace` is used as given). The
    baselines always run: ``naive`` and ``relative3d`` target landmarks, and ``warp``, the source crop warped
    onto the relative-3D target. DG (if given) then runs on the source crop and the reference's crop landmarks
    (x, y) through :func:`add_dg`.

    Args:
        source, reference: photos (paths, RGB arrays or PIL images) or :class:`AlignedFace` from
            :func:`prepare_face`.
        dg: a :class:`~dgkit.pipeline.DualGenerator` (``dgkit.load_dg(...)``) or None for baselines only.
        backend: landmark backend for both photos.
        sketch_intensity: "demo" or "train" for this call only (None keeps ``dg.sketch_intensity``).

    Returns:
        :class:`PhotoReenactment`; ``result.image`` is the (256,256,3) output.

    Example:
        >>> r = reenact_photos("me.jpg", "pose.jpg", dg=dgkit.load_dg(allow_synthetic=True))
        >>> dgkit.io.write_image("sheet.png", dgkit.sheet.contact_sheet(r))
    """
    src = source if isinstance(source, AlignedFace) else prepare_face(source, backend=backend)
    ref = reference if isinstance(reference, AlignedFace) else prepare_face(reference, backend=backend)
    notes = [f"source: {n}" for n in src.notes] + [f"reference: {n}" for n in ref.notes]
    relative = relative_transfer_3d(src.crop_landmarks, ref.crop_landmarks)
    baselines = {"naive": naive_transfer(ref.crop_landmarks), "relative3d": relative}
    if dg is None or not dg.weights.trained:  # with trained weights add_dg warps onto DG's target instead
        baselines["warp"] = warp_to_landmarks(src.crop, src.crop_landmarks, relative)
    result = PhotoReenactment(source=src, reference=ref, dg=None, baselines=baselines, weights=weights_of(None),
                              notes=notes + [_NO_DG_NOTE])
    return result if dg is None else add_dg(result, dg, sketch_intensity=sketch_intensity)


def add_dg(result: PhotoReenactment, dg: DualGenerator, *, sketch_intensity: str | None = None) -> PhotoReenactment:
    """Run DG on a baselines-only result's faces; returns a new :class:`PhotoReenactment` (``result`` is kept).

    The faces and the ``naive``/``relative3d`` baselines are reused as they are. With trained weights the warp
    baseline is made onto DG's target (``warp_target="dg"``); with untrained weights (whose targets are a
    collapsed blob) the relative-3D warp of ``result`` is kept, the very same array. An app can thus show the
    fast baselines first (``reenact_photos(src, ref)``) and DG when it is done, without computing anything twice.

    Args:
        result: a :class:`PhotoReenactment` made without DG (``result.dg is None``).
        dg: a :class:`~dgkit.pipeline.DualGenerator`.
        sketch_intensity: "demo" or "train" for this call only (None keeps ``dg.sketch_intensity``).
    """
    if result.dg is not None:
        raise InputError("add_dg needs a result made without DG (reenact_photos(..., dg=None)); this one has DG "
                         "already: call reenact_photos with the faces to run another model.")
    src, ref = result.source, result.reference
    run = dg.reenact(src.crop, ref.crop_landmarks[None, :, :2], sketch_intensity=sketch_intensity)
    info = weights_of(dg)
    baselines, warp_target = dict(result.baselines), result.warp_target
    if info.trained:
        baselines["warp"] = warp_to_landmarks(src.crop, src.crop_landmarks, run.target_landmarks[0])
        warp_target = "dg"
    elif "warp" not in baselines:
        baselines["warp"] = warp_to_landmarks(src.crop, src.crop_landmarks, baselines["relative3d"])
    notes = [n for n in result.notes if n != _NO_DG_NOTE]
    if not info.trained:
        notes.append(f"DG weights are {info.label}: the DG image is not a real result")
    return dataclasses.replace(result, dg=run, baselines=baselines, weights=info, notes=notes,
                               warp_target=warp_target)


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
        weights: :class:`~dgkit.pipeline.WeightsInfo` of the DG weights used (``"none (baselines only)"``
            without DG); ``weights.trained`` False: the DG frames carry the UNTRAINED banner.
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
    weights: WeightsInfo
    notes: list[str] = field(default_factory=list)
    frames_announced: int | None = None
    audio: bool = False

    def summary(self) -> str:
        """One line for logs and the command line."""
        total = self.seconds.get("total", 0.0)
        speed = f", {self.frames_out / total:.2f} frames/s" if total > 0 else ""
        return (f"{self.frames_in} frames in, {self.frames_out} out, {self.frames_without_face} without a face, "
                f"{self.fps:g} fps, weights: {self.weights.label}{speed} -> {self.output}")


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


def default_video_batch_size(dg: DualGenerator | None) -> int:
    """Frames per DG batch when none is given: 1 on a CPU, 8 on a GPU (cuda, mps) and for the warp baseline.

    Measured on a quiet 2-core CPU VM (``benchmarks/bench_batch.py``): the generator took 1.03-1.10x (batch 2),
    1.11-1.12x (batch 4) and 1.13-1.14x (batch 8) the time per frame of batch 1, and 0.5 GiB more memory at
    batch 8. A GPU needs batches to be busy.
    """
    if dg is None:
        return 8
    return 1 if dg.device.type == "cpu" else 8


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
    batch_size: int | None = None,
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
        batch_size: frames per DG batch (>= 1); None: :func:`default_video_batch_size` (1 on a CPU, 8 on a GPU).
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
    batch_size = default_video_batch_size(dg) if batch_size is None else batch_size
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
    batch_size: int | None = None,
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
    batch_size = default_video_batch_size(dg) if batch_size is None else batch_size
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
        info = weights_of(dg)
        banner = dg is not None and label_untrained and not info.trained
        for item in frames:
            with _Timer(timings).stage("write"):
                writer.write(stamp_untrained(item.image, banner))
            n_in += 1
            missing += not item.face_found
            bar.update(1)
        n_out = writer.frames_written
    _note_truncation(driving, total, n_in, notes)
    if dg is not None and not info.trained:
        notes.append(f"DG weights are {info.label}: the output is not a real result")
    timings["total"] = time.perf_counter() - start
    return VideoReport(frames_in=n_in, frames_out=n_out, frames_without_face=missing, fps=fps, output=Path(output),
                       seconds=timings, weights=info, notes=notes, frames_announced=total,
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
