"""Inputs that used to hang or end in a raw traceback: FIFOs, sockets, truncated videos, devices; audio kept."""

from __future__ import annotations

import os
import socket
import threading
import warnings

import numpy as np
import pytest
import torch

from dgkit.device import resolve_device
from dgkit.errors import CheckpointError, DeviceError, ImageReadError, VideoError
from dgkit.io import check_input_file, iter_video_frames, make_test_video, read_image, sample_image, video_info

av = pytest.importorskip("av")


def _clip_with_audio(path, n_frames=30, fps=10, size=64, audio_seconds=None, rate=16000):
    """A real .mp4 with an MPEG-4 video track and an AAC sine tone, written with PyAV."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width = v.height = size
        v.pix_fmt = "yuv420p"
        a = c.add_stream("aac", rate=rate, layout="mono")
        face = np.asarray(sample_image())
        face = face[::max(1, face.shape[0] // size)][:size, ::max(1, face.shape[1] // size)][:, :size]
        for i in range(n_frames):
            img = np.ascontiguousarray(np.roll(face, i, axis=1))
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        t = np.arange(int(rate * (audio_seconds or n_frames / fps))) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for k in range(0, len(tone), 1024):
            f = av.AudioFrame.from_ndarray(tone[None, k:k + 1024], format="flt", layout="mono")
            f.sample_rate = rate
            for p in a.encode(f):
                c.mux(p)
        for p in (*v.encode(None), *a.encode(None)):
            c.mux(p)
    return path


def _audio_seconds(path) -> float | None:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        s = c.streams.audio[0]
        last = max(float((p.pts + p.duration) * s.time_base) for p in c.demux(s) if p.pts is not None)
        return last - float((s.start_time or 0) * s.time_base)


# --- special files ------------------------------------------------------------------------------------------
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    return path


def _in_thread(fn):
    """Run fn in a thread; fail (instead of hanging the test run) if it blocks."""
    box = {}

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            box["exc"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "blocked on a special file"
    return box.get("exc")


def test_fifo_images_and_videos_are_refused_before_opening(fifo, tmp_path):
    from dgkit.checkpoint import load_checkpoint

    assert isinstance(_in_thread(lambda: read_image(fifo)), ImageReadError)
    assert "FIFO" in str(_in_thread(lambda: read_image(fifo)))
    assert isinstance(_in_thread(lambda: video_info(fifo)), VideoError)
    assert isinstance(_in_thread(lambda: iter_video_frames(fifo)), VideoError)
    assert isinstance(_in_thread(lambda: load_checkpoint(fifo, "rfg")), CheckpointError)


def test_sockets_and_devices_are_refused(tmp_path):
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(ImageReadError, match="a socket"):
            read_image(path)
    with pytest.raises(VideoError, match="character device"):
        check_input_file("/dev/zero", "video", VideoError)


# --- truncated video ------------------------------------------------------------------------------------------
def test_truncated_video_is_reported_as_announced_vs_decoded(tmp_path):
    from dgkit.reenact import reenact_video

    full = make_test_video(tmp_path / "full.avi", n_frames=20)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])  # a real truncated file
    assert video_info(cut).frame_count == 20  # what the container announces
    with pytest.warns(UserWarning, match="announces 20 frames but only"):
        report = reenact_video(sample_image(), cut, tmp_path / "out.mp4", progress=False)
    assert report.frames_announced == 20 and 0 < report.frames_in < 20
    assert any("truncated" in n for n in report.notes)


def test_complete_video_gives_no_truncation_warning(tmp_path):
    from dgkit.reenact import reenact_video

    clip = make_test_video(tmp_path / "full.mp4", n_frames=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = reenact_video(sample_image(), clip, tmp_path / "out.mp4", progress=False, audio=False)
    assert report.frames_announced == report.frames_in == 5


def test_no_ffmpeg_noise_on_stderr_for_a_broken_video(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    full = make_test_video(tmp_path / "full.mp4", n_frames=4)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(full.read_bytes()[:44])  # no moov atom
    repo = Path(__file__).resolve().parents[1]
    code = ("from dgkit.io import video_info\nfrom dgkit.errors import VideoError\n"
            f"try:\n    video_info({str(broken)!r})\nexcept VideoError as e:\n    print('refused')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(repo)})
    assert run.stdout.strip() == "refused"
    assert "moov" not in run.stderr and run.stderr.strip() == ""


def test_huge_png_is_called_too_large_not_truncated(tmp_path):
    import zlib

    def chunk(tag, data):
        return len(data).to_bytes(4, "big") + tag + data + zlib.crc32(tag + data).to_bytes(4, "big")

    w = h = 30000  # 900 megapixels: above Pillow's hard limit
    header = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
                     + chunk(b"IEND", b""))
    with pytest.raises(ImageReadError, match="too large") as info:
        read_image(path)
    assert "truncated" not in str(info.value)


def test_large_but_allowed_image_reads_without_a_decompression_bomb_warning(tmp_path):
    from PIL import Image

    path = tmp_path / "big.png"
    Image.new("L", (9500, 9500)).save(path)  # 90 megapixels: Pillow warns above 89
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).shape == (9500, 9500, 3)


# --- audio ----------------------------------------------------------------------------------------------------
def test_reenacted_video_keeps_the_driving_audio_cut_to_the_frames(tmp_path):
    from dgkit.reenact import reenact_video

    clip = _clip_with_audio(tmp_path / "talk.mp4", n_frames=30, fps=10)
    assert _audio_seconds(clip) == pytest.approx(3.0, abs=0.15)
    report = reenact_video(sample_image(), clip, tmp_path / "out.mp4", progress=False, max_frames=12)
    assert report.audio and report.frames_out == 12
    assert _audio_seconds(tmp_path / "out.mp4") == pytest.approx(1.2, abs=0.1)  # cut to 12 frames at 10 fps
    assert video_info(tmp_path / "out.mp4").frame_count == 12
    silent = reenact_video(sample_image(), clip, tmp_path / "silent.avi", progress=False, max_frames=5, audio=False)
    assert not silent.audio and _audio_seconds(tmp_path / "silent.avi") is None
    plain = reenact_video(sample_image(), make_test_video(tmp_path / "mute.mp4", n_frames=4),
                          tmp_path / "out2.mp4", progress=False)
    assert not plain.audio and _audio_seconds(tmp_path / "out2.mp4") is None
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# --- devices --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["foo", "cuda:x", "mps", "cuda", "cuda:7"])
def test_unavailable_or_unknown_devices_are_dgkit_errors(name):
    if name.startswith("cuda") and torch.cuda.is_available() and name != "cuda:7":
        pytest.skip("this machine has CUDA")
    if name == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(DeviceError, match=r"(?i)one of: auto, cpu"):
        resolve_device(name)


def test_resolve_device_accepts_what_exists():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_load_dg_on_missing_cuda_is_a_device_error(synthetic_weights):
    from dgkit.pipeline import load_dg

    with pytest.raises(DeviceError, match="cuda"):
        load_dg(synthetic_weights, device="cuda")


# --- FAN weights and degenerate landmarks ---------------------------------------------------------------------
def test_fan_old_style_file_with_numpy_scalars_loads_but_code_never_runs(tmp_path):
    from dgkit.errors import UnsafeCheckpointError
    from dgkit.landmarks.fan_backend import load_checkpoint

    torch.save({"state_dict": {"w": torch.ones(2)}, "best": np.float64(0.5)}, tmp_path / "old-np.pth")
    loaded = load_checkpoint(tmp_path / "old-np.pth")
    assert float(loaded["best"]) == 0.5 and torch.equal(loaded["state_dict"]["w"], torch.ones(2))
    torch.save({"state_dict": {}, "hook": os.system}, tmp_path / "evil-0123456789.pth")
    with pytest.raises(UnsafeCheckpointError, match="refused and not loaded"):
        load_checkpoint(tmp_path / "evil-0123456789.pth")


def test_auto_falls_back_to_mediapipe_when_fan_files_are_refused(tmp_path, monkeypatch):
    pytest.importorskip("mediapipe")
    from dgkit.landmarks import clear_backend_cache, resolve_backend
    from dgkit.landmarks import fan_backend as fb

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    folder = fb.default_weights_dir()
    folder.mkdir(parents=True)
    for name in fb.FanBackend.required_files:
        torch.save({"state_dict": {}, "hook": os.system}, folder / name)
    clear_backend_cache()
    try:
        ok, reason = fb.FanBackend.available()
        assert not ok and "refused" in reason
        assert resolve_backend("auto").name == "mediapipe"
    finally:
        clear_backend_cache()


@pytest.mark.parametrize("kind", ["collinear", "tiny", "huge"])
def test_align_face_rejects_degenerate_landmarks(kind):
    from dgkit.align import align_face
    from dgkit.errors import LandmarkError
    from dgkit.geometry import mean_face_3d

    lm = mean_face_3d()[:, :2] * 0.6 + 128
    if kind == "collinear":
        lm = np.column_stack([np.linspace(10, 200, 68), np.linspace(20, 60, 68)])  # all on one line
    elif kind == "tiny":
        lm = (lm - 128) * 1e-4 + 128  # normalised-looking coordinates, eyes far below a pixel apart
    else:
        lm = lm * 1e5
    with pytest.raises(LandmarkError, match="one line|would scale the face"):
        align_face(np.zeros((256, 256, 3), np.uint8), lm)


def test_audio_that_cannot_be_copied_keeps_the_frames_and_says_so(tmp_path, monkeypatch):
    import dgkit.io
    from dgkit.reenact import reenact_video

    def broken(*args, **kwargs):
        raise VideoError("could not add the audio of x.mp4 to the output video (codec).")

    monkeypatch.setattr(dgkit.io, "mux_audio", broken)
    clip = _clip_with_audio(tmp_path / "talk.mp4", n_frames=6, fps=10)
    with pytest.warns(UserWarning, match="written without sound"):
        report = reenact_video(sample_image(), clip, tmp_path / "out.mp4", progress=False)
    assert not report.audio and video_info(tmp_path / "out.mp4").frame_count == 6
