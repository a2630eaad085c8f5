"""Outputs are all-or-nothing: interrupted, concurrent and repeated writes never lose or corrupt a result.

These tests use real child processes and real signals (SIGINT, SIGTERM, SIGKILL), and two real processes
writing the same file at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from dgkit.errors import InputError, OutputError, OutputExistsError
from dgkit.io import (
    VideoWriter,
    atomic_output,
    clean_stale_temporaries,
    make_test_video,
    sample_image,
    video_info,
    write_image,
)

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _decodable_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("the child process did not reach the expected point in time")


# --- the mechanism, in process --------------------------------------------------------------------------------
def test_atomic_output_failure_keeps_previous_file_and_leaves_nothing(tmp_path):
    out = tmp_path / "table.csv"
    out.write_text("old result\n")
    with pytest.raises(RuntimeError):
        with atomic_output(out, overwrite=True) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".table.csv.") and tmp.suffix == ".csv"
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert out.read_text() == "old result\n"
    assert _leftovers(tmp_path) == []
    with atomic_output(out, overwrite=True) as tmp:
        tmp.write_text("new result\n")
        assert out.read_text() == "old result\n"  # not visible before the block ends
    assert out.read_text() == "new result\n" and _leftovers(tmp_path) == []


def test_existing_outputs_are_refused_unless_overwrite(tmp_path):
    img = sample_image()[:64, :64]
    out = write_image(tmp_path / "a.png", img)
    before = out.read_bytes()
    with pytest.raises(OutputExistsError, match=r"a\.png.*overwrite=True.*--force"):
        write_image(out, img[::-1])
    assert out.read_bytes() == before
    write_image(out, img[::-1], overwrite=True)
    assert out.read_bytes() != before
    video = make_test_video(tmp_path / "v.mp4", img, n_frames=3)
    with pytest.raises(OutputExistsError):
        VideoWriter(video, fps=5, size=(64, 64))
    with pytest.raises(OutputExistsError):
        make_test_video(video, img, n_frames=5)
    assert video_info(video).frame_count == 3
    make_test_video(video, img, n_frames=5, overwrite=True)
    assert video_info(video).frame_count == 5


def test_video_writer_left_by_an_exception_is_discarded(tmp_path):
    video = make_test_video(tmp_path / "v.mp4", sample_image()[:64, :64], n_frames=4)
    before = video.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(video, fps=5, size=(64, 64), overwrite=True) as w:
            w.write(np.zeros((64, 64, 3), np.uint8))
            raise KeyboardInterrupt
    assert video.read_bytes() == before and _leftovers(tmp_path) == []


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(child.stdout)
    stale = tmp_path / f".out.mp4.{dead}.0123abcd.tmp.mp4"
    alive = tmp_path / f".out.mp4.{os.getpid()}.0123abcd.tmp.mp4"
    other = tmp_path / ".notes.txt"
    for p in (stale, alive, other):
        p.write_bytes(b"x")
    assert clean_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and other.exists()


def test_output_folder_errors_are_dgkit_errors(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="a file with that name exists"):
        write_image(blocker / "out.png", sample_image()[:8, :8])

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", denied)  # root ignores chmod, so the refusal is simulated
    with pytest.raises(OutputError, match="permission denied: cannot create the folder"):
        write_image(tmp_path / "locked" / "sub" / "out.png", sample_image()[:8, :8])
    with pytest.raises(OutputError, match="permission denied"):
        VideoWriter(tmp_path / "locked" / "out.mp4", fps=5, size=(8, 8))


def test_inputs_stay_protected_even_with_overwrite(tmp_path):
    src = write_image(tmp_path / "in.png", sample_image()[:8, :8])
    with pytest.raises(InputError, match="one of the inputs"):
        write_image(src, sample_image()[:8, :8], protect=[src], overwrite=True)


# --- real processes -------------------------------------------------------------------------------------------
_SLOW_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from dgkit.errors import OutputBusyError
    from dgkit.io import VideoWriter
    out, n, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    try:
        with VideoWriter(out, fps=10, size=(32, 32), overwrite=True) as w:
            print("started", flush=True)
            for i in range(n):
                w.write(np.full((32, 32, 3), i % 255, np.uint8))
                time.sleep(delay)
    except OutputBusyError as exc:
        print(exc, file=sys.stderr)
        sys.exit(3)
""")


def test_two_processes_writing_one_output_second_fails_first_is_complete(tmp_path):
    out = tmp_path / "same.mp4"
    first = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(out), "40", "0.05"], env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "started"
        second = subprocess.run([sys.executable, "-c", _SLOW_WRITER, str(out), "5", "0"], env=_env(),
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 3, second.stderr
        assert "being written by another process" in second.stderr
    finally:
        first.wait(timeout=120)
    assert first.returncode == 0
    assert _decodable_frames(out) == 40 and video_info(out).frame_count == 40
    assert _leftovers(tmp_path) == []


def test_sigkill_leaves_the_previous_output_and_the_next_run_cleans_up(tmp_path):
    out = make_test_video(tmp_path / "keep.mp4", sample_image()[:32, :32], n_frames=12)
    before = out.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(out), "1000", "0.01"], env=_env(),
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    _wait_for(lambda: any(p.name.endswith(".tmp.mp4") and p.stat().st_size > 0 for p in tmp_path.iterdir()))
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert out.read_bytes() == before  # the previous result is intact
    assert any(name.endswith(".tmp.mp4") for name in _leftovers(tmp_path))  # the killed writer's temporary
    make_test_video(out, sample_image()[:32, :32], n_frames=3, overwrite=True)
    assert _leftovers(tmp_path) == [] and video_info(out).frame_count == 3


def _driving_clip(path: Path, n_frames: int) -> Path:
    """A long, small clip without a face: the baseline-only CLI then writes the source crop per frame."""
    with VideoWriter(path, fps=25, size=(64, 64)) as w:
        for i in range(n_frames):
            w.write(np.full((64, 64, 3), (i * 3) % 255, np.uint8))
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "status", "word"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_cli_interrupted_by_a_signal_keeps_the_previous_video(tmp_path, sig, status, word):
    src = write_image(tmp_path / "src.png", sample_image())
    drive = _driving_clip(tmp_path / "drive.mp4", 3000)
    out = make_test_video(tmp_path / "out.mp4", sample_image()[:64, :64], n_frames=20)  # a good earlier result
    before = out.read_bytes()
    child = subprocess.Popen(
        [sys.executable, "-m", "dgkit", "reenact", str(src), str(drive), "-o", str(out), "--baseline-only",
         "--no-progress", "--force"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: child.poll() is not None or any(
            p.name.endswith(".tmp.mp4") and p.stat().st_size > 0 for p in tmp_path.iterdir()))
        child.send_signal(sig)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == status, err
    assert word in err and "Traceback" not in err
    assert out.read_bytes() == before and _decodable_frames(out) == 20
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_cli_refuses_to_overwrite_without_force(tmp_path):
    src = write_image(tmp_path / "src.png", sample_image()[:64, :64])
    out = write_image(tmp_path / "out.png", sample_image()[:32, :32])
    before = out.read_bytes()
    run = subprocess.run([sys.executable, "-m", "dgkit", "reenact", str(src), str(src), "-o", str(out),
                          "--baseline-only"], env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert f"{out} exists already; add --force" in run.stderr and "Traceback" not in run.stderr
    assert out.read_bytes() == before


def test_ctrl_c_while_importing_is_a_clean_exit_130(tmp_path):
    """SIGINT arrives while the CLI imports its (heavy) command modules."""
    marker = tmp_path / "importing"
    (tmp_path / "slow_module.py").write_text(
        f"import pathlib, time\npathlib.Path({str(marker)!r}).write_text('x')\ntime.sleep(60)\n")
    script = ("import sys, dgkit.cli as cli; cli._COMMANDS.insert(0, ('slow_module', 'register_cli')); "
              "sys.exit(cli.main(['weights', 'status']))")
    env = _env()
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env["PYTHONPATH"]
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker.exists)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130
    assert err.strip().splitlines() == ["dgkit: interrupted (Ctrl-C); unfinished outputs were removed"]
