"""The notebook live app in a real browser: JupyterLab + headless Chromium with a fake camera.

Chromium's ``--use-fake-device-for-media-stream --use-file-for-fake-video-capture=FILE.y4m`` plays a clip
(made here from the sample face, moving and turning) as the camera; ``--use-fake-ui-for-media-stream``
accepts the permission prompt. Checks: frames reach the kernel, the sketch and DG images in the page change
over time, the counters show non-zero frames/s and a latency; and with the permission denied the app shows
the message. Screenshots: ``artifacts/browser/live_*.png``. Needs what tests/test_browser.py needs
(scripts/install_browser.sh); skipped with the reason otherwise.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from _browser import ARTIFACTS, JS_IMAGE_HASH, notebook_page, running_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# software WebGL (SwiftShader) so that plotly's 3D plot draws in headless Chromium without a GPU
WEBGL_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]

LIVE_CELLS = ["""import dgkit
from dgkit.widgets import LiveApp
dg = dgkit.load_dg(allow_synthetic=True)
app = LiveApp(dg, "astronaut", backend="mediapipe", record_dir="recordings")
app"""]
DENIED_CELLS = ["""import dgkit
from dgkit.widgets import LiveApp
app = LiveApp(dgkit.load_dg(allow_synthetic=True), "astronaut", backend="mediapipe", warm_up=False)
app"""]


def write_y4m(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Frames (H,W,3) uint8 RGB, even sizes, as an uncompressed YUV4MPEG2 (4:2:0) clip."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())  # Y plane, then U, then V
    return path


def face_clip(n: int = 45) -> list[np.ndarray]:
    """The sample face on a 320x240 frame, drifting, tilting and turning (a horizontal squeeze) and back."""
    import dgkit

    face = cv2.resize(dgkit.sample_image("astronaut")[30:430, 70:470], (200, 200), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        phase = np.sin(2 * np.pi * i / n)
        turn = 1.0 - 0.3 * abs(phase)  # the face narrows as if it turned
        src = np.float32([[0, 0], [200, 0], [0, 200]])
        cx, cy = 160 + 30 * phase, 120
        dst = np.float32([[cx - 100 * turn, cy - 100], [cx + 100 * turn, cy - 100 + 20 * phase], [cx - 100 * turn, cy + 100]])
        frames.append(cv2.warpAffine(face, cv2.getAffineTransform(src, dst), (320, 240), borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=(90, 110, 130)))
    return frames


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest):
    with running_lab(tmp_path, request, {"live.ipynb": LIVE_CELLS, "live_denied.ipynb": DENIED_CELLS}) as server:
        yield server


def _hash(page, cls: str) -> str:
    img = page.locator(f"img.{cls}").first
    return img.evaluate("(img) => img.src ? null : ''") if not img.get_attribute("src") else img.evaluate(JS_IMAGE_HASH)


def _wait_for(read, ok, timeout: float):
    deadline = time.monotonic() + timeout
    value = read()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


def test_live_app_with_a_fake_camera(lab, tmp_path: Path):
    from playwright.sync_api import expect

    clip = write_y4m(tmp_path / "face.y4m", face_clip(), fps=15)
    with notebook_page(lab, "live.ipynb", *WEBGL_ARGS, "--use-fake-ui-for-media-stream",
                       "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}") as page:
        start = page.locator("button.dgkit-live-start")
        expect(start).to_be_visible(timeout=120_000)
        start.click()
        counters = page.locator(".dgkit-live-counters")
        # frames reach the kernel (it reports how many it received) and panels come back
        received = _wait_for(lambda: int(counters.get_attribute("data-received") or 0), lambda v: v >= 3, 60)
        assert received >= 3, f"the kernel received {received} camera frames"
        sketch1 = _wait_for(lambda: _hash(page, "dgkit-live-sketch"), bool, 30)
        dg1 = _wait_for(lambda: _hash(page, "dgkit-live-dg"), bool, 90)
        assert sketch1 and dg1, "no sketch or DG image arrived in the page"
        page.screenshot(path=str(ARTIFACTS / "live_running.png"), full_page=True)
        sketch2 = _wait_for(lambda: _hash(page, "dgkit-live-sketch"), lambda v: v != sketch1, 30)
        dg2 = _wait_for(lambda: _hash(page, "dgkit-live-dg"), lambda v: v != dg1, 90)
        page.screenshot(path=str(ARTIFACTS / "live_running_later.png"), full_page=True)
        assert sketch2 != sketch1, "the sketch image did not change while the face moved"
        assert dg2 != dg1, "the DG image did not change over time"
        fps = {k: float(counters.get_attribute(f"data-{k}-fps") or 0) for k in ("camera", "sketch", "dg")}
        assert fps["camera"] > 0 and fps["sketch"] > 0, fps
        assert "camera\u2192screen" in counters.inner_text() and " ms" in counters.inner_text()
        page.locator("button.dgkit-live-stop").click()
        expect(page.locator(".dgkit-live-message")).to_contain_text("stopped", timeout=60_000)
        assert page.locator(".dgkit-live-error").inner_text().strip() == ""


def test_live_app_camera_permission_denied(lab):
    from playwright.sync_api import expect

    with notebook_page(lab, "live_denied.ipynb", *WEBGL_ARGS, "--use-fake-device-for-media-stream",
                       "--deny-permission-prompts") as page:
        start = page.locator("button.dgkit-live-start")
        expect(start).to_be_visible(timeout=120_000)
        start.click()
        expect(page.locator(".dgkit-live-error")).to_contain_text("permission was denied", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "live_denied.png"), full_page=True)
        assert "Traceback" not in page.locator(".jp-OutputArea").first.inner_text()
