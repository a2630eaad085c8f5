"""Face tracking of the live shape path (mediapipe): follows the face, re-detects when it jumps, never stale."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("mediapipe")

from dgkit.landmarks import detect_faces  # noqa: E402
from dgkit.live.tracking import FaceTracker  # noqa: E402


def _frame(face: np.ndarray, dx: float, dy: float = 0.0, size=(640, 480)) -> np.ndarray:
    """The sample photo (scaled to 90 %) on a gray ``size`` canvas, moved by (dx, dy) px from the centre."""
    w, h = size
    k = 0.9
    m = np.array([[k, 0, (w - k * face.shape[1]) / 2 + dx], [0, k, (h - k * face.shape[0]) / 2 + dy]])
    return cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_AREA, borderValue=(90, 90, 90))


@pytest.fixture(scope="module")
def face():
    import dgkit

    return dgkit.sample_image("astronaut")


def _err(a, b) -> float:
    return float(np.linalg.norm(a.landmarks[:, :2] - b.landmarks[:, :2], axis=1).mean())


def test_tracking_follows_a_moving_face_like_a_full_search(face):
    tracker = FaceTracker("mediapipe", redetect_every=0)
    frames = [_frame(face, 3.0 * i, 1.0 * i) for i in range(8)]
    tracker.warm_up(frames[0])
    out = [tracker(f) for f in frames]
    assert tracker.frames == 8 and tracker.tracked == 8 and tracker.searched == 0
    assert all(len(o) == 1 and o[0].landmarks.shape == (68, 3) for o in out)
    # each frame's landmarks are that frame's: close to a full search (the sample's inter-ocular distance ~55 px)
    for f, o in zip(frames[::3], out[::3]):
        assert _err(o[0], detect_faces(f, "mediapipe")[0]) < 2.0
    # and they move with the face (24 px right, 7 px down over the clip)
    shift = (out[-1][0].landmarks[:, :2] - out[0][0].landmarks[:, :2]).mean(axis=0)
    np.testing.assert_allclose(shift, [21.0, 7.0], atol=2.5)
    assert abs(out[-1][0].landmarks[:, 2].mean()) < 1e-9  # z zero-mean, as the backend gives it


def test_a_jump_is_re_detected_on_the_same_frame(face):
    tracker = FaceTracker("mediapipe", redetect_every=0)
    left, right = _frame(face, -130.0), _frame(face, 130.0)
    tracker(left)
    tracker(left)
    searched = tracker.searched
    jumped = tracker(right)
    assert len(jumped) == 1
    assert _err(jumped[0], detect_faces(right, "mediapipe")[0]) < 2.0  # the new place, not the old one
    assert jumped[0].landmarks[:, 0].mean() > left.shape[1] / 2
    assert tracker.searched == searched + 1  # the tracked region was empty: a full search on that frame


def test_a_lost_face_gives_no_stale_landmarks_and_is_found_again(face):
    tracker = FaceTracker("mediapipe", redetect_every=0)
    frame = _frame(face, 0.0)
    assert len(tracker(frame)) == 1
    assert tracker(np.full_like(frame, 90)) == []  # the face left: nothing, not the last landmarks
    back = tracker(frame)
    assert len(back) == 1 and _err(back[0], detect_faces(frame, "mediapipe")[0]) < 2.0


def test_periodic_re_detection_and_counters(face):
    tracker = FaceTracker("mediapipe", redetect_every=3)
    frame = _frame(face, 10.0)
    for _ in range(7):
        assert len(tracker(frame)) == 1
    assert tracker.frames == 7 and tracker.redetections == 2  # before frames 4 and 7
    tracker.reset(counters=True)
    assert tracker.frames == tracker.tracked == tracker.searched == tracker.redetections == 0


def test_only_the_mediapipe_backend_is_tracked(synthetic_dg, face):
    from dgkit.errors import InputError
    from dgkit.landmarks import LandmarkBackend
    from dgkit.live import ArraySource, LiveEngine

    class Other(LandmarkBackend):
        name = "other-test"

        @classmethod
        def available(cls):
            return True, "test"

        def detect(self, image_rgb):
            return []

    assert FaceTracker.supports("mediapipe") and not FaceTracker.supports(Other())
    with pytest.raises(InputError):
        FaceTracker(Other())
    frames = [_frame(face, 2.0 * i) for i in range(4)]
    tracked = LiveEngine(synthetic_dg, face, ArraySource(frames, fps=None), backend="mediapipe", generator=False,
                         warp=False, smoothing=None)
    untracked = LiveEngine(synthetic_dg, face, ArraySource(frames, fps=None), backend="mediapipe",
                           generator=False, warp=False, smoothing=None, tracking=False)
    tracked.warm_up()
    untracked.warm_up()
    assert isinstance(tracked.tracker, FaceTracker) and untracked.tracker is None
    # frames come as fast as asked: some are dropped; every processed one is tracked or searched
    a, b = tracked.run(), untracked.run()
    assert a.processed >= 1 and a.tracked + a.searched == a.processed and a.tracked >= 1
    assert b.tracked == 0 and b.searched == b.processed >= 1
    # same landmarks either way on the last frame (within a pixel or two)
    la, lb = tracked.latest(), untracked.latest()
    if la.camera is lb.camera:
        assert np.abs(la.image_landmarks - lb.image_landmarks)[:, :2].mean() < 2.0


def _mediapipe_threads() -> int:
    import os

    count = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                count += f.read().startswith("mediapipe")
        except OSError:
            pass
    return count


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/task"), reason="needs Linux /proc to count threads")
def test_closing_releases_the_mesh_threads_and_tracking_still_works_after(face):
    before = _mediapipe_threads()
    tracker = FaceTracker("mediapipe", redetect_every=0)
    tracker.warm_up(_frame(face, 0.0))
    assert _mediapipe_threads() > before  # the mesh graph runs on its own threads
    tracker.close()
    assert _mediapipe_threads() == before  # engines made one after another do not pile up threads
    assert len(tracker(_frame(face, 5.0))) == 1  # a frame after close builds the graph again
    tracker.close()
    tracker.close()  # closing twice is harmless
    assert _mediapipe_threads() == before
