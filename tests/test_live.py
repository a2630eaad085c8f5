"""The live engine without camera or window: One-Euro filter, latest-frame-wins slots, dropped-frame accounting,
bounded latency and memory under a too-fast source, stop/restart, recording, a lost camera."""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

from dgkit import viz
from dgkit.errors import DgkitError, InputError
from dgkit.live import (ArraySource, CameraError, CameraSource, FrameSource, LiveEngine, OneEuroFilter,
                        OneEuroParams, PushSource, Slot, VideoFileSource, compose_panels, parse_smoothing)
from dgkit.landmarks.base import FaceDetection, LandmarkBackend


# --- One-Euro filter ------------------------------------------------------------------------------------------
def test_one_euro_no_lag_at_rest():
    f = OneEuroFilter(OneEuroParams(min_cutoff=0.5, beta=0.0))
    x = np.arange(136, dtype=float).reshape(68, 2)
    outs = [f(x, i / 30) for i in range(30)]
    for out in outs:
        np.testing.assert_array_equal(out, x)  # a still input passes unchanged, from the first sample


def test_one_euro_step_response_beta_follows_fast_motion():
    """After a 50 px jump the adaptive filter (beta > 0) gets there much faster than a fixed low cut-off."""
    def settle(params):
        f = OneEuroFilter(params)
        for i in range(10):
            f(np.zeros(2), i / 30)
        outs = [f(np.full(2, 50.0), (10 + i) / 30)[0] for i in range(30)]
        assert all(b >= a for a, b in zip(outs, outs[1:])), "a step response must not overshoot or oscillate"
        assert outs[-1] <= 50.0 + 1e-9
        return next(i for i, v in enumerate(outs) if v >= 45.0) if outs[-1] >= 45 else 99

    fixed = settle(OneEuroParams(min_cutoff=1.0, beta=0.0))
    adaptive = settle(OneEuroParams(min_cutoff=1.0, beta=0.05))
    assert adaptive <= 3, f"One-Euro with beta reached 90 % of the step after {adaptive} frames"
    assert fixed > 2 * adaptive


def test_one_euro_reduces_jitter_on_a_noisy_still_face():
    rng = np.random.default_rng(0)
    face = rng.uniform(60, 200, (68, 2))
    f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.05))
    raw, smooth = [], []
    for i in range(120):
        noisy = face + rng.normal(0, 1.5, face.shape)  # 1.5 px detector jitter
        raw.append(noisy)
        smooth.append(f(noisy, i / 30))
    raw_jitter = np.std(np.diff(raw[30:], axis=0))
    smooth_jitter = np.std(np.diff(smooth[30:], axis=0))
    assert smooth_jitter < 0.35 * raw_jitter
    assert np.abs(np.mean(smooth[30:], axis=0) - face).max() < 1.0  # no bias


def test_one_euro_ignores_repeated_timestamps_and_resets():
    f = OneEuroFilter()
    f(np.zeros(3), 1.0)
    np.testing.assert_array_equal(f(np.ones(3), 1.0), np.zeros(3))
    f.reset()
    np.testing.assert_array_equal(f(np.ones(3), 2.0), np.ones(3))


def test_parse_smoothing():
    assert parse_smoothing("none") is None
    assert parse_smoothing("one-euro") == OneEuroParams()
    assert parse_smoothing("one-euro:0.5,0.1") == OneEuroParams(0.5, 0.1)
    with pytest.raises(InputError, match="one-euro"):
        parse_smoothing("ema:0.5")
    with pytest.raises(InputError):
        parse_smoothing("one-euro:x")
    with pytest.raises(InputError):
        OneEuroParams(min_cutoff=0)


# --- slots and sources ----------------------------------------------------------------------------------------
def test_slot_keeps_only_the_newest_item():
    slot = Slot()
    assert slot.put(1) is False
    assert slot.put(2) is True  # the unread 1 is replaced
    assert len(slot) == 1 and slot.take(0) == 2
    assert slot.take(0.01) is None


def test_video_file_source_plays_at_file_rate_and_skips_when_late(tmp_path):
    from dgkit.io import make_test_video

    path = make_test_video(tmp_path / "clip.mp4", n_frames=20, fps=20)
    src = VideoFileSource(path)
    src.open()
    first = src.read()
    time.sleep(0.3)  # a slow reader: about 6 frames go by meanwhile
    second = src.read()
    n = 2
    while src.read() is not None:
        n += 1
    src.close()
    assert first[0].shape == (256, 256, 3) and first[0].dtype == np.uint8
    assert second[1] - first[1] >= 0.25  # timestamps follow the file's clock
    assert src.skipped >= 3 and n + src.skipped == 20


def test_missing_video_and_camera_give_dgkit_errors(tmp_path):
    with pytest.raises(DgkitError, match="does not exist"):
        VideoFileSource(tmp_path / "nope.mp4").open()
    with pytest.raises(CameraError, match="cannot be opened"):
        CameraSource(97).open()  # no such camera (CI machines have none at all)


def test_push_source_newest_wins():
    src = PushSource()
    src.open()
    src.push(np.zeros((4, 4, 3), np.uint8), 1.0)
    src.push(np.ones((4, 4, 3), np.uint8), 2.0)
    frame, t = src.read()
    assert t == 2.0 and frame.max() == 1 and src.skipped == 1
    src.finish()
    assert src.read() is None


# --- the engine -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_face():
    """The astronaut sample (512x512) and its mediapipe landmarks (68,3) image px."""
    import dgkit

    image = dgkit.sample_image("astronaut")
    return image, dgkit.detect_landmarks(image, backend="mediapipe")


class _FakeBackend(LandmarkBackend):
    """The sample's landmarks shifted by the frame's mean brightness (so frames differ); optional delay."""

    name = "fake-live"

    def __init__(self, landmarks: np.ndarray, delay: float = 0.0):
        self.landmarks, self.delay = landmarks, delay
        self.calls = 0

    @classmethod
    def available(cls):
        return True, "test backend"

    def detect(self, image_rgb):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if image_rgb.mean() < 1:  # a black frame: no face
            return []
        lm = self.landmarks.copy()
        lm[:, 0] += (image_rgb[0, 0, 0] % 10) - 5.0
        return [FaceDetection(lm, np.array([0, 0, 10, 10.0]), 1.0, self.name)]


class _FreshFrames(FrameSource):
    """A 'camera' faster than anything: a new (H,W,3) frame array on every read, ``n`` of them."""

    def __init__(self, image, n):
        super().__init__()
        self.image, self.n, self.i = image, n, 0
        self.name = "fresh frames"

    def open(self):
        super().open()
        self.i = 0

    def read(self):
        if self.i >= self.n:
            return None
        self.i += 1
        frame = self.image.copy()
        frame[0, 0, 0] = self.i % 250
        time.sleep(0.001)
        return frame, time.monotonic()


def _engine(dg, sample_face, frames, delay=0.0, **kw):
    from dgkit.reenact import prepare_face

    image, lm = sample_face
    backend = _FakeBackend(lm, delay)
    kw.setdefault("generator", False)
    kw.setdefault("warp", False)
    return LiveEngine(dg, prepare_face(image, backend=backend), frames, backend=backend, **kw), backend


def test_back_pressure_bounded_memory_and_latency(synthetic_dg, sample_face):
    """A source far faster than processing: frames are dropped, never queued; latency stays near 2 periods."""
    image = sample_face[0]
    eng, backend = _engine(synthetic_dg, sample_face, _FreshFrames(image, 300), delay=0.02)
    eng.warm_up()
    tracemalloc.start()
    try:
        stats = eng.run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.captured == 300
    assert stats.dropped > 100, stats.summary()  # most frames are dropped...
    assert stats.processed + stats.dropped == stats.captured  # ...and every one is accounted for
    assert eng._slot.max_items <= 1
    assert peak < 20 * image.nbytes, f"peak traced memory {peak / 1e6:.1f} MB: frames are piling up"
    # a frame waits at most for the one being processed: latency <= 2 processing periods (+ scheduling slack)
    period = max(eng._proc_s)
    latencies = list(eng._latency)
    assert max(latencies) <= 2 * period + 0.1, (max(latencies), period)
    assert np.mean(latencies[-10:]) <= 2 * period + 0.1  # no growing lag at the end


def test_dropped_frames_with_a_video_played_like_a_camera(synthetic_dg, sample_face, tmp_path):
    from dgkit.io import make_test_video

    path = make_test_video(tmp_path / "clip.mp4", sample_face[0], n_frames=30, fps=30, size=(256, 256))
    eng, _ = _engine(synthetic_dg, sample_face, VideoFileSource(path), delay=0.08)  # ~10 frames/s < 30
    stats = eng.run()
    assert stats.captured == 30
    assert stats.dropped > 0 and stats.processed + stats.dropped == 30
    assert stats.fps["sketch"] > 0 and stats.latency_p95_s >= stats.latency_mean_s > 0


def test_no_face_frames_are_counted_and_shown(synthetic_dg, sample_face):
    black = np.zeros_like(sample_face[0])
    frames = [sample_face[0], black, sample_face[0]]
    eng, _ = _engine(synthetic_dg, sample_face, ArraySource(frames, fps=4))  # slow enough: nothing dropped
    stats = eng.run()
    assert (stats.processed, stats.no_face, stats.dropped) == (3, 1, 0)
    assert eng.latest().face_found and eng.latest().sketch.shape == (256, 256)
    assert eng.latest().weights is synthetic_dg.weights and not eng.latest().weights.trained  # which weights


def test_stop_and_restart(synthetic_dg, sample_face):
    frames = ArraySource([sample_face[0]], fps=20, loop=10_000)
    eng, _ = _engine(synthetic_dg, sample_face, frames)
    eng.start()
    deadline = time.monotonic() + 60
    while eng.stats().processed < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    first = eng.stop()
    assert not eng.running and first.processed >= 3
    with pytest.raises(InputError):
        eng.start(max_frames=0)
    eng.start(max_frames=4)
    assert eng.wait(60)
    second = eng.stop()
    assert second.processed == 4  # counters start again from zero
    assert not any(t.name.startswith("dgkit-live") for t in threading.enumerate() if t.is_alive())
    with eng:  # leaving the block closes the engine, stopping it when it runs
        eng.start()
        assert eng.running
    assert not eng.running
    assert not any(t.name.startswith("dgkit-live") for t in threading.enumerate() if t.is_alive())


def test_counters_show_a_dash_until_a_rate_is_known(synthetic_dg, sample_face):
    from dgkit.live.desktop import counters_text

    eng, _ = _engine(synthetic_dg, sample_face, ArraySource([sample_face[0]], fps=20, loop=4))
    before = counters_text(eng)
    assert "fps camera -  sketch -  DG -  warp -" in before and "latency sketch - ms, DG - ms" in before
    eng.run()
    after = counters_text(eng)  # 4 frames processed: the sketch has a rate; DG (off) still has none
    sketch = float(after.split("sketch ")[1].split()[0])
    assert sketch > 0 and "DG -  warp -" in after


@pytest.mark.slow
def test_generator_and_warp_run_behind_and_record(synthetic_dg, sample_face, tmp_path):
    """Full engine on the synthetic weights: DG faces (UNTRAINED banner), warp panels, a playable recording."""
    import dgkit

    frames = ArraySource([sample_face[0]], fps=10, loop=6)
    eng, _ = _engine(synthetic_dg, sample_face, frames, generator=True, warp=True)
    stats = eng.run(record=tmp_path / "session.mp4")
    # on a quiet machine all 6 are processed; a loaded one drops some (a camera's pace): every frame is accounted
    assert stats.processed + stats.dropped == 6 and stats.processed >= 1 and eng.recorded_frames == stats.processed
    assert stats.dg_frames >= 1 and stats.warp_frames >= 1
    assert not eng.weights.trained
    latest = eng.latest()
    assert latest.dg_image.shape == (256, 256, 3) and 0 <= latest.dg_index <= latest.index
    assert (latest.dg_image[3, 100] == viz.UNTRAINED_RGB).all()  # the red UNTRAINED banner is burnt in
    info = dgkit.video_info(tmp_path / "session.mp4")
    assert info.frame_count == stats.processed and (info.width, info.height) == (1024, 278)


def test_lost_camera_raises_and_leaves_a_playable_recording(synthetic_dg, sample_face, tmp_path):
    import dgkit

    frames = ArraySource([sample_face[0]], fps=30, loop=100, fail_after=5)
    eng, _ = _engine(synthetic_dg, sample_face, frames, delay=0.0)
    with pytest.raises(CameraError, match="stopped delivering"):
        eng.run(record=tmp_path / "lost.mp4")
    assert not eng.running and not eng.recording
    assert dgkit.video_info(tmp_path / "lost.mp4").frame_count == eng.recorded_frames >= 1


def test_compose_panels_placeholders():
    out = compose_panels(None, status="hello")
    assert out.shape == (256 + 22 + 22, 4 * 256, 3) and out.dtype == np.uint8


def test_closing_a_video_source_while_another_thread_reads_it(tmp_path):
    """stop() closes the source from another thread: reads in flight finish, later reads return None."""
    from dgkit.io import make_test_video

    src = VideoFileSource(make_test_video(tmp_path / "clip.mp4", n_frames=200, fps=30), realtime=False)
    src.open()
    results = []

    def reader():
        while (item := src.read()) is not None:
            results.append(item[0].shape)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.2)
    src.close()
    thread.join(10)
    assert not thread.is_alive() and src.read() is None


def test_recorder_drops_frames_written_after_close_and_refuses_an_existing_file(tmp_path):
    """The shape thread can hold the recorder for one frame after stop_recording(): that write is dropped, the
    file stays complete; an existing recording is refused at once unless overwrite=True."""
    import dgkit
    from dgkit.errors import OutputExistsError
    from dgkit.live.engine import _Recorder

    path = tmp_path / "rec.mp4"
    rec = _Recorder(path, 10)
    frame = np.zeros((64, 96, 3), np.uint8)
    for _ in range(3):
        rec.write(frame)
    rec.close()
    rec.write(frame)  # late frame from the engine thread: no error, not written
    assert rec.frames == 3 and dgkit.video_info(path).frame_count == 3
    with pytest.raises(OutputExistsError, match="exists already"):
        _Recorder(path, 10)
    again = _Recorder(path, 10, overwrite=True)
    again.write(frame)
    again.close()
    assert dgkit.video_info(path).frame_count == 1


def test_warp_follows_the_generator_or_the_camera(synthetic_dg, sample_face):
    """warp_rate="dg": the warp baseline is made from the frames the generator took (never more often)."""
    with pytest.raises(InputError):
        _engine(synthetic_dg, sample_face, ArraySource([sample_face[0]]), warp_rate="often")
    taken: list[int] = []
    eng, _ = _engine(synthetic_dg, sample_face, ArraySource([sample_face[0]], fps=10, loop=4), generator=True,
                     warp=True)
    generate = eng._gen.fn
    eng._gen.fn = lambda item: (taken.append(item[0]), generate(item))[1]
    stats = eng.run()
    assert stats.warp_frames >= 1 and stats.warp_frames <= len(taken) <= stats.processed
    assert eng.latest().warp_index in taken
    cam, _ = _engine(synthetic_dg, sample_face, ArraySource([sample_face[0]], fps=10, loop=4), generator=True,
                     warp=True, warp_rate="camera")
    assert cam.run().warp_frames >= 1
