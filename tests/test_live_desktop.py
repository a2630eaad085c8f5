"""``dgkit live`` on the desktop: --no-window --record, camera errors (exit 1, playable recording), and the
OpenCV window under Xvfb (a screenshot of the window; keys s, r, q). Xvfb tests skip when Xvfb is absent
(``scripts/install_xvfb.sh`` installs it). Screenshots go to ``artifacts/live/``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import dgkit
from dgkit.cli import main
from dgkit.io import make_test_video

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "live"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 300-frame (20 s), 15 fps clip of the astronaut gently turning (256x256)."""
    face = dgkit.sample_image("astronaut")[40:420, 80:460]
    return make_test_video(tmp_path_factory.mktemp("live") / "clip.mp4", face, n_frames=300, fps=15, size=(256, 256))


@pytest.mark.slow
def test_no_window_record_has_the_processed_frames(clip, tmp_path, synthetic_weights_env, capsys):
    out = tmp_path / "session.mp4"
    rc = main(["live", "astronaut", "--video", str(clip), "--no-window", "--record", str(out), "--max-frames", "5",
               "--backend", "mediapipe", "--synthetic", "--smoothing", "one-euro:1.0,0.05"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "5 processed" in text and "dropped" in text and "p95" in text and "detect" in text
    assert "NOT a real result" in text  # synthetic weights are announced
    info = dgkit.video_info(out)
    assert info.frame_count == 5 and (info.width, info.height) == (1024, 278)

    # retyping the command never loses the recording: refused without --force, replaced with it
    before = out.read_bytes()
    args = ["live", "astronaut", "--video", str(clip), "--no-window", "--record", str(out), "--max-frames", "3",
            "--backend", "mediapipe", "--synthetic", "--no-generator"]
    assert main(args) == 1
    assert "exists already" in capsys.readouterr().err and out.read_bytes() == before
    assert main([*args, "--force"]) == 0
    assert dgkit.video_info(out).frame_count == 3


def test_camera_that_cannot_open_exits_1(synthetic_weights_env, capsys, tmp_path):
    rc = main(["live", "astronaut", "--camera", "97", "--no-window", "--synthetic", "--no-generator",
               "--backend", "mediapipe", "--record", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert rc == 1 and "camera 97 cannot be opened" in err and "Traceback" not in err


def test_camera_lost_exits_1_with_a_playable_recording(synthetic_weights_env, capsys, tmp_path, monkeypatch):
    from dgkit.live import ArraySource, desktop

    frames = ArraySource([dgkit.sample_image("astronaut")], fps=15, loop=1000, fail_after=4)
    monkeypatch.setattr(desktop, "_frame_source", lambda args: frames)
    out = tmp_path / "lost.mp4"
    rc = main(["live", "astronaut", "--no-window", "--synthetic", "--no-generator", "--backend", "mediapipe",
               "--record", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "stopped delivering frames" in err
    assert 1 <= dgkit.video_info(out).frame_count <= 4


def test_bad_arguments(synthetic_weights_env, capsys, tmp_path):
    assert main(["live", "astronaut", "--video", str(tmp_path / "none.mp4"), "--no-window", "--synthetic"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["live", "astronaut", "--smoothing", "ema", "--no-window", "--synthetic"]) == 1
    assert "one-euro" in capsys.readouterr().err


# --- the window under Xvfb ------------------------------------------------------------------------------------
def read_xwd(data: bytes) -> np.ndarray:
    """An X window dump (``xwd``, ZPixmap, 24 or 32 bits per pixel, TrueColor) as RGB uint8 (H,W,3)."""
    header = np.frombuffer(data[:100], ">u4")
    header_size, width, height = int(header[0]), int(header[4]), int(header[5])
    byte_order, bpp, bytes_per_line, ncolors = int(header[7]), int(header[11]), int(header[12]), int(header[19])
    assert bpp in (24, 32), f"xwd with {bpp} bits per pixel is not handled"
    n = bpp // 8
    start = header_size + 12 * ncolors
    rows = np.frombuffer(data[start:start + height * bytes_per_line], np.uint8).reshape(height, bytes_per_line)
    px = rows[:, :n * width].reshape(height, width, n)
    return px[..., [2, 1, 0]] if byte_order == 0 else px[..., [n - 3, n - 2, n - 1]]  # LSB first: B, G, R


@pytest.fixture(scope="module")
def xvfb():
    """A virtual X display (Xvfb) for the OpenCV window; yields its DISPLAY name."""
    if not shutil.which("Xvfb") or not shutil.which("xwd"):
        pytest.skip("Xvfb or xwd is not installed (run scripts/install_xvfb.sh: Debian's xvfb and x11-apps)")
    display = f":{90 + os.getpid() % 100}"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not Path(f"/tmp/.X11-unix/X{display[1:]}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc.poll() is not None:
        pytest.skip(f"Xvfb {display} did not start")
    yield display
    proc.terminate()
    proc.wait(10)


def _screenshot(display: str) -> np.ndarray:
    data = subprocess.run(["xwd", "-root", "-silent", "-display", display], capture_output=True, check=True).stdout
    return read_xwd(data)


@pytest.mark.slow
def test_window_under_xvfb_shows_the_panels(xvfb, clip, synthetic_weights_env):
    from dgkit.io import write_image

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DISPLAY": xvfb, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "xcb"}
    proc = subprocess.Popen([sys.executable, "-m", "dgkit", "live", "astronaut", "--video", str(clip),
                             "--backend", "mediapipe", "--synthetic", "--max-frames", "90"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    best, shot = 0, None  # the last screenshot showing the window (the root window is black, the panels not)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(1.0)
            image = _screenshot(xvfb)
            lit = int((image.max(axis=2) > 40).sum())
            if lit > 1024 * 278 * 0.5:
                best, shot = lit, image
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert shot is not None
    write_image(ARTIFACTS / "desktop_window.png", shot, overwrite=True)  # the newest screenshot to look at
    assert best > 1024 * 278 * 0.5, f"the window was not seen on the display ({best} lit pixels)\n{out}"
    # a DG face arrived (90 frames = 6 s at the clip's 15 frames/s: several generator times even on a busy
    # machine): the third panel (x 512..768) carries the red UNTRAINED banner
    dg_tile = shot[:, 512:768]
    red = (dg_tile[..., 0] > 150) & (dg_tile[..., 1] < 60) & (dg_tile[..., 2] < 60)
    assert red.sum() > 2000, "no DG face with its red UNTRAINED banner in the window"


def test_window_keys_snapshot_record_quit(xvfb, synthetic_dg, tmp_path, monkeypatch):
    from dgkit.live import ArraySource, LiveEngine
    from dgkit.live.desktop import run_window

    monkeypatch.setenv("DISPLAY", xvfb)
    frames = ArraySource([dgkit.sample_image("astronaut")], fps=15, loop=10_000)
    engine = LiveEngine(synthetic_dg, dgkit.sample_image("astronaut"), frames, backend="mediapipe",
                        generator=False, warp=False)
    # key, processed frames since the previous key (counted from it, so a slow refresh on a loaded machine
    # cannot press start and stop of the recording with no frame in between)
    steps = [("s", 1), ("r", 1), ("r", 2), ("q", 1)]
    state = {"at": 0}

    def press(eng):
        done = eng.stats().processed
        if steps and done - state["at"] >= steps[0][1]:
            state["at"] = done
            return ord(steps.pop(0)[0])
        return None

    stats = run_window(engine, snapshot_dir=tmp_path, press=press)
    assert not engine.running and stats.processed >= 1
    assert len(list(tmp_path.glob("dgkit-live-snapshot-*.png"))) == 1
    (video,) = tmp_path.glob("dgkit-live-*.mp4")
    assert dgkit.video_info(video).frame_count >= 1
