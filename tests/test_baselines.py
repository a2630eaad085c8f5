"""dgkit.baselines: naive and 3D-relative landmark transfer, piecewise-affine warping."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import PiecewiseAffineTransform

from dgkit.baselines import naive_transfer, piecewise_affine_map, relative_transfer_3d, warp_to_landmarks
from dgkit.errors import InputError, LandmarkError
from dgkit.geometry import edit_expression, fit_pose, head_pose, inter_ocular_distance, mean_face_3d, rotate_landmarks
from dgkit.io import write_image

M = mean_face_3d()


def other_identity() -> np.ndarray:
    """The mean face with a different shape: eyes 25 % further apart, a shorter nose, a wider jaw."""
    lm = M.copy()
    lm[36:42, 0] -= 9.0
    lm[42:48, 0] += 9.0
    lm[31:36, 1] -= 4.0
    lm[0:6, 0] -= 6.0
    lm[11:17, 0] += 6.0
    return lm


# --- landmark transfer --------------------------------------------------------------------------------------
def test_naive_transfer_is_the_reference_itself():
    ref = rotate_landmarks(M, yaw=20)
    out = naive_transfer(ref)
    assert out.shape == (68, 2)
    np.testing.assert_array_equal(out, ref[:, :2])
    out[:] = 0
    assert ref.max() > 0  # a copy


def test_relative_transfer_reproduces_reference_when_shapes_match():
    reference = edit_expression(rotate_landmarks(M * 0.8 + 20, 35, -10, 5), mouth_open=0.3, smile=0.1)
    source = rotate_landmarks(M * 1.7, yaw=-60)  # same shape as the neutral, other pose and scale
    out = relative_transfer_3d(source, reference)
    assert out.shape == (68, 2)
    np.testing.assert_allclose(out, reference[:, :2], atol=1e-6)
    assert relative_transfer_3d(source, reference, return_3d=True).shape == (68, 3)
    # source = reference = neutral: nothing to change
    odd = rotate_landmarks(other_identity(), yaw=25)
    np.testing.assert_allclose(relative_transfer_3d(odd, odd, neutral3d=odd, return_3d=True), odd, atol=1e-6)


def test_relative_transfer_keeps_source_shape_and_takes_reference_pose_and_expression():
    source = rotate_landmarks(other_identity(), yaw=-30)
    reference = edit_expression(rotate_landmarks(M, 40, 10, 0), mouth_open=0.3)
    out = relative_transfer_3d(source, reference, return_3d=True)
    assert np.allclose(tuple(head_pose(out)), (40, 10, 0), atol=1.5)
    frontal = fit_pose(out).to_canonical(out)
    # the source's identity survives: its wider eye distance relative to the nose length, not the mean face's
    src_frontal = fit_pose(source).to_canonical(source)
    ratio = lambda lm: inter_ocular_distance(lm) / np.linalg.norm(lm[27] - lm[33])  # noqa: E731
    assert ratio(frontal) == pytest.approx(ratio(src_frontal), rel=0.02)
    assert ratio(frontal) > 1.25 * ratio(M)
    # the reference's expression arrives: the inner lips open by 0.3 mean-face IODs
    assert frontal[66, 1] - frontal[62, 1] == pytest.approx(0.3 * inter_ocular_distance(M), rel=0.05)
    # the naive transfer instead copies the reference's shape
    assert ratio(fit_pose(reference).to_canonical(reference)) == pytest.approx(ratio(M), rel=0.02)


def test_relative_transfer_never_crosses_lips_or_lids():
    neutral = edit_expression(M, mouth_open=0.3, eyes_open=0.5)  # a neutral with open mouth and wide eyes
    reference = rotate_landmarks(M, yaw=20)  # closed mouth: delta pulls the lips past each other
    out = relative_transfer_3d(M, reference, neutral3d=neutral, return_3d=True)
    frontal = fit_pose(out).to_canonical(out)
    for upper, lower in ((61, 67), (62, 66), (63, 65), (37, 41), (38, 40), (43, 47), (44, 46)):
        assert frontal[lower, 1] - frontal[upper, 1] >= -1e-9


def test_transfer_validation():
    with pytest.raises(LandmarkError, match="lift_to_3d"):
        relative_transfer_3d(M[:, :2], M)
    with pytest.raises(LandmarkError):
        naive_transfer(np.zeros((67, 2)))


# --- warping ------------------------------------------------------------------------------------------------
def textured(h: int = 256, w: int = 256) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x % 256, y % 256, (x * 3 + y * 5) % 256], axis=2)
    return img.astype(np.uint8)


def test_warp_with_identical_landmarks_returns_the_source():
    img = textured()
    lm = M[:, :2]
    out = warp_to_landmarks(img, lm, lm)
    assert out.dtype == np.uint8 and out.shape == (256, 256, 3)
    assert np.abs(out.astype(int) - img).max() <= 1


def test_warp_moves_a_marked_pixel_with_its_landmark():
    img = np.full((256, 256, 3), 128, np.uint8)
    src = M[:, :2]
    x, y = src[30].round().astype(int)
    img[y - 2 : y + 3, x - 2 : x + 3] = (255, 0, 0)  # a red dot around the nose tip
    target = src.copy()
    tx, ty = x + 1, y - 6  # no mesh triangle folds over, none becomes a sliver (see the next test)
    target[30] += (tx - src[30, 0], ty - src[30, 1])  # the landmark lands exactly on pixel (tx, ty)
    out = warp_to_landmarks(img, src, target)
    np.testing.assert_array_equal(out[ty, tx], (255, 0, 0))  # the pixel under the landmark came along
    # move the whole nose (27-35) rigidly: the dot moves with it, undeformed
    target = src.copy()
    target[27:36] += (7.0, -5.0)
    out = warp_to_landmarks(img, src, target)
    red = (out[..., 0] > 200) & (out[..., 1] < 60)
    centre = np.array([np.nonzero(red)[1].mean(), np.nonzero(red)[0].mean()])
    np.testing.assert_allclose(centre, (x + 7.0, y - 5.0), atol=0.5)
    assert red.sum() == 25


def test_warp_output_shape_and_scaled_frames(tmp_path):
    """A 512 photo warped into a 256 crop; paths and (68, 3) landmarks work too."""
    big = textured(512, 512)
    path = write_image(tmp_path / "big.png", big)
    src = M[:, :2] * 2.0
    out = warp_to_landmarks(path, np.column_stack([src, np.zeros(68)]), M, output_shape=(200, 256))
    assert out.shape == (200, 256, 3)
    # the map is the similarity x2 everywhere: output pixel (u, v) samples the photo at (2u, 2v)
    np.testing.assert_array_equal(out[50, 60], big[100, 120])
    with pytest.raises(InputError, match="output_shape"):
        warp_to_landmarks(big, src, M, output_shape=(1, 256))


def test_warp_hides_triangles_that_turn_away():
    """A nose tip pushed across the 29-35 edge folds the mesh; the folded (back-facing) triangle is not drawn,
    so the image is not smeared over itself: the red nose-tip dot stays one blob and no grey wedge covers it."""
    img = np.full((256, 256, 3), 128, np.uint8)
    src = M[:, :2]
    x, y = src[30].round().astype(int)
    img[y - 2 : y + 3, x - 2 : x + 3] = (255, 0, 0)
    target = src.copy()
    target[30] += (12.0, -6.0)  # crosses the line from point 29 to point 35
    out = warp_to_landmarks(img, src, target)
    red = (out[..., 0] > 200) & (out[..., 1] < 60)
    assert red.sum() > 0
    ys, xs = np.nonzero(red)
    assert xs.mean() > x + 6  # the dot went along with its landmark, not left behind at the old place


def test_warp_covers_the_whole_frame_under_large_pose():
    img = textured()
    target = rotate_landmarks(M, yaw=60)[:, :2]
    out = warp_to_landmarks(img, M[:, :2], target)
    assert (out.sum(axis=2) == 0).mean() < 0.01  # no holes (black = outside the mesh or the photo)


def test_piecewise_affine_map_matches_scikit_image():
    rng = np.random.default_rng(3)
    src = np.concatenate([rng.uniform(20, 230, (40, 2)), [[-1, -1], [256, -1], [-1, 256], [256, 256]]])
    dst = src * 1.2 + rng.normal(0, 4, src.shape)
    coords = rng.uniform(-5, 260, (2000, 2))
    expected = (
        PiecewiseAffineTransform.from_estimate(src, dst)(coords)
        if hasattr(PiecewiseAffineTransform, "from_estimate")
        else _old_skimage(src, dst, coords)
    )
    np.testing.assert_allclose(piecewise_affine_map(src, dst, coords), expected, atol=1e-8)


def _old_skimage(src, dst, coords):
    tform = PiecewiseAffineTransform()
    tform.estimate(src, dst)
    return tform(coords)
