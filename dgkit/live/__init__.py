"""Live reenactment: a camera (or a video played like one) drives DG in real time.

* :class:`LiveEngine`: capture -> detect/align/One-Euro smooth -> IDSG + sketch (camera's pace) -> generator
  (behind, newest finished face) and warp baseline; latest-frame-wins slots, never a growing queue; stats;
  recording of the side-by-side panels.
* frame sources: :class:`CameraSource`, :class:`VideoFileSource` (a file at its frame rate, dropping frames like
  a camera), :class:`ArraySource` (frames in memory), :class:`PushSource` (frames pushed by the notebook app).
* :class:`OneEuroFilter`: the low-latency landmark smoother; :class:`FaceTracker`: follows the face between
  frames (mediapipe), a full face search only when it is lost.
* front-ends: ``dgkit live`` (OpenCV window, :mod:`dgkit.live.desktop`) and :class:`dgkit.widgets.LiveApp`.
"""

from __future__ import annotations

from .engine import LiveEngine, LiveFrame, LiveStats, Slot, compose_panels
from .filters import OneEuroFilter, OneEuroParams, parse_smoothing
from .sources import ArraySource, CameraError, CameraSource, FrameSource, PushSource, VideoFileSource
from .tracking import FaceTracker

__all__ = ["ArraySource", "CameraError", "CameraSource", "FaceTracker", "FrameSource", "LiveEngine", "LiveFrame",
           "LiveStats", "OneEuroFilter", "OneEuroParams", "PushSource", "Slot", "VideoFileSource", "compose_panels",
           "parse_smoothing"]
