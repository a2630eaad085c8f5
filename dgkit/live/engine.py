"""The live engine: camera frames in, reenacted panels out, never a growing lag.

::

    capture thread   source.read() ──► [latest-frame slot, 1 frame] ──► (older unread frame: dropped)
    shape thread     newest frame ─► detect ─► align ─► One-Euro smooth ─► IDSG ─► sketch     (camera's pace)
                                                                              │  newest target/sketch
    generator thread                              [slot] ◄───────────────────┘  ─► RFG generator ─► DG panel
    warp thread                  [slot] ◄── the frame the generator took  ─► warp baseline panel
                                  (``warp_rate="camera"``: every processed frame)

Each arrow into a worker goes through a one-item slot where the newest item replaces an unread one, so no
queue can grow: the shape path keeps the camera's pace (it drops camera frames when it is slower), and the
generator runs behind it, always on the newest target, and shows the newest finished face. Latency is measured
from each frame's capture time to the moment its panel is ready.

Frames: camera frames are ``(H,W,3)`` uint8 RGB in image px; landmarks of the DG stages are in 256-crop px
(each frame aligned with its own ArcFace matrix), x then y (then z, relative depth).

Usage::

    engine = LiveEngine(dg, dgkit.sample_image("astronaut"), VideoFileSource("clip.mp4"))
    stats = engine.run(max_frames=100, record="session.mp4")   # or start() / latest() / stop()
    print(stats.summary())
"""

from __future__ import annotations

import contextlib

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..errors import DgkitError, InputError
from .filters import OneEuroFilter, OneEuroParams, parse_smoothing
from .sources import FrameSource

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import DualGenerator
    from ..weights import WeightsInfo
    from ..reenact import AlignedFace

__all__ = ["LiveEngine", "LiveFrame", "LiveStats", "compose_panels", "Slot"]

PANELS = ("camera", "sketch", "dg", "warp")
_NO_FACE_RESET_S = 0.5  # a face missing this long restarts the smoothing (no glide from the old position)


# --- building blocks ------------------------------------------------------------------------------------------
class Slot:
    """A one-item mailbox: ``put`` replaces an unread item (returns True when it did), ``take`` waits for one.

    The whole back-pressure of the engine: a producer faster than its consumer overwrites, it never queues.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._full = False
        self.max_items = 0  # most items ever held at once (always <= 1; kept for tests and curiosity)

    def put(self, item: Any) -> bool:
        with self._cond:
            replaced = self._full
            self._item, self._full = item, True
            self.max_items = max(self.max_items, 1)
            self._cond.notify_all()
            return replaced

    def take(self, timeout: float | None = None) -> Any:
        """The item (emptying the slot), or None when nothing arrived within ``timeout`` seconds."""
        with self._cond:
            if not self._full:
                self._cond.wait(timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def clear(self) -> bool:
        with self._cond:
            had, self._item, self._full = self._full, None, False
            return had

    def __len__(self) -> int:
        return int(self._full)


class _Rate:
    """Frames per second from the last ticks within ``window`` seconds (live counters; slow panels included)."""

    def __init__(self, window: float = 10.0, ticks: int = 10):
        self.window = window
        self._times: deque[float] = deque(maxlen=ticks)

    def tick(self, t: float | None = None) -> None:
        self._times.append(time.monotonic() if t is None else t)

    def fps(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        recent = [t for t in self._times if now - t <= self.window]
        if len(recent) < 2:
            return 0.0
        span = recent[-1] - recent[0]
        interval = span / (len(recent) - 1)
        if now - recent[-1] > 3 * interval:  # stalled: let the rate fall instead of freezing it
            span = now - recent[0]
        return (len(recent) - 1) / max(span, 1e-6)


@dataclass
class LiveFrame:
    """The newest state of every panel (arrays are not copied: treat them as read-only).

    Attributes:
        index: number of this processed frame (0, 1, ...).
        t_capture: capture time of its camera frame, ``time.monotonic()`` seconds.
        camera: (H,W,3) uint8 RGB camera frame, image px.
        face_found: whether a face was found in it.
        image_landmarks: (68,3) smoothed landmarks in image px (x, y, z), or None.
        reference_landmarks: (68,3) smoothed landmarks in 256-crop px (what IDSG gets, x, y; z depth), or None.
        target_landmarks: (68,2) IDSG target landmarks after eye correction, crop px, or None.
        sketch: (256,256) uint8 {0,255} target sketch, or None.
        dg_image: (256,256,3) uint8 RGB newest finished DG face (banner burnt in for untrained weights), or None.
        dg_index: ``index`` of the frame the DG face was made from (-1: none yet); dg_t_capture: its capture time.
        warp: (256,256,3) uint8 RGB newest warp baseline (the source crop warped onto the weight-free
            relative-3D transfer of the reference; no network), or None.
        warp_index: ``index`` of the frame the warp was made from (-1: none yet).
        weights: the engine's ``dg.weights`` (:class:`~dgkit.pipeline.WeightsInfo`; ``.trained`` False: the DG
            face carries the UNTRAINED banner), or None when the model has no weights record.
    """

    index: int
    t_capture: float
    camera: np.ndarray
    face_found: bool
    image_landmarks: np.ndarray | None = None
    reference_landmarks: np.ndarray | None = None
    target_landmarks: np.ndarray | None = None
    sketch: np.ndarray | None = None
    dg_image: np.ndarray | None = None
    dg_index: int = -1
    dg_t_capture: float = float("nan")
    warp: np.ndarray | None = None
    warp_index: int = -1
    weights: WeightsInfo | None = None


@dataclass
class LiveStats:
    """Counters and timings of one engine run (a snapshot; see :meth:`LiveEngine.stats`).

    Attributes:
        captured: frames the source delivered or skipped (a live camera's frames).
        processed: frames that went through the shape path (with or without a face).
        dropped: frames never processed because a newer one arrived first (``captured - processed`` at rest).
        no_face: processed frames without a face.
        tracked, searched: processed frames whose face the tracker followed from the previous frame, and
            frames that needed a full face search (all of them without tracking).
        dg_frames, warp_frames: finished DG faces and warp baselines.
        latency_mean_s, latency_p95_s: camera capture -> sketch panel ready, seconds.
        dg_latency_mean_s, dg_latency_p95_s: camera capture -> DG panel ready, seconds.
        fps: frames/s of each panel (capture, sketch, dg, warp) from the start to the stop request; a face
            the generator finishes while the engine stops is in ``dg_frames`` but not in the rate.
        stage_fps: 1 / mean seconds of each stage: detect, align, smooth, idsg, sketch, generator, warp
            (what each stage alone could sustain).
        seconds: wall time from the start to the stop request; warmup_s: time spent warming up before the first frame.
    """

    captured: int = 0
    processed: int = 0
    dropped: int = 0
    no_face: int = 0
    tracked: int = 0
    searched: int = 0
    dg_frames: int = 0
    warp_frames: int = 0
    latency_mean_s: float = float("nan")
    latency_p95_s: float = float("nan")
    dg_latency_mean_s: float = float("nan")
    dg_latency_p95_s: float = float("nan")
    fps: dict[str, float] = field(default_factory=dict)
    stage_fps: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    warmup_s: float = 0.0

    def summary(self) -> str:
        """A few lines for a terminal."""
        ms = lambda s: f"{1000 * s:.0f} ms"  # noqa: E731
        lines = [
            f"frames: {self.captured} captured, {self.processed} processed, {self.dropped} dropped, "
            f"{self.no_face} without a face; {self.dg_frames} DG faces, {self.warp_frames} warps "
            f"in {self.seconds:.1f} s (warm-up {self.warmup_s:.1f} s)",
            f"faces: {self.tracked} tracked from the previous frame, {self.searched} full searches",
            f"latency camera->sketch: mean {ms(self.latency_mean_s)}, p95 {ms(self.latency_p95_s)}; "
            f"camera->DG: mean {ms(self.dg_latency_mean_s)}, p95 {ms(self.dg_latency_p95_s)}",
            "panels (frames/s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.fps.items()),
            "stages (frames/s alone): " + ", ".join(f"{k} {v:.1f}" for k, v in self.stage_fps.items()),
        ]
        return "\n".join(lines)


def _mean_p95(values) -> tuple[float, float]:
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(np.percentile(arr, 95))


class _Worker:
    """A thread that runs ``fn(item)`` on the newest item put into its slot and hands the result on."""

    def __init__(self, name: str, fn: Callable[[Any], Any], done: Callable[[Any, Any], None],
                 fail: Callable[[BaseException], None]):
        self.name, self.fn, self.done, self.fail = name, fn, done, fail
        self.slot = Slot()
        self.replaced = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self.slot.clear()
        self._thread = threading.Thread(target=self._loop, name=f"dgkit-live-{self.name}", daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> None:
        self.replaced += self.slot.put(item)

    def _loop(self) -> None:
        while not self._stop.is_set():
            item = self.slot.take(0.05)
            if item is None:
                continue
            try:
                result = self.fn(item)
            except Exception as exc:  # noqa: BLE001 - reported through the engine
                self.fail(exc)
                return
            self.done(item, result)

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


class _Recorder:
    """Side-by-side panels to an mp4/avi, opened on the first frame, always closed (a playable file)."""

    def __init__(self, path: str | Path, fps: float, *, overwrite: bool = False):
        from ..errors import OutputExistsError
        from ..io import VIDEO_SUFFIXES

        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"cannot record to {self.path}: use a .mp4 or .avi file name.")
        if self.path.exists() and not overwrite:  # say so now, not at the first frame in a worker thread
            raise OutputExistsError(f"{self.path} exists already; refusing to overwrite it. Pass overwrite=True "
                                    "(command line: --force) or choose another file name.")
        self.overwrite = overwrite
        self.fps = float(fps)
        self.writer = None
        self.frames = 0
        self.closed = False
        self._lock = threading.Lock()

    def write(self, image: np.ndarray) -> None:
        from ..io import VideoWriter

        with self._lock:
            if self.closed:  # the engine thread may hold this recorder for one frame after stop_recording()
                return
            if self.writer is None:
                self.writer = VideoWriter(self.path, self.fps, (image.shape[1], image.shape[0]),
                                          overwrite=self.overwrite)
            self.writer.write(image)
            self.frames += 1

    def close(self) -> None:
        with self._lock:
            self.closed = True
            if self.writer is not None:
                self.writer.close()


# --- drawing --------------------------------------------------------------------------------------------------
def compose_panels(frame: LiveFrame | None, *, status: str = "", tile: int = 256) -> np.ndarray:
    """The four panels side by side, titled: camera + landmarks | target sketch | DG face | warp baseline.

    Args:
        frame: the engine's newest :class:`LiveFrame` (None: placeholders only).
        status: text for a bottom bar (e.g. the live counters); empty: no bar.
    Returns:
        RGB uint8 ``(tile + 22 [+ 22], 4 * tile, 3)``: what the desktop window shows and the recording holds.
    """
    from ..sheet import draw_points as _dots
    from ..sheet import fit_tile as _fit
    from ..sheet import gray_tile as _gray
    from ..sheet import placeholder_tile as _placeholder
    from ..sheet import titled_tile as _titled

    if frame is None:
        tiles = [_titled(_placeholder(text), title) for text, title in
                 (("waiting for the camera", "camera"), ("no face yet", "target sketch"),
                  ("warming up", "DG face"), ("warming up", "warp baseline"))]
    else:
        cam, scale, offset = _fit(frame.camera, tile)
        if frame.image_landmarks is not None:
            _dots(cam, frame.image_landmarks, scale, offset)
        cam_title = f"camera #{frame.index}" + ("" if frame.face_found else " (no face)")
        sketch = _gray(frame.sketch) if frame.sketch is not None else _placeholder("no face yet")
        dg = frame.dg_image if frame.dg_image is not None else _placeholder("DG running...")
        warp = frame.warp if frame.warp is not None else _placeholder("warp running...")
        tiles = [_titled(cam, cam_title), _titled(sketch, "target sketch (IDSG)"),
                 _titled(dg, f"DG face (frame #{frame.dg_index})" if frame.dg_index >= 0 else "DG face"),
                 _titled(warp, "warp baseline")]
    tiles = [t if t.shape[1] == tile else cv2.resize(t, (tile, t.shape[0] * tile // t.shape[1])) for t in tiles]
    out = np.concatenate(tiles, axis=1)
    if status:
        bar = np.full((22, out.shape[1], 3), 30, np.uint8)
        cv2.putText(bar, status[:160], (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        out = np.concatenate([out, bar], axis=0)
    return out


# --- the engine -----------------------------------------------------------------------------------------------
class LiveEngine:
    """Live reenactment from any :class:`~dgkit.live.sources.FrameSource`, testable without camera or window.

    Args:
        dg: a :class:`dgkit.DualGenerator` (its weights are recorded in ``weights``).
        source: the source face: a photo (path or RGB array) or a :class:`dgkit.reenact.AlignedFace`.
        frames: where camera frames come from (:class:`CameraSource`, :class:`VideoFileSource`, ...).
        backend: landmark backend for the camera frames (``"auto"``, ``"mediapipe"``, ... or an instance).
        tracking: follow the face from frame to frame (:class:`~dgkit.live.tracking.FaceTracker`: one landmark
            model run per frame, a full search only when the face is lost and every ``redetect_every`` frames)
            when the backend is mediapipe; False, or another backend: a full search on every frame.
        smoothing: :class:`OneEuroParams`, a string for :func:`parse_smoothing` (``"one-euro"``,
            ``"one-euro:1.0,0.05"``, ``"none"``) or None (no smoothing).
        generator: run the DG generator (the DG panel); warp: run the warp baseline panel.
        warp_rate: ``"dg"`` (default): the warp baseline is made from the same camera frame as each DG face, so
            the two panels compare like with like and the warp takes next to no CPU from the generator;
            ``"camera"``: from every processed frame (smoother, ~15 ms of CPU per frame). Without the
            generator the warp always follows the camera.
        on_update: ``callback(kind, frame)`` after each new panel state, kind "shape", "dg" or "warp"
            (called from the engine's threads; keep it short).
        on_take: ``callback(t_capture)`` when the shape path takes a frame to process (the notebook app's
            acknowledgement: the browser sends its next frame only then).
        label_untrained: burn the "UNTRAINED weights" banner into DG faces made with untrained weights.

    Attributes:
        weights: ``dg.weights`` (label and whether trained). error: the error that stopped the last run, or None.
    """

    def __init__(self, dg: DualGenerator, source, frames: FrameSource, *, backend="auto",
                 smoothing: OneEuroParams | str | None = "one-euro", generator: bool = True, warp: bool = True,
                 on_update: Callable[[str, LiveFrame], None] | None = None,
                 on_take: Callable[[float], None] | None = None, label_untrained: bool = True,
                 tracking: bool = True, redetect_every: int = 30, warp_rate: str = "dg"):
        from ..viz import is_untrained

        self.dg, self.frames, self.backend = dg, frames, backend
        self.smoothing = parse_smoothing(smoothing)
        self.use_generator, self.use_warp = bool(generator), bool(warp)
        self.on_update, self.on_take = on_update, on_take
        self.weights = getattr(dg, "weights", None)
        self.untrained = label_untrained and is_untrained(dg)
        self.error: BaseException | None = None
        self.warmed_up = False
        self.tracking, self.redetect_every = bool(tracking), int(redetect_every)
        if warp_rate not in ("dg", "camera"):
            raise InputError(f"warp_rate must be 'dg' or 'camera', got {warp_rate!r}")
        self.warp_rate = warp_rate
        self.tracker = None  # a FaceTracker once warm_up() found the backend trackable
        self._filter = OneEuroFilter(self.smoothing) if self.smoothing else None
        self._lock = threading.RLock()
        self._slot = Slot()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._gen = _Worker("generator", self._generate, self._on_dg, self._fail)
        self._warp = _Worker("warp", self._warp_image, self._on_warp, self._fail)
        self._recorder: _Recorder | None = None
        self._latest: LiveFrame | None = None
        self._max_frames: int | None = None
        self.set_source(source)
        self._reset_counters()

    # source face ------------------------------------------------------------------------------------------
    def set_source(self, source) -> None:
        """Use another source face (photo or :class:`AlignedFace`); encoded once, used from the next frame."""
        from ..reenact import AlignedFace, prepare_face

        face = source if isinstance(source, AlignedFace) else prepare_face(source, backend=self.backend)
        encoding = self.dg.encode_source(face.crop)
        with self._lock:
            self.source, self.encoding = face, encoding

    # control ----------------------------------------------------------------------------------------------
    def warm_up(self) -> float:
        """Run every network once on the source face so the first camera frame is not slow; returns seconds."""
        from ..landmarks import detect_faces

        from .tracking import FaceTracker

        start = time.perf_counter()
        detect_faces(self.source.photo, self.backend)
        if self.tracking and self.tracker is None and FaceTracker.supports(self.backend):
            self.tracker = FaceTracker(self.backend, redetect_every=self.redetect_every)
        if self.tracker is not None:
            self.tracker.warm_up(np.ascontiguousarray(self.source.photo))
        lm = self.source.crop_landmarks[:, :2]
        style = self.encoding.style_code if self.use_generator else None
        self.dg.run_chain(lm, self.encoding.id_feature, style)
        if self.use_warp:
            self._neutral = None
            self._warp_image((0, 0.0, self.source.crop_landmarks))
        self.warmed_up = True
        self._warmup_s = time.perf_counter() - start
        return self._warmup_s

    def start(self, *, max_frames: int | None = None, record: str | Path | None = None,
              overwrite: bool = False) -> None:
        """Open the source and start the threads (warming up first if needed). Raises when the source cannot open."""
        if self.running:
            raise InputError("the live engine is already running; stop() it first")
        if max_frames is not None and max_frames < 1:
            raise InputError(f"max_frames must be at least 1, got {max_frames}")
        if not self.warmed_up:
            self.warm_up()
        self._reset_counters()
        self._max_frames = max_frames
        self.frames.open()
        try:
            if record is not None:
                self.start_recording(record, overwrite=overwrite)
        except BaseException:
            self.frames.close()
            raise
        self._t_start = time.monotonic()
        self._stop.clear()
        self._done.clear()
        self._capture_done = False  # before the threads start: a short source may end before the shape loop runs
        if self.use_generator:
            self._gen.start()
        if self.use_warp:
            self._warp.start()
        self._threads = [threading.Thread(target=self._capture_loop, name="dgkit-live-capture", daemon=True),
                         threading.Thread(target=self._shape_loop, name="dgkit-live-shape", daemon=True)]
        for t in self._threads:
            t.start()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the run ends by itself (source ended, ``max_frames`` reached, error); True when it did."""
        return self._done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> LiveStats:
        """Stop the threads, close the source and the recording (always); returns the final stats."""
        self._stop.set()
        # the panel rates cover the run up to this request: a frame the generator finishes while we wait for it
        # below must not count, and neither must the wait (it would lower every rate)
        self._t_end = time.monotonic()
        self._counts_at_stop = self._panel_counts()
        try:
            self.frames.close()  # unblocks a waiting push source
            for t in self._threads:
                t.join(timeout)
            self._gen.stop(timeout)
            self._warp.stop(timeout)
        finally:
            self._threads = []
            self.stop_recording()
        return self.stats()

    def close(self) -> None:
        """Stop (when running) and release the face tracker's model threads (a later start builds them again)."""
        if self._threads:
            self.stop()
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None

    def __enter__(self) -> "LiveEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def restart(self, **kwargs) -> None:
        """Stop, then start again (counters and smoothing reset; the source face and warm-up are kept)."""
        self.stop()
        self.start(**kwargs)

    def run(self, *, max_frames: int | None = None, record: str | Path | None = None,
            timeout: float | None = None, overwrite: bool = False) -> LiveStats:
        """Start, wait for the end (source ended, ``max_frames``, ``timeout`` seconds), stop; re-raise the error
        that stopped it (after the recording was closed). An existing ``record`` file is refused unless
        ``overwrite=True``."""
        self.start(max_frames=max_frames, record=record, overwrite=overwrite)
        try:
            self.wait(timeout)
        finally:
            stats = self.stop()
        if self.error is not None:
            raise self.error
        return stats

    # recording --------------------------------------------------------------------------------------------
    def start_recording(self, path: str | Path, fps: float | None = None, *, overwrite: bool = False) -> None:
        """Record the side-by-side panels (:func:`compose_panels`) of every processed frame to ``path`` (written
        all-or-nothing; an existing file is refused unless ``overwrite=True``)."""
        recorder = _Recorder(path, fps or self.frames.fps or 15.0, overwrite=overwrite)
        self.stop_recording()
        self._recorder = recorder

    def stop_recording(self) -> Path | None:
        """Close the recording (a playable file); returns its path, or None when nothing was recording."""
        rec, self._recorder = self._recorder, None
        if rec is None:
            return None
        rec.close()
        self.recorded_frames = rec.frames
        return rec.path

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    # state ------------------------------------------------------------------------------------------------
    def latest(self) -> LiveFrame | None:
        """The newest panel state (None before the first processed frame)."""
        return self._latest

    def rates(self) -> dict[str, float]:
        """Frames/s of each panel over the last two seconds (capture, sketch, dg, warp): the live counters."""
        now = time.monotonic()
        return {k: r.fps(now) for k, r in self._rates.items()}

    def stats(self) -> LiveStats:
        """Counters and timings so far (or of the finished run)."""
        end = self._t_end if not self.running and self._t_end else time.monotonic()
        wall = max(end - self._t_start, 1e-9) if self._t_start else 0.0
        skipped = self.frames.skipped
        tracker = self.tracker
        lat, dg_lat = _mean_p95(self._latency), _mean_p95(self._dg_latency)
        counts = self._counts_at_stop if not self.running and self._counts_at_stop else self._panel_counts()
        stage = {k: (n / s if s > 0 else 0.0) for k, (n, s) in self._stage.items() if n}
        return LiveStats(
            captured=self._captured + skipped, processed=self._processed,
            dropped=self._slot_dropped + skipped, no_face=self._no_face, dg_frames=self._dg_frames,
            tracked=tracker.tracked if tracker else 0,
            searched=tracker.searched if tracker else self._processed,
            warp_frames=self._warp_frames, latency_mean_s=lat[0], latency_p95_s=lat[1],
            dg_latency_mean_s=dg_lat[0], dg_latency_p95_s=dg_lat[1],
            fps={k: (v / wall if wall else 0.0) for k, v in counts.items()}, stage_fps=stage, seconds=wall,
            warmup_s=self._warmup_s)

    # internals --------------------------------------------------------------------------------------------
    def _panel_counts(self) -> dict[str, int]:
        return {"capture": self._captured + self.frames.skipped, "sketch": self._processed, "dg": self._dg_frames,
                "warp": self._warp_frames}

    def _reset_counters(self) -> None:
        self._counts_at_stop: dict[str, int] | None = None
        self._captured = self._processed = self._slot_dropped = self._no_face = 0
        self._dg_frames = self._warp_frames = 0
        self._latency: deque[float] = deque(maxlen=10_000)  # bounded: a long session keeps the last 10k
        self._dg_latency: deque[float] = deque(maxlen=10_000)
        self._stage: dict[str, list[float]] = {k: [0, 0.0] for k in
                                                 ("detect", "align", "smooth", "idsg", "sketch", "generator", "warp")}
        self._rates = {k: _Rate() for k in ("capture", "sketch", "dg", "warp")}
        self._t_start = self._t_end = 0.0
        self._warmup_s = getattr(self, "_warmup_s", 0.0)
        self._latest = None
        self._last_face_t = -1e9
        self._neutral: np.ndarray | None = None
        self._proc_s: deque[float] = deque(maxlen=10_000)  # seconds per processed frame (shape path)
        self.recorded_frames = 0
        self.error = None
        if self._filter is not None:
            self._filter.reset()
        if self.tracker is not None:
            self.tracker.reset(counters=True)
        self._slot.clear()

    def _timed(self, name: str, fn, *args):
        with self._stage_timer(name):
            return fn(*args)

    @contextlib.contextmanager
    def _stage_timer(self, name: str):
        """Charge the time of a ``with`` block to stage ``name`` (also the ``timer`` of ``dg.run_chain``)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            entry = self._stage[name]
            entry[0] += 1
            entry[1] += time.perf_counter() - start

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._stop.set()
        self._done.set()

    def _capture_loop(self) -> None:
        try:
            while not self._stop.is_set():
                item = self.frames.read()
                if item is None:
                    break
                self._captured += 1
                self._rates["capture"].tick()
                self._slot_dropped += self._slot.put(item)
        except Exception as exc:  # noqa: BLE001 - a lost camera ends the run with a clear error
            if not self._stop.is_set():
                self._fail(exc if isinstance(exc, DgkitError) else
                           DgkitError(f"the frame source {self.frames.name} failed: {exc}"))
        finally:
            self._capture_done = True

    def _shape_loop(self) -> None:
        try:
            while not self._stop.is_set():
                item = self._slot.take(0.05)
                if item is None:
                    if self._capture_done:
                        break
                    continue
                if self.on_take is not None:
                    self.on_take(item[1])
                self._process(*item)
                if self._max_frames is not None and self._processed >= self._max_frames:
                    break
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            self._done.set()

    def _process(self, frame: np.ndarray, t_capture: float) -> None:
        from ..align import alignment_matrix, transform_landmarks
        from ..landmarks import detect_faces

        with self._lock:
            encoding = self.encoding
        index = self._processed
        t_start = time.monotonic()
        if self.tracker is not None:
            faces = self._timed("detect", self.tracker, frame)
        else:
            faces = self._timed("detect", detect_faces, frame, self.backend)
        previous = self._latest
        if not faces:
            out = LiveFrame(index, t_capture, frame, False)
            self._no_face += 1
        else:
            lm = faces[0].landmarks
            matrix = self._timed("align", alignment_matrix, lm)
            crop_lm = transform_landmarks(lm, matrix)
            if self._filter is not None:
                if t_capture - self._last_face_t > _NO_FACE_RESET_S:
                    self._filter.reset()
                crop_lm = self._timed("smooth", self._filter, crop_lm, t_capture)
            self._last_face_t = t_capture
            inverse = cv2.invertAffineTransform(matrix)
            image_lm = crop_lm.copy()
            image_lm[:, :2] = crop_lm[:, :2] @ inverse[:, :2].T + inverse[:, 2]
            # IDSG + eye correction + sketch: the model's one step chain, shape only (the generator runs behind)
            chain = self.dg.run_chain(crop_lm[:, :2], encoding.id_feature, timer=self._stage_timer)
            target, sketch = chain.target_landmarks, chain.sketch
            out = LiveFrame(index, t_capture, frame, True, image_lm, crop_lm, target[0], sketch[0])
            if self.use_warp and self._neutral is None:
                self._neutral = crop_lm.copy()  # the first face of the run: the relative-3D baseline's rest pose
            if self.use_generator:
                self._gen.submit((index, t_capture, sketch, encoding, crop_lm))
            if self.use_warp and (self.warp_rate == "camera" or not self.use_generator):
                self._warp.submit((index, t_capture, crop_lm))
        if previous is not None:  # the slower panels keep their newest finished image
            out.dg_image, out.dg_index, out.dg_t_capture = previous.dg_image, previous.dg_index, previous.dg_t_capture
            out.warp, out.warp_index = previous.warp, previous.warp_index
        out.weights = self.weights
        self._latest = out
        self._proc_s.append(time.monotonic() - t_start)
        self._processed += 1
        self._latency.append(time.monotonic() - t_capture)
        self._rates["sketch"].tick()
        rec = self._recorder
        if rec is not None:
            rec.write(compose_panels(out))
        self._notify("shape", out)

    def _generate(self, item) -> np.ndarray:
        from ..viz import stamp_untrained

        index, t_capture, sketch, encoding, crop_lm = item
        if self.use_warp and self.warp_rate == "dg":  # the warp baseline of the same frame, alongside
            self._warp.submit((index, t_capture, crop_lm))
        image = self._timed("generator", self.dg.generate, sketch, encoding.style_code)[0]
        return stamp_untrained(image, self.untrained)

    def _warp_image(self, item) -> np.ndarray:
        """The weight-free baseline: the source crop warped onto the relative-3D transfer of the reference."""
        from ..baselines import relative_transfer_3d, warp_to_landmarks

        with self._lock:
            face = self.source
        reference = item[2]
        neutral = self._neutral if self._neutral is not None else reference
        target = relative_transfer_3d(face.crop_landmarks, reference, neutral3d=neutral)
        return self._timed("warp", warp_to_landmarks, face.crop, face.crop_landmarks, target)

    def _on_dg(self, item, image: np.ndarray) -> None:
        index, t_capture = item[0], item[1]
        self._dg_frames += 1
        self._dg_latency.append(time.monotonic() - t_capture)
        self._rates["dg"].tick()
        latest = self._latest
        if latest is not None and index >= latest.dg_index:
            latest.dg_image, latest.dg_index, latest.dg_t_capture = image, index, t_capture
            self._notify("dg", latest)

    def _on_warp(self, item, image: np.ndarray) -> None:
        self._warp_frames += 1
        self._rates["warp"].tick()
        latest = self._latest
        if latest is not None and item[0] >= latest.warp_index:
            latest.warp, latest.warp_index = image, item[0]
            self._notify("warp", latest)

    def _notify(self, kind: str, frame: LiveFrame) -> None:
        if self.on_update is not None:
            try:
                self.on_update(kind, frame)
            except Exception as exc:  # noqa: BLE001 - a front-end bug must not kill the engine silently
                self._fail(exc)
