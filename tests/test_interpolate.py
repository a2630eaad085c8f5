"""dgkit.interpolate: lerp/slerp maths, PCA, and batched DG paths on synthetic weights."""

from __future__ import annotations

import numpy as np
import pytest

from dgkit import interpolate as ip
from dgkit.errors import InputError
from dgkit.geometry import edit_expression, head_pose, mean_face_3d, pose_landmarks


@pytest.fixture(scope="module")
def refs():
    face = mean_face_3d()
    a = pose_landmarks(face, -20, 0, 0)[:, :2]
    b = edit_expression(pose_landmarks(face, 25, 5, 0), mouth_open=0.3)[:, :2]
    return a, b


@pytest.fixture(scope="module")
def source(synthetic_dg):
    crop = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return synthetic_dg.encode_source(crop)


def test_lerp_endpoints_and_shapes():
    a, b = np.array([1.0, 2.0]), np.array([3.0, -2.0])
    out = ip.lerp(a, b, [0, 0.5, 1])
    assert out.shape == (3, 2)
    assert np.allclose(out, [[1, 2], [2, 0], [3, -2]])
    assert ip.lerp(a, b, 0.25).shape == (2,)
    with pytest.raises(InputError):
        ip.lerp(a, np.zeros(3), 0.5)
    with pytest.raises(InputError):
        ip.lerp(a, b, [[0.5]])


def test_slerp_stays_on_the_unit_circle():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    out = ip.slerp(a, b, np.linspace(0, 1, 7))
    assert np.allclose(np.linalg.norm(out, axis=1), 1)
    assert np.allclose(out[0], a) and np.allclose(out[-1], b)
    assert np.allclose(out[3], np.sqrt([0.5, 0.5]))
    # equal angular steps
    angles = np.arctan2(out[:, 1], out[:, 0])
    assert np.allclose(np.diff(angles), np.pi / 12)


def test_slerp_is_safe_for_parallel_and_antiparallel_codes():
    a = np.arange(1.0, 137.0)
    near = a * 2 + 1e-9
    out = ip.slerp(a, near, np.linspace(0, 1, 5))
    assert np.isfinite(out).all() and np.allclose(out, ip.lerp(a, near, np.linspace(0, 1, 5)))
    anti = ip.slerp(a, -a, [0.0, 0.5, 1.0])
    assert np.isfinite(anti).all() and np.allclose(anti[[0, 2]], [a, -a])
    assert np.isfinite(ip.slerp(np.zeros(4), np.ones(4), 0.5)).all()


def test_interpolate_rejects_unknown_method():
    with pytest.raises(InputError):
        ip.interpolate(np.zeros(2), np.ones(2), 0.5, "cubic")


def test_pca_finds_the_main_direction():
    rng = np.random.default_rng(0)
    direction = np.array([3.0, 4.0, 0.0]) / 5
    x = rng.normal(size=(50, 1)) * 10 * direction + rng.normal(size=(50, 3)) * 0.01
    res = ip.pca(x, 2)
    assert abs(abs(res.components[0] @ direction) - 1) < 1e-3
    assert res.explained_ratio[0] > 0.99 and res.explained_ratio.sum() <= 1 + 1e-12
    assert np.allclose(res.scores, (x - res.mean) @ res.components.T)
    with pytest.raises(InputError):
        ip.pca(np.zeros(3))


def test_interpolate_codes_endpoints_match_the_encoder(synthetic_dg, refs, source):
    a, b = refs
    ends = synthetic_dg.encode_reference(np.stack([a, b])).landmark_code
    for method in ("linear", "spherical"):
        res = ip.interpolate_codes(synthetic_dg, a, b, [0, 0.5, 1], method, source=source, render=False)
        assert res.codes.shape == (3, 136) and res.target_landmarks.shape == (3, 68, 2)
        assert res.sketches.shape == (3, 256, 256) and res.images is None
        assert np.allclose(res.codes[[0, 2]], ends, atol=1e-5)
        assert np.allclose(res.reference_landmarks[1], (a + b) / 2, atol=1e-4)
    lin = ip.interpolate_codes(synthetic_dg, a, b, [0.5], source=source, render=False)
    assert np.allclose(lin.codes[0], ends.mean(0), atol=1e-5)
    decoded = synthetic_dg.decode(lin.codes, source.id_feature)
    assert np.allclose(lin.decoded_landmarks, decoded)


def test_interpolate_landmarks_encodes_interpolated_references(synthetic_dg, refs, source):
    a, b = refs
    res = ip.interpolate_landmarks(synthetic_dg, a, b, [0, 0.5, 1], source=source, render=False)
    assert res.method == "landmarks"
    mid = synthetic_dg.encode_reference((a + b) / 2).landmark_code[0]
    assert np.allclose(res.codes[1], mid, atol=1e-5)
    with pytest.raises(InputError):
        ip.interpolate_landmarks(synthetic_dg, a, b, [0.5], source=None)


@pytest.fixture(scope="module")
def two_sources(synthetic_dg):
    crops = np.random.default_rng(5).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    return crops, synthetic_dg.encode_source(crops)


def test_interpolate_identity_blends_both_codes(synthetic_dg, refs, two_sources):
    _, enc = two_sources
    res = ip.interpolate_identity(synthetic_dg, enc.select(0), enc.select(1), refs[0], [0, 0.5, 1], render=False)
    assert np.allclose(res.id_features[[0, 2]], enc.id_feature, atol=1e-5)
    assert np.allclose(res.style_codes[1], enc.style_code.mean(0), atol=1e-5)
    assert res.target_landmarks.shape == (3, 68, 2) and res.images is None


@pytest.mark.slow
def test_interpolate_identity_from_crops_renders(synthetic_dg, refs, two_sources):
    crops, enc = two_sources
    res = ip.interpolate_identity(synthetic_dg, crops[0], crops[1], refs[0], [0.0, 1.0], "spherical")
    assert np.allclose(res.id_features, enc.id_feature, atol=1e-4)
    assert res.images.shape == (2, 256, 256, 3)


@pytest.mark.slow
def test_interpolate_codes_renders_images(synthetic_dg, refs, source):
    res = ip.interpolate_codes(synthetic_dg, *refs, [0.0, 1.0], "spherical", source=source)
    assert res.images.shape == (2, 256, 256, 3) and res.images.dtype == np.uint8


def test_pose_references_reach_the_requested_angles():
    face = mean_face_3d()
    out = ip.pose_references(face, [-30, 0, 30], "yaw", base=(0, 10, 0))
    assert out.shape == (3, 68, 3)
    for lm, yaw in zip(out, (-30, 0, 30)):
        pose = head_pose(lm)
        assert abs(pose.yaw - yaw) < 1.0 and abs(pose.pitch - 10) < 1.0
    with pytest.raises(InputError):
        ip.pose_references(face, [0], "tilt")


@pytest.mark.slow
def test_pose_sweep_reenacts_each_pose_in_one_batch(synthetic_dg, source):
    sweep = ip.pose_sweep(synthetic_dg, mean_face_3d(), [-40, 40], source=source)
    assert len(sweep) == 2 and sweep.result.image.shape == (2, 256, 256, 3)
    assert np.allclose(sweep.result.reference_landmarks, sweep.reference_landmarks[:, :, :2], atol=1e-4)


def test_pose_sweep_without_source_makes_references_only(synthetic_dg):
    sweep = ip.pose_sweep(synthetic_dg, mean_face_3d(), [-10, 0, 10], axis="pitch")
    assert sweep.result is None and sweep.reference_landmarks.shape == (3, 68, 3)


def test_code_path_explorer_caches_frames(synthetic_dg, refs, source):
    ex = ip.CodePathExplorer(synthetic_dg, *refs, source=source, method="spherical", render=False)
    first = ex.frame(0.333)
    assert ex.frame(0.33) is first and ex.cached == (0.33,)
    direct = ip.interpolate_codes(synthetic_dg, *refs, [0.33], "spherical", source=source, render=False)
    assert np.allclose(first.codes, direct.codes, atol=1e-5)
    with pytest.raises(InputError):
        ip.CodePathExplorer(synthetic_dg, *refs, source=source, method="bezier")
