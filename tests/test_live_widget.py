"""The notebook live app without a browser: frames arrive as the page sends them (JPEG messages), the kernel
acknowledges each frame it takes, sends the panels back, records, and shows camera problems inline."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

import dgkit


def _wait(cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)
    return cond()


@pytest.fixture
def app(synthetic_dg, tmp_path):
    from dgkit.widgets import LiveApp

    app = LiveApp(synthetic_dg, "astronaut", backend="mediapipe", record_dir=tmp_path, plot_interval=0.1)
    sent = []
    app.view.send = lambda content, buffers=None: sent.append((content, buffers))
    app.sent = sent
    yield app
    app.close()


def _jpeg(image):
    return cv2.imencode(".jpg", image[..., ::-1])[1].tobytes()


def test_app_renders_without_camera(app):
    assert app.view.running is False and app.engine.warmed_up
    assert "synthetic" in app.view.weights and "NOT a real result" in app.view.weights
    assert len(app.figure.data) >= 1  # the 3D plot is there before any frame
    # a frame message while stopped is acknowledged (the page must not stall) and ignored
    app._on_msg(app.view, {"type": "frame", "t": 1.0}, [_jpeg(dgkit.sample_image("astronaut"))])
    assert app.sent == [({"type": "ack"}, None)] and app.received == 0


@pytest.mark.slow
def test_frames_acks_panels_plot_and_recording(app):
    frame = dgkit.sample_image("astronaut")
    app.start()
    assert app.engine.running
    app.record(True)
    for i in range(4):  # like the page: the next frame only after the previous one was acknowledged
        acks = sum(c["type"] == "ack" for c, _ in app.sent)
        app._on_msg(app.view, {"type": "frame", "t": 1000.0 + i}, [_jpeg(frame)])
        assert _wait(lambda: sum(c["type"] == "ack" for c, _ in app.sent) > acks)
    assert _wait(lambda: app.engine.stats().processed == 4)
    assert _wait(lambda: any("dg" in c.get("panels", ()) for c, _ in app.sent), timeout=120)
    panels = [c for c, _ in app.sent if c["type"] == "panels"]
    shape = [c for c in panels if c["panels"][0] == "camera"]
    assert len(shape) == 4 and shape[-1]["panels"] == ["camera", "sketch"]
    assert shape[-1]["t"]["sketch"] == 1003.0  # the browser time of that frame comes back (latency)
    assert shape[-1]["stats"]["received"] == 4
    _, buffers = next((c, b) for c, b in app.sent if c.get("panels") == ["dg"])
    dg_face = cv2.imdecode(np.frombuffer(buffers[0], np.uint8), cv2.IMREAD_COLOR)
    assert dg_face.shape == (256, 256, 3)
    assert _wait(lambda: app._plotted >= 0, timeout=10)  # the 3D plot followed
    app.stop()
    assert not app.engine.running and app.view.recording is False
    assert app.last_recording.exists() and dgkit.video_info(app.last_recording).frame_count == 4
    assert "recorded 4 frames" in app.view.message


def test_camera_denied_shows_the_message_and_stops(app):
    app.start()
    app.view.camera_error = "Camera permission was denied. Allow the camera for this page and press Start again."
    assert not app.engine.running
    assert "permission was denied" in app.error


def test_source_from_gallery_and_bad_snapshot(app):
    before = app.engine.encoding.style_code.copy()
    app.picker.set_image(np.zeros((300, 300, 3), np.uint8), "blank")  # no face: the app shows why, inline
    assert "no face" in app.view.error.lower() and app.error == app.view.error
    assert not app.use_camera_frame()  # no camera frame yet
    assert "press Start camera" in app.view.error
    app.picker.load_sample("astronaut")
    np.testing.assert_allclose(app.engine.encoding.style_code, before, atol=1e-5)
    assert app.view.error == ""
