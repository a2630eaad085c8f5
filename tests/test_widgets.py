"""Widget logic without a browser: set values the way the front end would, check state and shown images.

Most tests use ``FakeDG`` (same interface as DualGenerator, instant: its "image" is the target sketch in
colour) so that they run in milliseconds; one slow test runs the real synthetic model end to end.
"""

from __future__ import annotations

import datetime
import io

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from dgkit.errors import LandmarkError  # noqa: E402
from dgkit.geometry import head_pose, mean_face_3d  # noqa: E402
from dgkit.pipeline import ChainResult, ReferenceEncoding, Reenactment, SourceEncoding  # noqa: E402
from dgkit.weights import WeightsInfo  # noqa: E402
from dgkit.sketch import draw_sketch  # noqa: E402
from dgkit.widgets import (  # noqa: E402
    ImagePicker,
    InterpolationApp,
    LargePoseApp,
    ReenactApp,
    image_to_png,
    sketch_with_hidden,
)
from dgkit.viz import stamp_untrained  # noqa: E402


class FakeDG:
    """Stands in for DualGenerator: counts encode_source calls; the output image depends on the landmarks."""

    def __init__(self, trained: bool = False):
        self.weights = WeightsInfo(label="official" if trained else "synthetic (untrained)", trained=trained)
        self.encode_calls = 0
        self.reenact_calls = 0

    def encode_source(self, crops):
        self.encode_calls += 1
        crops = np.asarray(crops)
        crops = crops[None] if crops.ndim == 3 else crops
        n = len(crops)
        return SourceEncoding(crops, np.zeros((n, 4096), np.float32), np.zeros((n, 128), np.float32))

    sketch_intensity = "demo"
    generate_delay = 0.0

    # the step methods the apps call (IDSG: identity decoder = the reference itself; RFG: sketch in colour)
    def encode_reference(self, landmarks):
        lm = np.asarray(landmarks, np.float32).reshape(-1, 68, 2)
        return ReferenceEncoding(lm, lm.reshape(len(lm), 136) / 256)

    def decode(self, code, id_feature):
        return (np.asarray(code, np.float32) * 256).reshape(-1, 68, 2)

    def correct_eyes(self, decoded, reference):
        return np.asarray(decoded, np.float32)

    def draw(self, target):
        return np.stack([draw_sketch(t) for t in np.asarray(target).reshape(-1, 68, 2)])

    def run_chain(self, reference, id_feature, style_code=None, *, sketch_intensity=None, timer=None):
        ref = reference if isinstance(reference, ReferenceEncoding) else self.encode_reference(reference)
        decoded = self.decode(ref.landmark_code, id_feature)
        target = self.correct_eyes(decoded, ref.landmarks)
        sketch = self.draw(target)
        image = None if style_code is None else self.generate(sketch, style_code)
        return ChainResult(ref, decoded, target, sketch, image, sketch_intensity or self.sketch_intensity)

    def generate(self, sketch, style_code, *, sketch_intensity=None):
        import time

        self.generate_calls += 1
        time.sleep(self.generate_delay)
        sketch = np.asarray(sketch)
        return np.stack([np.stack([s, s // 2, np.full_like(s, 60)], axis=-1) for s in sketch])

    generate_calls = 0

    def reenact(self, source, reference_landmarks):
        self.reenact_calls += 1
        enc = source if isinstance(source, SourceEncoding) else self.encode_source(source)
        lm = np.asarray(reference_landmarks, np.float32)[None, :, :2]
        sketch = draw_sketch(lm[0])[None]
        image = np.stack([sketch[0], sketch[0] // 2, enc.image[0, ..., 2] // 2], axis=-1)[None]
        return Reenactment(enc.image, lm, enc.id_feature, np.zeros((1, 136), np.float32), lm, lm, sketch,
                           enc.style_code, image, "demo", self.weights.label, weights_info=self.weights)


def _png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _source_crop() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)


# --- helpers ------------------------------------------------------------------------------------------------
def test_image_to_png_round_trips_rgb():
    from PIL import Image

    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0] = 200  # red, to catch a BGR swap
    back = np.asarray(Image.open(io.BytesIO(image_to_png(rgb))))
    assert back.shape == (5, 7, 3) and np.array_equal(back, rgb)


def test_stamp_untrained_marks_top_only_and_keeps_input():
    img = np.full((256, 256, 3), 100, np.uint8)
    out = stamp_untrained(img)
    assert np.all(img == 100)  # input untouched
    assert (out[:5, :, 0] >= 190).mean() > 0.5 and np.array_equal(out[40:], img[40:])


def test_sketch_with_hidden_shows_hidden_half_at_large_yaw():
    front = mean_face_3d()
    rgb, branch, hidden = sketch_with_hidden(front)
    assert branch == "frontal" and hidden == ()
    from dgkit.geometry import pose_landmarks

    turned = pose_landmarks(front, 80, 0, 0)
    rgb, branch, hidden = sketch_with_hidden(turned)
    assert branch == "right" and len(hidden) > 10
    white = np.all(rgb == 255, axis=-1)
    assert np.array_equal(white, draw_sketch(turned[:, :2]) > 0)  # white lines = exactly DG's sketch
    assert ((rgb[..., 0] > 100) & (rgb[..., 1] < 60)).any()  # hidden parts drawn in red


# --- ImagePicker --------------------------------------------------------------------------------------------
def test_picker_without_a_photo_shows_a_blank_preview_not_a_broken_image():
    picker = ImagePicker("Source", default=None)
    assert picker.image is None and picker.preview.value[:4] == b"\x89PNG"


def test_picker_loads_default_sample_and_reports_change():
    seen = []
    picker = ImagePicker("Source")
    picker.on_change(seen.append)
    assert picker.image.shape == (512, 512, 3) and picker.origin == "sample: astronaut"
    assert picker.preview.value[:4] == b"\x89PNG"
    picker.gallery.value = "(choose)"
    picker.gallery.value = "astronaut"
    assert len(seen) == 1 and seen[0].dtype == np.uint8


def test_picker_extra_samples_and_set_image():
    extra = np.zeros((40, 30, 3), np.uint8)
    picker = ImagePicker(default="mine", samples={"mine": extra})
    assert picker.image.shape == (40, 30, 3) and picker.image is not extra
    assert picker.set_image(np.ones((8, 9), np.uint8) * 3) and picker.image.shape == (8, 9, 3)


def test_picker_path_and_bad_path(tmp_path):
    from PIL import Image

    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :, 1] = 255
    path = tmp_path / "green.png"
    Image.fromarray(rgb).save(path)
    picker = ImagePicker(default=None)
    assert picker.image is None
    picker.path.value = str(path)
    picker.load_button.click()
    assert np.array_equal(picker.image, rgb) and picker.error == ""
    missing = tmp_path / "nope.jpg"
    assert not picker.load_path(missing)
    assert "not found" in picker.error and "Traceback" not in picker.status.value
    assert "nope.jpg" in picker.status.value
    assert np.array_equal(picker.image, rgb)  # a failed load keeps the last good image


def test_picker_upload_bytes_and_non_image_upload():
    picker = ImagePicker(default=None)
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    picker.upload.value = ({"name": "tiny.png", "type": "image/png", "size": 1,
                            "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
                            "content": memoryview(_png_bytes(rgb))},)
    assert np.array_equal(picker.image, rgb) and picker.origin == "upload: tiny.png"
    assert not picker.load_bytes(b"%PDF-1.4 not an image", "paper.pdf")
    assert "paper.pdf" in picker.error and "not an image" in picker.error
    assert "color:#C00000" in picker.status.value and "Traceback" not in picker.status.value
    assert not picker.load_bytes(_png_bytes(rgb)[:30], "cut.png")  # truncated file
    assert "cut.png" in picker.error
    assert not picker.load_bytes(b"", "empty.jpg") and "empty" in picker.error


def test_picker_webcam_snapshot_data_url():
    import base64

    picker = ImagePicker(default=None, webcam=True)
    assert picker.camera is not None
    rgb = np.full((3, 4, 3), 7, np.uint8)
    picker.camera.snapshot = "data:image/png;base64," + base64.b64encode(_png_bytes(rgb)).decode()
    assert np.array_equal(picker.image, rgb) and picker.origin == "webcam"
    picker.camera.error = "NotFoundError: Requested device not found"
    assert "webcam is not available" in picker.error


# --- LargePoseApp -------------------------------------------------------------------------------------------
def test_large_pose_sliders_update_state_and_encode_once():
    dg = FakeDG()
    ref = mean_face_3d()
    app = LargePoseApp(dg, _source_crop(), ref, source_landmarks=ref, debounce=0)
    assert app.n_updates == 1 and app.values["yaw"] == 0.0 and app.branch == "frontal"
    first_png = app.panels["DG output"].view.value
    first_x = list(app.figure.data[0].x)

    app.sliders["yaw"].value = 80
    assert app.n_updates == 2 and abs(app.pose.yaw - 80) < 1.0
    assert app.branch == "right" and len(app.hidden) > 10
    assert len(app.figure.data[1].x) == len(app.hidden)  # hidden points plotted in red
    assert list(app.figure.data[0].x) != first_x
    assert app.panels["DG output"].view.value != first_png
    assert app.baseline.shape == (256, 256, 3)

    app.sliders["pitch"].value = -20
    app.sliders["mouth_open"].value = 0.4
    assert abs(app.pose.pitch + 20) < 1.5
    gap = app.landmarks[66, 1] - app.landmarks[62, 1]
    assert gap > 10  # the mouth is open (IOD of the mean face is about 73 px)
    assert dg.encode_calls == 1 and dg.generate_calls == 4 and dg.reenact_calls == 0
    assert app.result.weights_info is dg.weights and app.result.weights == dg.weights.label  # the typed record
    # the DG output shown is untrained: red banner burnt in; the raw image is kept without it
    shown = app.panels["DG output"].array
    assert shown[2, 128, 0] >= 190 and not np.array_equal(shown, app.image)
    assert "color:#C00000" in app.panels["DG output"].caption.value

    app.reset()
    assert app.values == {"yaw": 0.0, "pitch": 0.0, "roll": 0.0, "mouth_open": 0.0, "eyes_open": 0.0,
                          "smile": 0.0}
    assert app.n_updates == 5  # one update for the six sliders
    np.testing.assert_allclose(app.landmarks, ref, atol=1e-6)


def test_large_pose_debounce_coalesces_changes():
    import time

    dg = FakeDG()
    app = LargePoseApp(dg, _source_crop(), mean_face_3d(), debounce=0.05)
    for yaw in (10, 20, 30, 40):
        app.sliders["yaw"].value = yaw
    deadline = time.monotonic() + 10
    while (app.n_updates < 2 or app.busy) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    assert app.n_updates == 2 and abs(app.pose.yaw - 40) < 1.0


def test_large_pose_starts_at_reference_pose_and_shows_errors_inline():
    from dgkit.geometry import pose_landmarks

    ref = pose_landmarks(mean_face_3d(), 30, -10, 5)
    dg = FakeDG()
    app = LargePoseApp(dg, _source_crop(), ref, debounce=0)
    assert (app.values["yaw"], app.values["pitch"], app.values["roll"]) == (30.0, -10.0, 5.0)
    np.testing.assert_allclose(tuple(head_pose(app.landmarks)), (30, -10, 5), atol=0.5)

    def broken(*_a, **_k):
        raise LandmarkError("reference_landmarks contain NaN or inf; re-detect")

    dg.generate = broken
    app.sliders["yaw"].value = 45
    assert "NaN or inf" in app.error and "NaN or inf" in app.message.value
    assert "Traceback" not in app.message.value and not app.busy
    assert app.n_updates == 1  # the failed update did not count


def test_large_pose_rejects_2d_reference():
    with pytest.raises(LandmarkError):
        LargePoseApp(FakeDG(), _source_crop(), mean_face_3d()[:, :2])


# --- ReenactApp ---------------------------------------------------------------------------------------------
def test_reenact_app_no_face_error_inline():
    blank = np.full((200, 200, 3), 90, np.uint8)
    app = ReenactApp(FakeDG(), source=ImagePicker(default="blank", samples={"blank": blank}),
                     reference=ImagePicker(default="blank", samples={"blank": blank}), backend="mediapipe")
    assert app.run() is False
    assert "face" in app.error.lower() and "color:#C00000" in app.message.value
    assert not app.busy and not app.button.disabled and app.result is None


def test_reenact_app_needs_two_images():
    app = ReenactApp(None, source=ImagePicker(default=None), reference=ImagePicker(default=None))
    assert app.run() is False and "choose both" in app.error


@pytest.mark.slow
def test_reenact_app_end_to_end_with_synthetic_dg(synthetic_dg, monkeypatch):
    """Detect (mediapipe), align, reenact with the real (synthetic) DG; every stage shown, nothing made twice."""
    import dgkit.landmarks
    import dgkit.reenact

    counts = {"detect": 0, "warp": 0}

    def counting(module, name):
        real = getattr(module, name)

        def wrapper(*a, **k):
            counts[{"detect_faces": "detect", "warp_to_landmarks": "warp"}[name]] += 1
            return real(*a, **k)
        monkeypatch.setattr(module, name, wrapper)

    counting(dgkit.landmarks, "detect_faces")
    counting(dgkit.reenact, "warp_to_landmarks")
    app = ReenactApp(synthetic_dg, backend="mediapipe")
    assert app.source.origin == "sample: astronaut" and app.reference.origin == "sample: astronaut (mirrored)"
    app.button.click()
    assert app.error == "", app.error
    # two photos detected once each; the phase-1 warp baseline is the one shown at the end (untrained weights)
    assert counts == {"detect": 2, "warp": 1}
    assert app.images["warp baseline"] is app.result.baselines["warp"]
    assert set(app.images) == set(ReenactApp.STAGES)
    for name, img in app.images.items():
        assert img.shape[:2] == (256, 256), name
        assert app.panels[name].view.value[:4] == b"\x89PNG"
    assert "UNTRAINED" in app.panels["DG output"].caption.value.upper() or \
        "untrained" in app.panels["DG output"].caption.value
    assert "relative 3D" in app.panels["warp baseline"].caption.value
    assert app.result.weights is synthetic_dg.weights and not app.result.weights.trained
    # the mirrored reference's landmarks are the source's, mirrored: same face, opposite yaw sign
    ys, yr = app.result.source.crop_landmarks, app.result.reference.crop_landmarks
    assert abs(head_pose(ys).yaw + head_pose(yr).yaw) < 3


@pytest.mark.slow
def test_large_pose_real_dg_encodes_source_once(synthetic_dg, monkeypatch):
    """With the real (synthetic) DG: slider moves re-run only the reference side and the generator."""
    from dgkit.pipeline import DualGenerator

    calls = []
    original = DualGenerator.encode_source

    def counting(self, crops):
        calls.append(1)
        return original(self, crops)

    monkeypatch.setattr(DualGenerator, "encode_source", counting)
    app = LargePoseApp(synthetic_dg, _source_crop(), mean_face_3d(), debounce=0)
    before = app.panels["DG output"].view.value
    app.sliders["yaw"].value = 85
    app.sliders["smile"].value = 0.2
    assert app.error == "" and app.n_updates == 3 and len(calls) == 1
    assert app.branch == "right" and app.image.shape == (256, 256, 3)
    assert app.panels["DG output"].view.value != before


# --- two phases, snapshots, failures, double clicks ----------------------------------------------------------
def test_large_pose_shows_the_shape_at_once_and_the_face_later():
    import time

    dg = FakeDG()
    app = LargePoseApp(dg, _source_crop(), mean_face_3d(), debounce=0.05)
    face_before = app.panels["DG output"].view.value
    sketch_before = app.panels["sketch"].view.value
    dg.generate_delay = 0.5
    app.sliders["yaw"].value = 80
    # the shape phase ran in this thread: sketch, pose, 3D plot are new; the face is not yet
    assert app.n_shape_updates == 2 and app.branch == "right" and app.panels["sketch"].view.value != sketch_before
    assert app.n_updates == 1 and app.busy and app.panels["DG output"].view.value == face_before
    deadline = time.monotonic() + 10
    while app.busy and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app.n_updates == 2 and app.panels["DG output"].view.value != face_before
    assert "ready" in app._busy.widget.value and "&#8987;" not in app._busy.widget.value


def test_large_pose_info_never_says_minus_zero():
    app = LargePoseApp(FakeDG(), _source_crop(), mean_face_3d(), debounce=0)
    app.sliders["pitch"].value = 0.0
    assert "-0°" not in app.info.value and "-0&deg;" not in app.info.value


def test_apps_save_a_picture_and_a_one_line_placeholder_not_the_repr():
    app = LargePoseApp(FakeDG(), _source_crop(), mean_face_3d(), debounce=0)
    data = app._repr_mimebundle_()
    bundle = data[0] if isinstance(data, tuple) else data
    assert bundle["text/plain"].startswith("LargePoseApp: run the cell")
    assert "children=" not in bundle["text/plain"]
    import base64

    assert base64.b64decode(bundle["image/png"])[:4] == b"\x89PNG"
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_reenact_app_names_the_failed_input_clears_stale_panels_and_says_failed(tmp_path):
    blank = np.full((200, 300, 3), 90, np.uint8)
    path = tmp_path / "cat.png"
    from dgkit.io import write_image

    write_image(path, blank)
    src = ImagePicker(default=None)
    src.load_path(path)
    app = ReenactApp(None, source=src, reference=ImagePicker(default=None), backend="mediapipe")
    app.reference.load_sample("astronaut")
    app.panels["DG output"].show(np.zeros((256, 256, 3), np.uint8), "DG output (old)")  # a previous result
    assert app.run() is False
    assert "source image 'cat.png'" in app.error and "ndarray" not in app.error
    assert all(p.array is None for p in app.panels.values())
    assert "failed" in app.panels["DG output"].caption.value and app._busy.state == "failed"
    assert "failed" in app._busy.widget.value


def test_reenact_app_double_click_runs_once(monkeypatch):
    import dgkit.reenact

    app = ReenactApp(None, backend="mediapipe")
    calls = []
    real = dgkit.reenact.reenact_photos
    monkeypatch.setattr(dgkit.reenact, "reenact_photos", lambda *a, **k: calls.append(1) or real(*a, **k))
    app._on_click()
    app._on_click()  # queued while the first ran: arrives right after it ended
    assert app.runs == 1 and len(calls) == 1 and app.error == ""


def test_picker_clears_a_stale_path_and_error_after_a_sample():
    picker = ImagePicker(default=None)
    picker.path.value = "no/such/file.jpg"
    assert picker.load_path(picker.path.value) is False and picker.error
    assert picker.load_sample("astronaut")
    assert picker.path.value == "" and picker.error == "" and "color:#C00000" not in picker.status.value
    assert picker.name == "astronaut"


def test_interpolation_app_two_phases_and_cache():
    from dgkit.geometry import pose_landmarks

    dg = FakeDG()
    face = mean_face_3d()
    app = InterpolationApp(dg, pose_landmarks(face, yaw=-30)[:, :2], pose_landmarks(face, yaw=30)[:, :2],
                           source=_source_crop(), debounce=0)
    assert app.n_updates == 1 and app.image.shape == (256, 256, 3) and dg.generate_calls == 1
    first = app.panels["sketch"].view.value
    app.slider.value = 0.0
    assert app.panels["sketch"].view.value != first and dg.generate_calls == 2
    app.slider.value = 0.5  # cached: no new generator call
    assert dg.generate_calls == 2 and app.n_updates == 3
    app.path.value = "landmarks"
    assert app.frame.method == "landmarks" and dg.generate_calls == 3
    assert viz_has_banner(app.panels["DG output"].array)


def viz_has_banner(image) -> bool:
    return image is not None and image[2, 128, 0] >= 190 and image[2, 128, 1] < 60
