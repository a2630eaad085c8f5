"""``dgkit live``: the live engine in an OpenCV window (or without one), from a camera or a video file.

::

    dgkit live SOURCE [--camera INDEX | --video PATH] [--record OUT.mp4] [--no-window] [--max-frames N]
                      [--backend auto|mediapipe|fan] [--smoothing one-euro|one-euro:MIN_CUTOFF,BETA|none]

Window keys: ``q`` (or Esc) quit, ``s`` save a snapshot PNG of the panels, ``r`` start/stop recording.
A camera that cannot be opened or stops gives a dgkit error (exit status 1); a recording is always closed
first, so the file made so far plays.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError
from .engine import LiveEngine, LiveStats, compose_panels
from .filters import parse_smoothing
from .sources import CameraSource, FrameSource, VideoFileSource

__all__ = ["counters_text", "register_cli", "run_window"]

WINDOW = "dgkit live"


def counters_text(engine: LiveEngine) -> str:
    """The live counters in one line: frames/s per panel, latency, dropped frames, recording state."""
    r, s = engine.rates(), engine.stats()
    rec = " | REC" if engine.recording else ""
    lat = f"{1000 * s.latency_mean_s:.0f}" if s.processed else "-"
    dg_lat = f"{1000 * s.dg_latency_mean_s:.0f}" if s.dg_frames else "-"
    fps = {k: f"{v:.1f}" if v > 0 else "-" for k, v in r.items()}  # fewer than two frames tell no rate yet
    return (f"fps camera {fps['capture']}  sketch {fps['sketch']}  DG {fps['dg']}  warp {fps['warp']}"
            f" | latency sketch {lat} ms, DG {dg_lat} ms | dropped {s.dropped}{rec}   q quit  s snapshot  r record")


def _timestamped(stem: str, suffix: str, folder: Path) -> Path:
    return folder / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}{suffix}"


def run_window(engine: LiveEngine, *, max_frames: int | None = None, record: str | Path | None = None,
               snapshot_dir: str | Path = ".", press: Callable[[LiveEngine], int | None] | None = None,
               overwrite: bool = False) -> LiveStats:
    """Run ``engine`` in an OpenCV window until ``q``/Esc, the end of the source or ``max_frames``.

    ``press``: for tests, ``press(engine)`` is asked at each refresh and a key code it returns counts as
    pressed (None: read the keyboard). Returns the final stats; re-raises the error that stopped the engine (after the recording was closed).
    """
    import cv2

    snapshot_dir = Path(snapshot_dir)
    engine.start(max_frames=max_frames, record=record, overwrite=overwrite)
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)
        while not engine.wait(0.0):
            panels = compose_panels(engine.latest(), status=counters_text(engine))
            cv2.imshow(WINDOW, np.ascontiguousarray(panels[..., ::-1]))
            key = cv2.waitKey(15) & 0xFF
            if press is not None:
                key = press(engine) or key
            if key in (ord("q"), 27):
                break
            if key == ord("s"):
                path = _timestamped("dgkit-live-snapshot", ".png", snapshot_dir)
                from ..io import write_image

                write_image(path, panels)
                print(f"live: snapshot {path}")
            elif key == ord("r"):
                if engine.recording:
                    print(f"live: recording stopped, {engine.stop_recording()}")
                else:
                    path = Path(record) if record and not Path(record).exists() else \
                        _timestamped("dgkit-live", ".mp4", snapshot_dir)
                    engine.start_recording(path)
                    print(f"live: recording to {path}")
    finally:
        stats = engine.stop()
        try:
            cv2.destroyWindow(WINDOW)
            cv2.waitKey(1)
        except cv2.error:  # no window was made (no display)
            pass
    if engine.error is not None:
        raise engine.error
    return stats


# --- command line ----------------------------------------------------------------------------------------------
def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dgkit live``."""
    from ..reenact_cli import add_dg_arguments

    p = subparsers.add_parser(
        "live", help="live reenactment from a camera (or a video played like one)",
        description="You are the reference: the SOURCE photo's person follows the head pose and expression seen by "
                    "the camera. Panels: camera + landmarks, target sketch (keeps the camera's pace), DG face (as "
                    "often as the generator allows), warp baseline. Window keys: q quit, s snapshot, r record.")
    p.add_argument("source", help="source photo (the identity), or a sample name (astronaut, ...)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--camera", type=int, default=0, metavar="INDEX", help="camera index (default 0)")
    group.add_argument("--video", metavar="PATH", help="play a video file as the camera, at its frame rate")
    p.add_argument("--record", metavar="OUT.mp4", help="record camera frames and outputs side by side")
    p.add_argument("--no-window", action="store_true", help="no window (servers, tests); prints stats at the end")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N processed frames")
    p.add_argument("--backend", default="auto", help="landmark backend: auto, mediapipe, fan, fan2d")
    p.add_argument("--smoothing", default="one-euro",
                   help="landmark smoothing: one-euro (default), one-euro:MIN_CUTOFF,BETA (e.g. 1.0,0.05), none")
    add_dg_arguments(p)
    p.add_argument("--force", action="store_true", help="replace the --record file if it exists (default: refuse)")
    p.add_argument("--no-generator", action="store_true", help="no DG panel (shape path and warp only)")
    p.add_argument("--snapshot-dir", default=".", help="folder for s snapshots and r recordings (default .)")
    p.set_defaults(func=_cli_live)


def _frame_source(args: argparse.Namespace) -> FrameSource:
    if args.video:
        return VideoFileSource(args.video)
    return CameraSource(args.camera)


def _cli_live(args: argparse.Namespace) -> int:
    from ..io import photo_or_sample
    from ..reenact_cli import load_dg_from_args as _cli_load_dg

    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.record and Path(args.record).resolve() in {Path(p).resolve() for p in (args.source, args.video) if p}:
        raise InputError(f"--record {args.record} would overwrite an input; choose another file name.")
    smoothing = parse_smoothing(args.smoothing)  # mistakes in the arguments first, before the slow loading
    frames = _frame_source(args)
    frames.open()  # a missing camera or video fails now, not after loading the networks
    frames.close()
    dg = _cli_load_dg(args)
    if not dg.weights.trained:
        print(f"dgkit: warning: DG weights are {dg.weights.label}: the DG panel is NOT a real result")
    engine = LiveEngine(dg, photo_or_sample(args.source), frames, backend=args.backend, smoothing=smoothing,
                        generator=not args.no_generator)
    print(f"live: warming up ({dg.weights.label} weights on {args.device})...", flush=True)
    with engine:
        engine.warm_up()
        if args.no_window:
            stats = engine.run(max_frames=args.max_frames, record=args.record, overwrite=args.force)
        else:
            stats = run_window(engine, max_frames=args.max_frames, record=args.record,
                               snapshot_dir=args.snapshot_dir, overwrite=args.force)
    print("live: " + stats.summary().replace("\n", "\nlive: "))
    if args.record:
        print(f"live: recorded {engine.recorded_frames} frames to {args.record}")
    return 0
