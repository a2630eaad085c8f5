"""Tests of dgkit.reenact: photos, videos, contact sheet and the ``dgkit reenact`` command.

Faces come from the astronaut sample (mediapipe runs offline); videos are a few 256 px frames written with
dgkit.io. DG runs use the session's synthetic (untrained) weights; the tests check plumbing, shapes, counts
and numbers, never image quality.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dgkit import cli
from dgkit import reenact as rn
from dgkit import viz
from dgkit.sheet import contact_sheet
from dgkit.errors import ImageReadError, InputError, NoFaceError, VideoError
from dgkit.io import VideoWriter, make_test_video, sample_image, video_info, write_image


# --- helpers --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """(512,512,3) uint8, one frontal face."""
    return sample_image()


@pytest.fixture(scope="module")
def small_face() -> np.ndarray:
    """The astronaut at 256x256 (face ~50 px wide), as in the test videos."""
    return cv2.resize(sample_image(), (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def source_face(astronaut) -> rn.AlignedFace:
    return rn.prepare_face(astronaut, backend="mediapipe")


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """6 frames, 256x256, 10 fps, one face in every frame."""
    return make_test_video(tmp_path / "drive.mp4", n_frames=6, fps=10.0)


def _mixed_video(path: Path, face: np.ndarray, pattern: str, fps: float = 8.0) -> Path:
    """A video whose frame i shows the face when pattern[i] == "F" and a blank grey frame when "-"."""
    blank = np.full_like(face, 128)
    with VideoWriter(path, fps, (face.shape[1], face.shape[0])) as writer:
        for c in pattern:
            writer.write(face if c == "F" else blank)
    return path


# --- prepare_face ---------------------------------------------------------------------------------------------
def test_prepare_face_fields_and_frames(astronaut, source_face):
    f = source_face
    assert f.photo.shape == (512, 512, 3) and f.photo.dtype == np.uint8
    assert f.landmarks.shape == (68, 3)
    assert f.crop.shape == (256, 256, 3) and f.crop.dtype == np.uint8
    assert f.crop_landmarks.shape == (68, 3) and f.matrix.shape == (2, 3)
    assert f.n_faces == 1 and f.backend == "mediapipe" and f.notes == []
    # crop landmarks are the image landmarks mapped by the matrix; z scaled by the similarity scale
    mapped = f.landmarks[:, :2] @ f.matrix[:, :2].T + f.matrix[:, 2]
    np.testing.assert_allclose(f.crop_landmarks[:, :2], mapped, atol=1e-3)
    scale = np.sqrt(abs(np.linalg.det(f.matrix[:, :2])))
    np.testing.assert_allclose(f.crop_landmarks[:, 2], f.landmarks[:, 2] * scale, rtol=1e-4, atol=1e-3)
    # the eyes land near the ArcFace template's eye centres
    assert abs(f.crop_landmarks[36:42, 0].mean() - 92.6) < 6 and abs(f.crop_landmarks[42:48, 0].mean() - 163.0) < 6
    # the photo given as an array is not modified
    np.testing.assert_array_equal(astronaut, sample_image())


def test_prepare_face_with_given_landmarks_skips_detection(astronaut, source_face):
    given = rn.prepare_face(astronaut, landmarks=source_face.landmarks)
    assert given.backend == "given" and given.n_faces == 1
    np.testing.assert_array_equal(given.crop, source_face.crop)
    np.testing.assert_array_equal(given.crop_landmarks, source_face.crop_landmarks)
    flat = rn.prepare_face(astronaut, landmarks=source_face.landmarks[:, :2])  # (68,2): depth 0
    np.testing.assert_array_equal(flat.crop, source_face.crop)
    assert (flat.landmarks[:, 2] == 0).all()
    with pytest.raises(InputError, match="68,2"):
        rn.prepare_face(astronaut, landmarks=np.zeros((5, 2)))


def test_prepare_face_several_faces_uses_largest(astronaut):
    photo = np.full((512, 1024, 3), 200, np.uint8)
    photo[:, 512:] = astronaut  # the large face on the right
    photo[64:448, 64:448] = cv2.resize(astronaut, (384, 384), interpolation=cv2.INTER_AREA)
    face = rn.prepare_face(photo, backend="mediapipe")
    assert face.n_faces == 2
    assert "2 faces found; used the largest" in face.notes
    assert face.landmarks[:, 0].min() > 512  # the right (larger) face


def test_prepare_face_no_face(tmp_path):
    path = write_image(tmp_path / "blank.png", np.full((300, 300, 3), 127, np.uint8))
    with pytest.raises(NoFaceError) as info:
        rn.prepare_face(path, backend="mediapipe")
    message = str(info.value)
    assert "blank.png" in message and "mediapipe" in message and "larger or closer" in message


@pytest.mark.parametrize("kind", ["gray", "rgba", "16bit"])
def test_prepare_face_file_formats(tmp_path, astronaut, source_face, kind):
    path = tmp_path / f"{kind}.png"
    if kind == "gray":
        cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))
    elif kind == "rgba":
        rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
        rgba[:40, :, 3] = 0  # a transparent strip away from the face
        cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    else:
        cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    face = rn.prepare_face(path, backend="mediapipe")
    assert face.photo.shape == (512, 512, 3) and face.photo.dtype == np.uint8
    # same face as the RGB original, within a few pixels (grayscale changes the detector's input)
    assert np.abs(face.landmarks[:, :2] - source_face.landmarks[:, :2]).mean() < 3.0


def test_prepare_face_unreadable_files(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageReadError):
        rn.prepare_face(text)
    with pytest.raises(ImageReadError):
        rn.prepare_face(tmp_path / "missing.jpg")


# --- photos ---------------------------------------------------------------------------------------------------
def test_reenact_photos_baselines_only(astronaut):
    reference = cv2.flip(astronaut, 1)
    r = rn.reenact_photos(astronaut, reference, backend="mediapipe")
    assert r.dg is None and r.weights.label == "none (baselines only)" and not r.weights.trained
    assert r.warp_target == "relative3d"
    assert r.baselines["naive"].shape == (68, 2) and r.baselines["relative3d"].shape == (68, 2)
    assert r.baselines["warp"].shape == (256, 256, 3) and r.baselines["warp"].dtype == np.uint8
    np.testing.assert_allclose(r.baselines["naive"], r.reference.crop_landmarks[:, :2], atol=1e-4)
    assert r.image is r.baselines["warp"]
    assert any("baselines only" in n for n in r.notes)
    sheet = contact_sheet(r)
    assert sheet.ndim == 3 and sheet.shape[2] == 3 and sheet.dtype == np.uint8
    assert sheet.shape[1] == 4 * 256


def _red_banner_pixels(sheet: np.ndarray) -> int:
    red = np.all(sheet == viz.UNTRAINED_RGB, axis=-1)
    return int(red.sum())


@pytest.mark.slow
def test_reenact_photos_with_dg(astronaut, synthetic_dg):
    reference = cv2.flip(astronaut, 1)
    before = synthetic_dg.sketch_intensity
    r = rn.reenact_photos(astronaut, reference, dg=synthetic_dg, backend="mediapipe", sketch_intensity="train")
    assert synthetic_dg.sketch_intensity == before  # a per-call option: the shared model is not changed
    assert r.dg is not None and r.dg.sketch_intensity == "train"
    assert r.dg.image.shape == (1, 256, 256, 3) and r.dg.sketch.shape == (1, 256, 256)
    np.testing.assert_allclose(r.dg.reference_landmarks[0], r.reference.crop_landmarks[:, :2], atol=1e-4)
    np.testing.assert_array_equal(r.dg.source_image[0], r.source.crop)
    assert r.weights is synthetic_dg.weights and r.dg.weights_info is synthetic_dg.weights and not r.weights.trained
    assert r.warp_target == "relative3d"  # untrained targets are a blob: the warp stays on the relative-3D one
    np.testing.assert_array_equal(r.image, r.dg.image[0])
    assert np.array_equal(r.target_landmarks, r.dg.target_landmarks[0])
    sheet = contact_sheet(r)
    assert _red_banner_pixels(sheet) > 2000  # the UNTRAINED banner over the target-sketch and DG tiles
    no_dg = contact_sheet(rn.PhotoReenactment(r.source, r.reference, None, r.baselines, rn.weights_of(None), []))
    assert _red_banner_pixels(no_dg) == 0


@pytest.mark.slow
def test_add_dg_reuses_the_faces_and_baselines(astronaut, synthetic_dg, monkeypatch):
    """The baselines-only result of phase 1 is reused by add_dg: no face is detected and no warp made twice."""
    import dataclasses

    from dgkit.weights import WeightsInfo

    src = rn.prepare_face(astronaut, backend="mediapipe")
    ref = rn.prepare_face(cv2.flip(astronaut, 1), backend="mediapipe")
    warps = []
    real_warp = rn.warp_to_landmarks
    monkeypatch.setattr(rn, "warp_to_landmarks", lambda *a, **k: warps.append(1) or real_warp(*a, **k))
    monkeypatch.setattr(rn, "prepare_face", lambda *a, **k: pytest.fail("an AlignedFace must not be detected again"))
    base = rn.reenact_photos(src, ref)
    assert base.source is src and base.dg is None and len(warps) == 1
    untrained = rn.add_dg(base, synthetic_dg)
    assert len(warps) == 1 and untrained.baselines["warp"] is base.baselines["warp"]  # the very same array
    assert untrained.warp_target == "relative3d" and untrained.weights is synthetic_dg.weights
    assert not any("baselines only" in n for n in untrained.notes) and base.dg is None  # base is kept as it was
    # trained weights: the warp follows DG's target instead (made once, here)
    trained = dataclasses.replace(synthetic_dg.weights, label="trained (test)", trained=True)
    monkeypatch.setattr(synthetic_dg, "weights", trained)
    with_target = rn.add_dg(base, synthetic_dg)
    assert len(warps) == 2 and with_target.warp_target == "dg" and with_target.weights is trained
    assert with_target.baselines["warp"] is not base.baselines["warp"]
    assert isinstance(with_target.weights, WeightsInfo) and not viz.is_untrained(with_target)
    assert _red_banner_pixels(contact_sheet(with_target)) == 0  # trained: no banner
    with pytest.raises(InputError, match="without DG"):
        rn.add_dg(with_target, synthetic_dg)


# --- videos ---------------------------------------------------------------------------------------------------
def test_video_frame_count_and_fps(tmp_path, video, astronaut):
    out = tmp_path / "out" / "result.avi"
    report = rn.reenact_video(astronaut, video, out, backend="mediapipe", progress=False)
    assert (report.frames_in, report.frames_out, report.frames_without_face) == (6, 6, 0)
    assert report.fps == pytest.approx(10.0) and report.output == out
    assert report.weights.label == "none (baselines only)" and not report.weights.trained
    assert {"read", "detect", "align", "warp", "write", "total"} <= set(report.seconds)
    info = video_info(out)
    assert info.frame_count == 6 and info.fps == pytest.approx(10.0) and (info.width, info.height) == (256, 256)
    assert "6 frames in, 6 out, 0 without a face" in report.summary()


def test_video_max_frames(tmp_path, video, source_face):
    frames = list(rn.iter_reenact_video(source_face, video, backend="mediapipe", max_frames=3))
    assert [f.index for f in frames] == [0, 1, 2]
    assert all(f.status == "warp" and f.image.shape == (256, 256, 3) for f in frames)
    assert all(f.reference_landmarks.shape == (68, 3) and f.target_landmarks.shape == (68, 2) for f in frames)


def test_video_frames_without_face_held(tmp_path, small_face, source_face):
    video = _mixed_video(tmp_path / "mixed.avi", small_face, "-FF--F-")
    frames = list(rn.iter_reenact_video(source_face, video, backend="mediapipe", batch_size=3))
    assert [f.status for f in frames] == ["held", "warp", "warp", "held", "held", "warp", "held"]
    np.testing.assert_array_equal(frames[0].image, source_face.crop)  # nothing to hold yet: the source crop
    np.testing.assert_array_equal(frames[3].image, frames[2].image)
    np.testing.assert_array_equal(frames[6].image, frames[5].image)
    assert [f.face_found for f in frames] == [c == "F" for c in "-FF--F-"]

    report = rn.reenact_video(source_face.photo, video, tmp_path / "held.avi", backend="mediapipe",
                              progress=False, on_no_face="source")
    assert (report.frames_in, report.frames_out, report.frames_without_face) == (7, 7, 4)
    assert video_info(tmp_path / "held.avi").frame_count == 7


def test_video_on_no_face_source(tmp_path, small_face, source_face):
    video = _mixed_video(tmp_path / "mixed.avi", small_face, "F-")
    frames = list(rn.iter_reenact_video(source_face, video, backend="mediapipe", on_no_face="source"))
    assert [f.status for f in frames] == ["warp", "source"]
    np.testing.assert_array_equal(frames[1].image, source_face.crop)


def test_video_all_blank_frames(tmp_path, small_face, astronaut):
    video = _mixed_video(tmp_path / "blank.avi", small_face, "---")
    report = rn.reenact_video(astronaut, video, tmp_path / "out.mp4", backend="mediapipe", progress=False)
    assert (report.frames_in, report.frames_out, report.frames_without_face) == (3, 3, 3)
    assert video_info(tmp_path / "out.mp4").frame_count == 3


def _jitter(frames: list[rn.VideoFrame]) -> float:
    lm = np.stack([f.reference_landmarks[:, :2] for f in frames])
    return float(np.abs(np.diff(lm, axis=0)).mean())


def test_video_smoothing_reduces_jitter(tmp_path, source_face, small_face, monkeypatch):
    # every frame shows the same face; the detector is replaced by one that adds 2 px noise per frame
    video = _mixed_video(tmp_path / "still.avi", small_face, "FFFFFFFFFF")
    base = source_face.crop_landmarks.astype(np.float64)
    rng = np.random.default_rng(0)
    noise = iter(rng.normal(0.0, 2.0, size=(10, 68, 3)))
    monkeypatch.setattr(rn, "_frame_landmarks", lambda frame, backend, timer: base + next(noise))
    monkeypatch.setattr(rn, "warp_to_landmarks", lambda img, s, t: np.zeros((256, 256, 3), np.uint8))
    raw = list(rn.iter_reenact_video(source_face, video, smoothing=0.0))
    noise = iter(rng.normal(0.0, 2.0, size=(10, 68, 3)))
    smooth = list(rn.iter_reenact_video(source_face, video, smoothing=0.7))
    assert _jitter(smooth) < 0.5 * _jitter(raw)


def test_video_smoothing_is_an_ema(tmp_path, source_face, small_face, monkeypatch):
    video = _mixed_video(tmp_path / "still.avi", small_face, "FF-F")
    steps = iter([np.zeros((68, 3)) + 100, np.zeros((68, 3)) + 110, None, np.zeros((68, 3)) + 120])
    monkeypatch.setattr(rn, "_frame_landmarks", lambda frame, backend, timer: next(steps))
    monkeypatch.setattr(rn, "warp_to_landmarks", lambda img, s, t: np.zeros((256, 256, 3), np.uint8))
    monkeypatch.setattr(rn, "relative_transfer_3d", lambda s, r, neutral3d=None: r[:, :2])
    frames = list(rn.iter_reenact_video(source_face, video, smoothing=0.5))
    values = [None if f.reference_landmarks is None else float(f.reference_landmarks[0, 0]) for f in frames]
    assert values == [100.0, 105.0, None, 112.5]  # frames without a face keep the state


@pytest.mark.slow
def test_video_with_dg_encodes_source_once(tmp_path, source_face, synthetic_dg, monkeypatch):
    video = make_test_video(tmp_path / "drive.mp4", n_frames=3, fps=6.0)
    calls = []
    original = synthetic_dg.encode_source
    monkeypatch.setattr(synthetic_dg, "encode_source", lambda crops: calls.append(1) or original(crops))
    frames = list(rn.iter_reenact_video(source_face, video, dg=synthetic_dg, backend="mediapipe", batch_size=2))
    assert len(calls) == 1
    assert [f.status for f in frames] == ["dg"] * 3
    # the batched, timed path gives what dg.reenact gives for the same landmarks (same batch: first 2 frames)
    expected = synthetic_dg.reenact(source_face.crop, np.stack([f.reference_landmarks[:, :2] for f in frames[:2]]))
    np.testing.assert_array_equal(np.stack([f.image for f in frames[:2]]), expected.image)
    np.testing.assert_array_equal(np.stack([f.sketch for f in frames[:2]]), expected.sketch)
    np.testing.assert_allclose(np.stack([f.target_landmarks for f in frames[:2]]), expected.target_landmarks,
                               atol=1e-4)


@pytest.mark.slow
def test_video_with_untrained_dg_carries_weights_and_banner(tmp_path, astronaut, synthetic_dg):
    """The report names the WeightsInfo that made the video and every DG frame has the UNTRAINED banner."""
    from dgkit.io import iter_video_frames

    drive = make_test_video(tmp_path / "drive.mp4", n_frames=2, fps=6.0)
    report = rn.reenact_video(astronaut, drive, tmp_path / "out.mp4", dg=synthetic_dg, backend="mediapipe",
                              batch_size=2, progress=False, audio=False)
    assert report.weights is synthetic_dg.weights and not report.weights.trained
    assert any("not a real result" in n for n in report.notes) and "synthetic (untrained)" in report.summary()
    frames = list(iter_video_frames(report.output))
    assert len(frames) == 2
    for frame in frames:  # the red band survives the video codec (to within its colour error)
        band = frame[3:16, 2:20].reshape(-1, 3).mean(0)  # left of the text
        assert band[0] > 150 and band[1] < 70 and band[2] < 70, band


def test_video_output_never_overwrites_input(tmp_path, video, astronaut):
    before = video.read_bytes()
    with pytest.raises(InputError, match="inputs"):
        rn.reenact_video(astronaut, video, video, progress=False)
    assert video.read_bytes() == before
    src = write_image(tmp_path / "src.png", astronaut)
    with pytest.raises(VideoError):
        rn.reenact_video(src, video, tmp_path / "out.png", progress=False)  # not a video suffix


def test_video_bad_files(tmp_path, astronaut):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 50)
    for bad in (empty, text, tmp_path / "missing.mp4"):
        with pytest.raises(VideoError):
            rn.reenact_video(astronaut, bad, tmp_path / "out.mp4", progress=False)
        with pytest.raises(VideoError):
            rn.iter_reenact_video(astronaut, bad)
    assert not (tmp_path / "out.mp4").exists()


def test_default_video_batch_size_follows_the_device():
    from types import SimpleNamespace

    import torch

    assert rn.default_video_batch_size(SimpleNamespace(device=torch.device("cpu"))) == 1  # measured fastest
    assert rn.default_video_batch_size(SimpleNamespace(device=torch.device("cuda", 0))) == 8
    assert rn.default_video_batch_size(SimpleNamespace(device=torch.device("mps"))) == 8
    assert rn.default_video_batch_size(None) == 8  # the warp baseline: batches only bound the frames held


@pytest.mark.slow
def test_video_on_cpu_runs_dg_one_frame_at_a_time_by_default(tmp_path, source_face, synthetic_dg, monkeypatch):
    video = make_test_video(tmp_path / "drive.mp4", n_frames=3, fps=6.0)
    sizes = []
    original = synthetic_dg.reenact
    monkeypatch.setattr(synthetic_dg, "reenact", lambda enc, lm, **kw: sizes.append(len(lm)) or original(enc, lm, **kw))
    frames = list(rn.iter_reenact_video(source_face, video, dg=synthetic_dg, backend="mediapipe"))
    assert [f.status for f in frames] == ["dg"] * 3
    assert sizes == [1, 1, 1]


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"smoothing": 1.0}, {"max_frames": 0},
                                    {"on_no_face": "drop"}])
def test_video_bad_arguments(tmp_path, video, astronaut, kwargs):
    with pytest.raises(InputError):
        rn.iter_reenact_video(astronaut, video, **kwargs)


# --- command line ---------------------------------------------------------------------------------------------
@pytest.fixture
def photos(tmp_path, astronaut) -> tuple[Path, Path]:
    return write_image(tmp_path / "src.png", astronaut), write_image(tmp_path / "ref.jpg", cv2.flip(astronaut, 1))


@pytest.mark.slow
def test_cli_photo_and_sheet(tmp_path, photos, synthetic_weights, capsys):
    src, ref = photos
    out = tmp_path / "out.png"
    assert cli.main(["reenact", str(src), str(ref), "-o", str(out), "--weights", str(synthetic_weights),
                     "--backend", "mediapipe"]) == 0
    image = cv2.imread(str(out))
    assert image.shape == (256, 256, 3)
    printed = capsys.readouterr().out
    assert "UNTRAINED" in printed.upper() and str(out) in printed and "1 frame" in printed

    sheet = tmp_path / "sheet.png"
    assert cli.main(["reenact", str(src), str(ref), "-o", str(sheet), "--sheet", "--baseline-only"]) == 0
    assert cv2.imread(str(sheet)).shape[1] == 1024


def test_cli_video_baseline(tmp_path, photos, video, capsys):
    src, _ = photos
    out = tmp_path / "cli.avi"
    assert cli.main(["reenact", str(src), str(video), "-o", str(out), "--baseline-only", "--max-frames", "4",
                     "--smoothing", "0.5", "--no-progress"]) == 0
    assert video_info(out).frame_count == 4
    printed = capsys.readouterr().out
    assert "4 frames in, 4 out, 0 without a face" in printed and "10 fps" in printed and str(out) in printed


def test_cli_takes_a_sample_name_where_no_such_file_exists(tmp_path, video, monkeypatch, capsys):
    from dgkit.io import photo_or_sample, sample_image

    monkeypatch.chdir(tmp_path)
    np.testing.assert_array_equal(photo_or_sample("astronaut"), sample_image("astronaut"))
    assert photo_or_sample("me.jpg") == "me.jpg"  # not a sample: the path, checked later as usual
    out = tmp_path / "sample.png"
    assert cli.main(["reenact", "astronaut", "astronaut", "-o", str(out), "--baseline-only"]) == 0
    assert cv2.imread(str(out)).shape == (256, 256, 3)
    assert cli.main(["reenact", "astronaut", str(video), "-o", str(tmp_path / "v.avi"), "--baseline-only",
                     "--max-frames", "2", "--no-progress"]) == 0
    (tmp_path / "astronaut").write_bytes(b"not an image")  # a file of that name wins over the sample
    assert isinstance(photo_or_sample("astronaut"), str)
    assert cli.main(["reenact", "astronaut", "astronaut", "-o", str(tmp_path / "x.png"), "--baseline-only"]) == 1
    assert "astronaut" in capsys.readouterr().err


def test_cli_missing_weights_hint(isolated_weights, photos, tmp_path, capsys):
    src, ref = photos
    assert cli.main(["reenact", str(src), str(ref), "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "--synthetic" in err and "dgkit weights download" in err
    assert not (tmp_path / "x.png").exists()


def test_cli_refuses_to_overwrite_inputs(photos, video, capsys):
    src, ref = photos
    before = src.read_bytes()
    assert cli.main(["reenact", str(src), str(ref), "-o", str(src), "--baseline-only"]) == 1
    assert src.read_bytes() == before
    assert cli.main(["reenact", str(src), str(video), "-o", str(video), "--baseline-only"]) == 1
    assert cli.main(["reenact", str(src), str(video), "-o", str(src.with_suffix(".jpg"))]) == 1  # wrong kind
    assert "inputs" in capsys.readouterr().err


def test_cli_no_face(tmp_path, photos, capsys):
    _, ref = photos
    blank = write_image(tmp_path / "blank.png", np.full((200, 200, 3), 90, np.uint8))
    assert cli.main(["reenact", str(blank), str(ref), "-o", str(tmp_path / "o.png"), "--baseline-only"]) == 1
    assert "no face found in" in capsys.readouterr().err
