"""User mistakes given to the DG pipeline's public steps raise dgkit errors that say what to do.

(Checkpoint and weight-file problems are covered in test_checkpoint.py and test_weights.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

import dgkit
from dgkit.errors import DgkitError, InputError, LandmarkError, WeightsNotFoundError
from dgkit.geometry import mean_face_3d


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """(68,2) float32 plausible landmarks, crop pixels."""
    return mean_face_3d("crop")[:, :2].astype(np.float32)


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("source", "phrase"),
    [
        (np.zeros((256, 256, 3), np.float32), "uint8"),
        (np.zeros((128, 128, 3), np.uint8), "(256,256,3)"),
        (np.zeros((256, 256, 4), np.uint8), "(256,256,3)"),
        (np.zeros((256, 256), np.uint8), "align a photo first"),
        (np.zeros((0, 256, 256, 3), np.uint8), "empty"),
    ],
)
def test_bad_sources(synthetic_dg, source, phrase):
    with pytest.raises(InputError, match=None) as info:
        synthetic_dg.encode_source(source)
    assert phrase in str(info.value)


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda f: f[:67], "(68,2)"),
        (lambda f: np.where(np.arange(68)[:, None] == 5, np.nan, f), "NaN"),
        (lambda f: f / 256, "normalized"),
        (lambda f: f * 20, "image pixels"),
        (lambda f: f.astype(str), "numeric"),
        (lambda f: np.zeros((0, 68, 2)), "empty"),
    ],
    ids=["67-points", "nan", "normalized", "image-pixels", "strings", "empty-batch"],
)
def test_bad_reference_landmarks(synthetic_dg, face, make, phrase):
    with pytest.raises(LandmarkError) as info:
        synthetic_dg.encode_reference(make(face))
    assert phrase in str(info.value)


def test_nan_reports_the_batch_item(synthetic_dg, face):
    batch = np.stack([face, face, face])
    batch[2, 10, 0] = np.nan
    with pytest.raises(LandmarkError, match=r"batch items \[2\]"):
        synthetic_dg.encode_reference(batch)


def test_batch_mismatch_names_both_sizes(synthetic_dg, face, crop):
    enc = synthetic_dg.encode_source(np.stack([crop, crop]))
    with pytest.raises(InputError, match="2 sources but 3 references"):
        synthetic_dg.reenact(enc, np.stack([face] * 3))


def test_degenerate_reference_eyes(synthetic_dg, face, crop):
    flat = face.copy()
    flat[36:42] = flat[36]  # the whole left eye on one point: zero eye width
    with pytest.raises(LandmarkError, match="zero width"):
        synthetic_dg.reenact(crop, flat)


@pytest.mark.parametrize(
    ("call", "phrase"),
    [
        (lambda dg, f: dg.decode(np.zeros(135), np.zeros(4096)), "landmark_code"),
        (lambda dg, f: dg.decode(np.zeros(136), np.full(4096, np.nan)), "NaN"),
        (lambda dg, f: dg.generate(np.zeros((256, 256), np.uint8), np.zeros(127)), "style_code"),
        (lambda dg, f: dg.generate(np.zeros((256, 256), np.float32), np.zeros(128)), "uint8"),
        (lambda dg, f: dg.generate(np.zeros((2, 256, 256), np.uint8), np.zeros((3, 128))), "batch mismatch"),
    ],
    ids=["code-width", "nan-feature", "style-width", "float-sketch", "sketch-style-batches"],
)
def test_bad_intermediates(synthetic_dg, face, call, phrase):
    with pytest.raises(InputError) as info:
        call(synthetic_dg, face)
    assert phrase in str(info.value)


def test_bad_sketch_intensity(synthetic_dg):
    with pytest.raises(InputError, match="demo"):
        synthetic_dg.sketch_intensity = "bright"
    assert synthetic_dg.sketch_intensity == "demo"


def test_align_face_bad_input(face):
    photo = np.zeros((300, 400, 3), np.uint8)
    with pytest.raises(LandmarkError, match="NaN"):
        dgkit.align_face(photo, np.full((68, 2), np.nan))
    with pytest.raises(LandmarkError, match="shape"):
        dgkit.align_face(photo, face[:5])
    with pytest.raises(DgkitError):
        dgkit.align_face(np.zeros((300, 400), np.float64), face)


def test_draw_sketch_bad_input(face):
    with pytest.raises(InputError, match="kind"):
        dgkit.sketch.draw_sketch(face, kind="photo")
    with pytest.raises(LandmarkError, match="NaN"):
        dgkit.sketch.draw_sketch(np.full((68, 2), np.nan))


def test_inputs_are_not_modified(synthetic_dg, face, crop):
    face_before, crop_before = face.copy(), crop.copy()
    synthetic_dg.reenact(crop, face)
    np.testing.assert_array_equal(face, face_before)
    np.testing.assert_array_equal(crop, crop_before)


def test_load_dg_without_weights_lists_every_file(isolated_weights):
    with pytest.raises(WeightsNotFoundError) as info:
        dgkit.load_dg()
    message = str(info.value)
    for name in ("501500_nets_ema.ckpt", "30000_nets_ema.ckpt", "vgg_face_dag.pth", "dgkit weights download"):
        assert name in message


def test_load_dg_falls_back_to_labelled_synthetic_weights(isolated_weights, monkeypatch, synthetic_weights):
    cache = isolated_weights / "cache"  # $DGKIT_CACHE: the cached synthetic folder is found there, not rebuilt
    cache.mkdir(exist_ok=True)
    (cache / "synthetic-seed1234").symlink_to(synthetic_weights, target_is_directory=True)
    dg = dgkit.load_dg(allow_synthetic=True)
    assert dg.weights.trained is False
    assert dg.weights.label == "synthetic (untrained)"


def test_weights_labels(tmp_path):
    import json

    from dgkit.weights import weights_info

    paths = {"rfg": tmp_path / "expr/checkpoints/501500_nets_ema.ckpt"}
    assert weights_info(paths, synthetic=True).label == "synthetic (untrained)"
    assert (weights_info(paths, synthetic=False).label, weights_info(paths, synthetic=False).trained) == (
        "official", True)
    marker = {"trained_by": "dgkit", "files": {"rfg": {"synthetic": False}, "idsg": {"synthetic": False},
                                               "vgg_face": {"synthetic": True}}}
    (tmp_path / "DGKIT_TRAINED.json").write_text(json.dumps(marker))
    info = weights_info(paths, synthetic=False)
    assert (info.label, info.trained) == ("dgkit-trained (synthetic vgg_face)", False)
    marker["files"]["vgg_face"]["synthetic"] = False
    (tmp_path / "DGKIT_TRAINED.json").write_text(json.dumps(marker))
    assert (weights_info(paths, synthetic=False).label, weights_info(paths, synthetic=False).trained) == (
        "dgkit-trained", True)


def test_fp32_policy_sets_and_restores_cuda_flags():
    import torch

    from dgkit.pipeline import _fp32_on_cuda

    saved = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        with _fp32_on_cuda(torch.device("cuda"), allow_tf32=False):  # flags only: no GPU needed
            assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is True
        with _fp32_on_cuda(torch.device("cpu"), allow_tf32=False):
            assert torch.backends.cudnn.allow_tf32 is True  # CPU: untouched
    finally:
        torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.slow
def test_synthetic_weights_of_any_seed_are_labelled_untrained(tmp_path):
    # before the folder marker was consulted, any seed but 1234 was labelled "official"
    dgkit.weights.make_synthetic_weights(tmp_path / "seed7", seed=7)
    dg = dgkit.load_dg(tmp_path / "seed7")
    assert (dg.weights.label, dg.weights.trained) == ("synthetic (untrained)", False)
