"""Tests of dgkit.training.data (dataset layout, loaders, features cache) and dgkit.training.prepare.

The prepare-data tests run the mediapipe backend (offline, a few ms per frame) on a tiny input made from the
astronaut sample: a 4-frame test video, a folder of 2 rotated PNGs plus an unreadable .jpg, a blank image,
a mirrored face, and an empty .mp4.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from dgkit.align import ARCFACE_TEMPLATE_256
from dgkit.cli import main
from dgkit.errors import DatasetError, InputError
from dgkit.io import make_test_video, sample_image, write_image
from dgkit.landmarks import backend_status
from dgkit.training import prepare as P
from dgkit.training.data import (
    FaceDataset,
    LandmarkDataset,
    identity_features,
    load_manifest,
    make_synthetic_dataset,
    write_index,
)

mediapipe_ok = backend_status().get("mediapipe", (False, ""))[0]
needs_mediapipe = pytest.mark.skipif(not mediapipe_ok, reason="mediapipe backend not available")


# --- synthetic dataset --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """3 identities x 2 videos x 4 frames (read-only for tests: copy before changing)."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("synth") / "ds", seed=0)


def test_synthetic_round_trip(synth):
    m = load_manifest(synth)
    assert m.identities == ["id00000", "id00001", "id00002"]
    assert m.num_frames == 24 and m.crop == 256 and m.backend == "synthetic" and m.skipped == {}
    assert m.landmarks.shape == (24, 68, 2) and m.landmarks.dtype == np.float32
    with (synth / "frames.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["index"]) for r in rows] == list(range(24))
    assert rows[5]["crop_path"] == "crops/id00000/vid01/00001.png"
    assert rows[5]["sketch_path"] == "sketches/id00000/vid01/00001.png"
    crop = cv2.imread(str(synth / rows[5]["crop_path"]))
    sketch = cv2.imread(str(synth / rows[5]["sketch_path"]), cv2.IMREAD_UNCHANGED)
    assert crop.shape == (256, 256, 3) and sketch.shape == (256, 256) and set(np.unique(sketch)) == {0, 255}
    # the sketch is drawn from the stored landmarks
    from dgkit.sketch import draw_sketch

    np.testing.assert_array_equal(sketch, draw_sketch(m.landmarks[5], "reference"))
    # faces sit near the ArcFace template (eye centres, nose tip) with pose/expression variation
    eyes = np.stack([m.landmarks[:, 36:42].mean(1), m.landmarks[:, 42:48].mean(1)], axis=1)
    assert np.abs(eyes.mean(0) - ARCFACE_TEMPLATE_256[:2]).max() < 12
    assert m.landmarks[:, 30, 0].std() > 3  # yaw varies


def test_synthetic_is_deterministic_and_refuses_non_empty(tmp_path):
    a = make_synthetic_dataset(tmp_path / "a", identities=2, videos=1, frames=2, seed=3)
    b = make_synthetic_dataset(tmp_path / "b", identities=2, videos=1, frames=2, seed=3)
    c = make_synthetic_dataset(tmp_path / "c", identities=2, videos=1, frames=2, seed=4)
    np.testing.assert_array_equal(np.load(a / "landmarks.npy"), np.load(b / "landmarks.npy"))
    assert (a / "crops/id00001/vid00/00001.png").read_bytes() == (b / "crops/id00001/vid00/00001.png").read_bytes()
    assert not np.allclose(np.load(a / "landmarks.npy"), np.load(c / "landmarks.npy"))
    before = (a / "manifest.json").read_bytes()
    with pytest.raises(DatasetError, match="not an empty folder"):
        make_synthetic_dataset(a)
    assert (a / "manifest.json").read_bytes() == before
    with pytest.raises(InputError):
        make_synthetic_dataset(tmp_path / "d", frames=0)


def test_landmark_dataset_items(synth):
    m = load_manifest(synth)
    ds = LandmarkDataset(synth, seed=1)
    assert len(ds) == 24
    item = ds[7]
    assert item["landmarks"].shape == (136,) and item["landmarks"].dtype == torch.float32
    # normalized /256, interleaved x0, y0, x1, y1, ...
    np.testing.assert_allclose(item["landmarks"][:4].numpy(), m.landmarks[7, :2].ravel() / 256, rtol=1e-6)
    assert 0.0 < float(item["landmarks"].min()) and float(item["landmarks"].max()) < 1.0
    assert item["identity"].dtype == torch.int64 and int(item["identity"]) == 0
    assert item["index"] == 7
    src, other = item["source_index"], item["other_index"]
    assert src != 7 and m.identity_ids[src] == 0
    assert m.identity_ids[other] != 0 and int(item["other_identity"]) == m.identity_ids[other]
    # deterministic per (seed, epoch, index); another epoch draws other pairs
    assert LandmarkDataset(synth, seed=1)[7]["source_index"] == src
    pairs0 = [ds[i]["source_index"] for i in range(24)]
    ds.set_epoch(1)
    assert [ds[i]["source_index"] for i in range(24)] != pairs0
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5)))
    assert batch["landmarks"].shape == (5, 136) and batch["identity"].shape == (5,)
    assert batch["source_index"].dtype == torch.int64


def test_face_dataset_items(synth):
    m = load_manifest(synth)
    ds = FaceDataset(synth)
    assert len(ds) == 24
    item = ds[13]
    for key in ("image", "sketch", "reference_image"):
        assert item[key].shape == (3, 256, 256) and item[key].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert float(item["image"].max()) > 0.5  # [0,1] range, not [0,1/255]
    assert set(torch.unique(item["sketch"]).tolist()) == {0.0, 1.0}  # training intensity: lines 1.0
    png = cv2.imread(str(m.sketch_file(13)), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(item["sketch"][1].numpy(), (png > 0).astype(np.float32))
    rgb = cv2.cvtColor(cv2.imread(str(m.crop_file(13))), cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy() * 255, rgb, atol=1e-3)
    ref = item["reference_index"]
    assert ref != 13 and m.identity_ids[ref] == int(item["identity"]) == 1
    np.testing.assert_array_equal(item["reference_image"], ds[ref]["image"])
    # transform hook
    flipped = FaceDataset(synth, transform=lambda d: {**d, "image": d["image"].flip(-1)})[13]
    np.testing.assert_array_equal(flipped["image"], item["image"].flip(-1))
    with pytest.raises(IndexError):
        ds[24]


def test_identities_differ(synth):
    m = load_manifest(synth)
    ds = FaceDataset(synth)
    colour = torch.stack([ds[i]["image"].mean(dim=(1, 2)) for i in range(0, 24, 2)]).numpy()  # (12, 3)
    ids = m.identity_ids[0:24:2]
    means = np.stack([colour[ids == k].mean(0) for k in range(3)])
    within = max(np.abs(colour[ids == k] - means[k]).max() for k in range(3))
    between = min(np.abs(means[a] - means[b]).max() for a in range(3) for b in range(a + 1, 3))
    assert between > 2 * within
    # face shapes differ too: frontalized per-identity means are further apart than 1 px
    centred = m.landmarks - m.landmarks.mean(axis=1, keepdims=True)
    shape_means = np.stack([centred[m.identity_ids == k].mean(0) for k in range(3)])
    assert np.abs(shape_means[0] - shape_means[1]).mean() > 1.0


# --- layout errors and the pair rule ------------------------------------------------------------------------
def test_bad_layout_errors(tmp_path, synth):
    with pytest.raises(DatasetError, match="does not exist"):
        load_manifest(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"manifest\.json.*prepare-data"):
        load_manifest(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(synth, broken)
    (broken / "crops/id00002/vid00/00003.png").unlink()
    with pytest.raises(DatasetError, match=r"1 file\(s\).*crops/id00002/vid00/00003\.png"):
        load_manifest(broken)
    with pytest.raises(DatasetError, match="crops/id00002/vid00/00003.png"):
        FaceDataset(load_manifest(broken, check_files=False))[19]  # row 19 = id00002/vid00/00003
    shutil.copy(synth / "crops/id00002/vid00/00003.png", broken / "crops/id00002/vid00/00003.png")
    np.save(broken / "landmarks.npy", np.zeros((3, 68, 2), np.float32))
    with pytest.raises(DatasetError, match=r"shape \(3, 68, 2\), expected \(24, 68, 2\)"):
        load_manifest(broken)
    meta = json.loads((synth / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**meta, "format": "other"}))
    with pytest.raises(DatasetError, match="dgkit-dataset"):
        load_manifest(broken)


def test_single_frame_identities(tmp_path, synth):
    m = load_manifest(synth)
    root = tmp_path / "ds"
    shutil.copytree(synth, root)
    # keep one frame of id00000 and all frames of the two others
    keep = [0] + [i for i in range(24) if m.identity_ids[i] != 0]
    write_index(root, [(m.frames[i].identity, m.frames[i].video, m.frames[i].frame) for i in keep],
                m.landmarks[keep], backend="synthetic")
    with pytest.warns(UserWarning, match="1 identity with one frame left out"):
        lds = LandmarkDataset(root)
    assert len(lds) == 16 and 0 not in lds.indices
    with pytest.warns(UserWarning, match="own style reference"):
        fds = FaceDataset(root)
    assert len(fds) == 17 and fds[0]["reference_index"] == 0
    assert load_manifest(root).single_frame_identities == ["id00000"]
    lonely = make_synthetic_dataset(tmp_path / "lonely", identities=2, videos=1, frames=1)
    with pytest.raises(DatasetError, match="no identity has two or more frames"):
        LandmarkDataset(lonely)


# --- identity features --------------------------------------------------------------------------------------
class _TinyVGG(nn.Module):
    """Stands in for VGGFace: (N,3,256,256) -> (N,4096), counting the images it sees."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4096)
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return torch.relu(self.fc(x.mean(dim=(2, 3))))


def test_identity_features_cache(tmp_path, synth):
    root = tmp_path / "ds"
    shutil.copytree(synth, root)
    vgg = _TinyVGG()
    feats = identity_features(root, vgg, batch_size=5)
    assert feats.shape == (24, 4096) and feats.dtype == np.float32 and vgg.seen == 24
    img = FaceDataset(root)[9]["image"][None]
    np.testing.assert_allclose(feats[9], vgg(img)[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    vgg.seen = 0
    np.testing.assert_array_equal(identity_features(root, vgg), feats)
    assert vgg.seen == 0  # cached
    with torch.no_grad():
        vgg.fc.bias += 1.0  # other weights: the cache is stale
    identity_features(root, vgg)
    assert vgg.seen == 24
    with pytest.raises(InputError):
        identity_features(root, "vgg")


@pytest.mark.slow
def test_identity_features_with_dg(tmp_path, synth, synthetic_dg):
    root = tmp_path / "ds"
    shutil.copytree(synth, root)
    feats = identity_features(root, synthetic_dg, batch_size=8)
    crop = cv2.cvtColor(cv2.imread(str(root / "crops/id00001/vid00/00002.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(feats[10], synthetic_dg.encode_source(crop).id_feature[0], rtol=1e-4, atol=1e-5)


# --- prepare-data -------------------------------------------------------------------------------------------
def _make_input(root: Path) -> Path:
    """alice: v1.mp4 (4 frames), v2/ (2 PNGs + an unreadable .jpg); bob: v1/ (blank + a face), empty.mp4."""
    face = cv2.resize(sample_image(), (256, 256), interpolation=cv2.INTER_AREA)
    make_test_video(root / "alice" / "v1.mp4", n_frames=4)
    for i, angle in enumerate((0.0, 12.0)):
        rotated = cv2.warpAffine(face, cv2.getRotationMatrix2D((128, 128), angle, 1.0), (256, 256))
        write_image(root / "alice" / "v2" / f"f{i}.png", rotated)
    (root / "alice" / "v2" / "broken.jpg").write_bytes(b"this is not a jpeg")
    write_image(root / "bob" / "v1" / "blank.png", np.full((200, 200, 3), 128, np.uint8))
    write_image(root / "bob" / "v1" / "face.png", face[:, ::-1].copy())
    (root / "bob" / "empty.mp4").write_bytes(b"")
    return root


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def raw_input(tmp_path_factory) -> Path:
    return _make_input(tmp_path_factory.mktemp("raw") / "input")


@pytest.fixture(scope="module")
def prepared(raw_input, tmp_path_factory):
    before = _snapshot(raw_input)
    out = tmp_path_factory.mktemp("prep") / "ds"
    report = P.prepare_dataset(raw_input, out, backend="mediapipe", progress=False)
    return out, report, before


@needs_mediapipe
def test_prepare_data(raw_input, prepared):
    out, report, before = prepared
    assert _snapshot(raw_input) == before  # nothing deleted or modified
    assert report.num_frames == 7 and report.num_identities == 2 and report.num_videos == 4
    assert report.skipped == {"no_face": 1, "unreadable": 1, "bad_video": 1, "single_frame_identity": 1}
    assert report.backend == "mediapipe" and report.resumed_videos == 0
    assert "no_face: 1" in str(report)
    m = load_manifest(out)
    assert m.identities == ["alice", "bob"] and m.num_frames == 7 and m.skipped == report.skipped
    assert [f.frame for f in m.frames] == ["00000", "00001", "00002", "00003", "f0", "f1", "face"]
    assert [f.video for f in m.frames][-1] == "v1" and m.single_frame_identities == ["bob"]
    # crops are ArcFace-aligned: the eye centres land on the template
    eyes = np.stack([m.landmarks[:, 36:42].mean(1), m.landmarks[:, 42:48].mean(1)], axis=1)
    assert np.abs(eyes - ARCFACE_TEMPLATE_256[None, :2]).max() < 6
    with pytest.warns(UserWarning, match="bob"):
        item = FaceDataset(m)[4]
    assert item["image"].shape == (3, 256, 256) and float(item["image"].std()) > 0.1


@needs_mediapipe
def test_prepare_resumes_without_detection(raw_input, prepared, tmp_path, monkeypatch):
    out, first, _ = prepared
    calls = []
    real = P.detect_landmarks
    monkeypatch.setattr(P, "detect_landmarks", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = P.prepare_dataset(raw_input, out, backend="mediapipe", progress=False)
    assert calls == [] and again.resumed_videos == 4
    assert again.num_frames == first.num_frames and again.skipped == first.skipped
    # a new video in the input: only its frames are detected
    inp, out2 = tmp_path / "input", tmp_path / "ds"
    shutil.copytree(raw_input, inp)
    shutil.copytree(out, out2)
    shutil.copytree(inp / "alice" / "v2", inp / "bob" / "v3")
    (inp / "bob" / "v3" / "broken.jpg").unlink()
    third = P.prepare_dataset(inp, out2, backend="mediapipe", progress=False)
    assert len(calls) == 2 and third.resumed_videos == 4 and third.num_frames == 9
    assert "single_frame_identity" in third.skipped and third.skipped["single_frame_identity"] == 0


@needs_mediapipe
@pytest.mark.slow
def test_prepare_workers_match(raw_input, prepared, tmp_path):
    out, _, _ = prepared
    par = P.prepare_dataset(raw_input, tmp_path / "par", backend="mediapipe", workers=2, progress=False)
    assert par.num_frames == 7
    assert (tmp_path / "par" / "frames.csv").read_text() == (out / "frames.csv").read_text()
    np.testing.assert_allclose(np.load(tmp_path / "par" / "landmarks.npy"), np.load(out / "landmarks.npy"), atol=1e-4)


def test_prepare_refuses_bad_paths(raw_input, tmp_path):
    before = _snapshot(raw_input)
    with pytest.raises(DatasetError, match="inside the input"):
        P.prepare_dataset(raw_input, raw_input / "out", progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not a dgkit dataset"):
        P.prepare_dataset(raw_input, foreign, progress=False)
    flat = tmp_path / "flat"
    flat.mkdir()
    write_image(flat / "photo.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"<identity>/<video>"):
        P.prepare_dataset(flat, tmp_path / "o", progress=False)
    with pytest.raises(InputError, match="every"):
        P.prepare_dataset(raw_input, tmp_path / "o", every=0, progress=False)
    assert _snapshot(raw_input) == before and not (raw_input / "out").exists()


@needs_mediapipe
def test_prepare_every_and_max_frames(raw_input, tmp_path):
    report = P.prepare_dataset(raw_input, tmp_path / "ds", backend="mediapipe", every=2, max_frames_per_video=1,
                               progress=False)
    m = load_manifest(tmp_path / "ds")
    # v2/ sorted: broken.jpg, f0.png, f1.png -> every 2nd: broken, f1 -> first 1: broken (unreadable)
    # bob/v1/ sorted: blank.png, face.png -> blank (no face)
    assert [(f.video, f.frame) for f in m.frames] == [("v1", "00000")]
    assert report.skipped == {"unreadable": 1, "no_face": 1, "bad_video": 1, "single_frame_identity": 1}


@needs_mediapipe
def test_cli_prepare_data(raw_input, tmp_path, capsys):
    assert main(["prepare-data", str(raw_input), str(tmp_path / "ds"), "--backend", "mediapipe", "--quiet",
                 "--max-frames", "2"]) == 0
    out = capsys.readouterr().out
    assert "frames of 2 identities" in out and load_manifest(tmp_path / "ds").num_frames == 4
    assert main(["prepare-data", str(raw_input), str(raw_input / "x"), "--quiet"]) == 1
    assert "dgkit: error: output" in capsys.readouterr().err
