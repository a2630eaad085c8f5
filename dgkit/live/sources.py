"""Frame sources for the live engine: a camera, a video file played like a camera, frames in memory, pushed frames.

Every source has the same small interface::

    source.open()                      # may raise CameraError
    item = source.read()               # (frame (H,W,3) uint8 RGB, t seconds on time.monotonic()) or None at the end
    source.close()                     # idempotent
    source.fps                         # nominal frames per second (None: unknown / as fast as possible)
    source.skipped                     # frames the source itself skipped to stay live (counted as dropped)

``t`` is the moment the frame was (or, for a file, should have been) captured: latencies are measured from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import DgkitError, InputError, VideoError


class CameraError(DgkitError):
    """A camera cannot be opened, or it stopped delivering frames (live mode)."""


__all__ = ["ArraySource", "CameraError", "CameraSource", "FrameSource", "PushSource", "VideoFileSource"]


class FrameSource:
    """Base class (see the module docstring)."""

    fps: float | None = None
    name: str = "frames"

    def __init__(self) -> None:
        self.skipped = 0
        self._io_lock = threading.Lock()  # close() may come from another thread while read() is decoding

    def open(self) -> None:
        self.skipped = 0

    def read(self) -> tuple[np.ndarray, float] | None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class CameraSource(FrameSource):
    """A camera by OpenCV index (``cv2.VideoCapture(index)``), one frame buffered at most.

    Args:
        index: camera index (0: the default camera).
        max_failures: consecutive failed reads after which the camera counts as lost.
        api: OpenCV capture API (``cv2.CAP_ANY`` by default).
    """

    def __init__(self, index: int = 0, *, max_failures: int = 10, api: int = cv2.CAP_ANY):
        super().__init__()
        self.index, self.max_failures, self.api = int(index), int(max_failures), api
        self.name = f"camera {self.index}"
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        super().open()
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our message says it better
        try:
            cap = cv2.VideoCapture(self.index, self.api)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"camera {self.index} cannot be opened: is a camera connected, allowed for this user "
                              "(Linux: the 'video' group) and not in use by another program? Try another index "
                              "(--camera 1) or play a file instead (--video PATH).")
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a backlog (ignored by some drivers)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        self._cap = cap

    def read(self) -> tuple[np.ndarray, float] | None:
        for _ in range(max(1, self.max_failures)):
            with self._io_lock:
                if self._cap is None:
                    return None  # closed (stopped) meanwhile
                ok, frame = self._cap.read()
            if ok and frame is not None and frame.size:
                return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), time.monotonic()
            time.sleep(0.02)
        raise CameraError(f"{self.name} stopped delivering frames ({self.max_failures} failed reads in a row): "
                          "it was unplugged, switched off or taken by another program.")

    def close(self) -> None:
        with self._io_lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None


class VideoFileSource(FrameSource):
    """A video file played as if it were a camera: at the file's frame rate, on the wall clock.

    Frame ``i`` is due at ``start + i / fps``. When the reader falls behind (decoding or the machine is slow),
    frames already past their time are skipped (``skipped``), as a live camera would have moved on; when it
    is ahead it waits. ``realtime=False`` reads every frame as fast as possible (nothing skipped here).

    Args:
        path: any video OpenCV reads.
        realtime: pace the frames on the wall clock (default) or not.
        fps: override the file's frame rate (files that do not state one play at 25 fps).
    """

    def __init__(self, path: str | Path, *, realtime: bool = True, fps: float | None = None):
        super().__init__()
        self.path = Path(path)
        self.realtime = bool(realtime)
        self._fps_override = fps
        self.name = f"video {self.path.name}"
        self._cap: cv2.VideoCapture | None = None
        self._next = 0
        self._start = 0.0

    def open(self) -> None:
        super().open()
        if not self.path.is_file():
            raise VideoError(f"the video {self.path} does not exist; check the path given to --video.")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise VideoError(f"OpenCV cannot open the video {self.path} (not a video, or a codec it lacks).")
        fps = self._fps_override or cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self._cap, self._next, self._start = cap, 0, time.monotonic()

    def read(self) -> tuple[np.ndarray, float] | None:
        if self.realtime:
            due = int((time.monotonic() - self._start) * self.fps)  # the frame a camera would show now
            with self._io_lock:
                while self._next < due:  # past their time: skip without decoding the pixels
                    if self._cap is None or not self._cap.grab():
                        return None
                    self._next += 1
                    self.skipped += 1
            wait = self._start + self._next / self.fps - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        with self._io_lock:
            if self._cap is None:
                return None  # closed (stopped) meanwhile
            ok, frame = self._cap.read()
        if not ok or frame is None:
            return None
        t = self._start + self._next / self.fps if self.realtime else time.monotonic()
        self._next += 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), t

    def close(self) -> None:
        with self._io_lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None


class ArraySource(FrameSource):
    """Frames from memory (tests, demos): a sequence of ``(H,W,3)`` uint8 RGB arrays.

    Args:
        frames: the frames, played once (or ``loop`` times over).
        fps: pace them on the wall clock at this rate; None: as fast as the reader asks (a "camera" faster than
            any processing, for back-pressure tests).
        loop: how many times to play the sequence.
        fail_after: raise :class:`CameraError` after this many frames (simulates a camera that is unplugged).
    """

    def __init__(self, frames: Sequence[np.ndarray], *, fps: float | None = 30.0, loop: int = 1,
                 fail_after: int | None = None):
        super().__init__()
        if len(frames) == 0:
            raise InputError("ArraySource needs at least one frame")
        self.frames, self.fps, self.loop, self.fail_after = frames, fps, int(loop), fail_after
        self.name = "frames in memory"
        self._i = 0
        self._start = 0.0

    def open(self) -> None:
        super().open()
        self._i, self._start = 0, time.monotonic()

    def read(self) -> tuple[np.ndarray, float] | None:
        if self.fail_after is not None and self._i >= self.fail_after:
            raise CameraError(f"the camera stopped delivering frames after {self._i} frames (simulated)")
        if self._i >= len(self.frames) * self.loop:
            return None
        t = time.monotonic()
        if self.fps:
            t = self._start + self._i / self.fps
            wait = t - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        frame = np.asarray(self.frames[self._i % len(self.frames)])
        self._i += 1
        return frame, t


class PushSource(FrameSource):
    """Frames pushed by someone else (the notebook app's browser camera); the newest one wins.

    ``push(frame, t)`` never blocks; a frame not yet read when the next one arrives is replaced and counted in
    ``skipped``. ``read`` waits for a frame; ``finish()`` ends the stream (``read`` returns None).
    """

    def __init__(self, fps: float | None = None):
        super().__init__()
        self.fps = fps
        self.name = "browser camera"
        self._cond = threading.Condition()
        self._item: tuple[np.ndarray, float] | None = None
        self._done = False

    def open(self) -> None:
        super().open()
        with self._cond:
            self._item, self._done = None, False

    def push(self, frame: np.ndarray, t: float | None = None) -> None:
        with self._cond:
            if self._item is not None:
                self.skipped += 1
            self._item = (frame, time.monotonic() if t is None else t)
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def read(self) -> tuple[np.ndarray, float] | None:
        with self._cond:
            while self._item is None and not self._done:
                self._cond.wait(0.1)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        self.finish()
