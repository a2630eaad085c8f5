"""Conformance with the released demo: every key of golden_seed1234.npz through dgkit's public API.

The golden file holds inputs and outputs of the original code on RECIPE's synthetic weights (seed 1234).
Tolerances follow SPEC §6: networks atol 1e-5 (generator 1e-4), renderers and alignment exact.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import dgkit
from dgkit.pipeline import to_uint8_image

GOLDEN = np.load(Path(__file__).parent / "data" / "golden_seed1234.npz")
pytestmark = pytest.mark.slow


def golden(key: str) -> np.ndarray:
    return GOLDEN[key]


def px(normalized_136: np.ndarray) -> np.ndarray:
    """(N,136) normalized -> (N,68,2) crop pixels (exact: x256)."""
    return normalized_136.reshape(len(normalized_136), 68, 2) * 256


def rgb(bgr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bgr[..., ::-1])


@pytest.fixture(scope="module")
def dg(synthetic_weights):
    # DGKIT_TEST_DEVICE=cuda runs the same checks on a GPU (not needed for CI)
    return dgkit.load_dg(synthetic_weights, device=os.environ.get("DGKIT_TEST_DEVICE", "cpu"))


def assert_uint8_faces_match(ours: np.ndarray, ref_uint8: np.ndarray, ref_float: np.ndarray | None = None):
    """uint8 faces: identical except +-1 where 255*y lies within the generator tolerance of an integer."""
    diff = np.abs(ours.astype(int) - ref_uint8.astype(int))
    assert diff.max() <= 1
    if ref_float is not None:
        frac = ref_float * 255 - np.floor(ref_float * 255)
        near_boundary = (frac < 255 * 1e-4) | (frac > 1 - 255 * 1e-4)
        assert np.all(near_boundary[diff > 0])
    assert (diff > 0).mean() < 0.01


# --- preprocessing: exact -----------------------------------------------------------------------------------------
def test_alignment_matrix_crop_and_landmarks_are_exact():
    image = rgb(golden("i_image_bgr"))
    np.testing.assert_array_equal(dgkit.alignment_matrix(golden("i_landmarks")), golden("i_M"))
    crop, lm = dgkit.align_face(image, golden("i_landmarks"))
    np.testing.assert_array_equal(crop, rgb(golden("i_crop")))
    np.testing.assert_array_equal((lm / 256).reshape(-1), golden("i_LM"))
    assert lm.dtype == np.float32


@pytest.mark.parametrize("case", range(3))
def test_reference_sketch_matches_drawshape(case):
    sketch = dgkit.draw_sketch(golden("h_landmarks_px")[case], kind="reference")
    np.testing.assert_array_equal(sketch, golden("h_drawshape")[case][..., 0])
    assert dgkit.sketch_branch(golden("h_landmarks_px")[case], "reference") == ["frontal", "right", "left"][case]


def test_reference_sketch_of_aligned_frame():
    np.testing.assert_array_equal(dgkit.draw_sketch(golden("i_LM").reshape(68, 2) * 256, "reference"),
                                  golden("i_sketch")[..., 0])


@pytest.mark.parametrize("case", range(3))
def test_target_sketch_matches_show_map_all_branches(case):
    lm = px(golden("e2_posed_lm_norm"))[case]
    np.testing.assert_array_equal(dgkit.draw_sketch(lm, kind="target"), golden("e2_show_map_raw")[case][0])


def test_eye_correction_is_exact():
    out = dgkit.correct_eyes(px(golden("c_dec_out")), px(golden("b_lm_ref")))
    np.testing.assert_array_equal(out.reshape(2, 136) / 256, golden("d_turn_eye"))


# --- networks --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 2])
def test_encode_source(dg, batch):
    enc = dg.encode_source(rgb(golden("a_src_bgr_uint8"))[:batch])
    np.testing.assert_allclose(enc.id_feature, golden("a_vgg_fc7")[:batch], atol=1e-5, rtol=0)
    np.testing.assert_allclose(enc.style_code, golden("f_style")[:batch], atol=1e-5, rtol=0)


def test_idsg_encode_decode(dg):
    ref = dg.encode_reference(px(golden("b_lm_ref")))
    np.testing.assert_allclose(ref.landmark_code, golden("b_lm_code"), atol=1e-5, rtol=0)
    decoded = dg.decode(golden("b_lm_code"), golden("a_vgg_fc7"))
    np.testing.assert_allclose(decoded.reshape(2, 136) / 256, golden("c_dec_out"), atol=1e-5, rtol=0)


def test_target_sketches_of_golden_case(dg):
    sketch = dg.draw(px(golden("d_turn_eye")))
    np.testing.assert_array_equal(sketch, golden("e_show_map_raw")[:, 0])
    # the demo's uint8 round trip: 255 -> 255*255 wraps to 1
    np.testing.assert_array_equal((sketch > 0).astype(np.uint8), golden("e_tensor_to_np")[..., 0])


@pytest.mark.parametrize("intensity,scale", [("demo", 1.0), ("train", 255.0)])
def test_generator_input_intensity(dg, intensity, scale):
    dg.sketch_intensity = intensity
    try:
        x = dg.sketch_tensor(golden("e_show_map_raw")[:, 0]).cpu().numpy()
    finally:
        dg.sketch_intensity = "demo"
    np.testing.assert_array_equal(x, golden("e_gen_input") * np.float32(scale))


@pytest.mark.parametrize("intensity,key", [("demo", "g_gen_out"), ("train", "g2_gen_out_trainscale")])
def test_generator(dg, intensity, key):
    dg.sketch_intensity = intensity
    try:
        out = dg.generate(golden("e_show_map_raw")[:, 0], golden("f_style"), output="float")
        out_u8 = dg.generate(golden("e_show_map_raw")[:, 0], golden("f_style"))
    finally:
        dg.sketch_intensity = "demo"
    ref = golden(key).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
    if intensity == "demo":
        assert_uint8_faces_match(out_u8, golden("g_tensor_to_np"), ref)


def test_uint8_conversion_truncates_like_the_demo():
    import torch

    np.testing.assert_array_equal(to_uint8_image(torch.from_numpy(golden("g_gen_out"))), golden("g_tensor_to_np"))


# --- end to end ------------------------------------------------------------------------------------------------------
def test_end_to_end_batch4_matches_demo_loop(dg):
    """Case j: four sources, one aligned reference (repeated), the demo's full loop body."""
    sources = rgb(golden("j_src_bgr_uint8"))
    reference = golden("i_LM").reshape(68, 2) * 256
    out = dg.reenact(sources, reference)
    assert len(out) == 4
    np.testing.assert_allclose(out.style_code, golden("j_style"), atol=1e-5, rtol=0)
    np.testing.assert_allclose(out.reference_landmarks.reshape(4, 136) / 256, golden("j_shape_all"), atol=0)
    np.testing.assert_array_equal(out.sketch, golden("j_lm_fake")[..., 0] * 255)
    assert_uint8_faces_match(out.image, golden("j_img_fake_rgb"))


def test_end_to_end_batch1_equals_batch4_item(dg):
    sources = rgb(golden("j_src_bgr_uint8"))
    reference = golden("i_LM").reshape(68, 2) * 256
    single = dg.reenact(sources[2], reference)
    assert single.image.shape == (1, 256, 256, 3)
    np.testing.assert_array_equal(single.sketch[0], golden("j_lm_fake")[2][..., 0] * 255)
    assert_uint8_faces_match(single.image[0], golden("j_img_fake_rgb")[2])


def test_reenact_from_encoding_reuses_source(dg):
    sources = rgb(golden("j_src_bgr_uint8"))[:2]
    enc = dg.encode_source(sources)
    a = dg.reenact(enc, px(golden("b_lm_ref")))
    b = dg.reenact(sources, px(golden("b_lm_ref")))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.id_feature, b.id_feature)
    np.testing.assert_array_equal(a.style_code, b.style_code)
    assert a.weights == "synthetic (untrained)"
