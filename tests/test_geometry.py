"""dgkit.geometry: mean face, head pose signs and round trips, expression edits, 2D -> 3D lifting."""

from __future__ import annotations

import itertools
import json
from importlib import resources

import numpy as np
import pytest

from dgkit.errors import InputError, LandmarkError
from dgkit.face68 import check_landmarks
from dgkit.geometry import (
    RIGID_POINTS,
    HeadPose,
    edit_expression,
    fit_pose,
    frontalize,
    head_pose,
    inter_ocular_distance,
    lift_to_3d,
    mean_face_3d,
    pose_from_rotation,
    pose_landmarks,
    rotate_landmarks,
    rotation_matrix,
)

TEMPLATE = np.array(
    [(92.5613, 103.3926), (163.0357, 103.0028), (128.0225, 143.4732), (99.0707, 184.7310), (157.4319, 184.4082)]
)
M = mean_face_3d()


def five(lm: np.ndarray) -> np.ndarray:
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])[:, :2]


def pose_close(pose: HeadPose, expected, atol: float) -> bool:
    return np.allclose(tuple(pose), expected, atol=atol)


# --- mean face ----------------------------------------------------------------------------------------------
def test_mean_face_sits_on_the_arcface_template():
    assert M.shape == (68, 3) and M.dtype == np.float64
    err = np.linalg.norm(five(M) - TEMPLATE, axis=1)
    assert err.max() < 4.0 and np.sqrt((err**2).mean()) < 2.5
    assert abs(M[:, 2].mean()) < 1e-3
    assert M[30, 2] == M[:, 2].min()  # the nose tip is closest to the viewer (z grows away)
    np.testing.assert_allclose(M[[61, 62, 63]], M[[67, 66, 65]])  # neutral: inner lips closed
    # left/right symmetric about x = 128 (jaw 0 <-> 16)
    np.testing.assert_allclose(M[0, 0] + M[16, 0], 2 * M[8, 0], atol=1e-6)


def test_mean_face_frames_and_copies():
    a = mean_face_3d()
    a[:] = 0
    assert mean_face_3d().max() > 0
    unit = mean_face_3d("unit")
    np.testing.assert_allclose(unit.mean(0), 0, atol=1e-12)
    assert inter_ocular_distance(unit) == pytest.approx(1.0)
    with pytest.raises(InputError, match="crop"):
        mean_face_3d("image")


# --- rotations and pose -------------------------------------------------------------------------------------
def test_rotation_matrix_and_angles_are_inverse():
    rng = np.random.default_rng(1)
    for yaw, pitch, roll in rng.uniform([-179, -89, -179], [179, 89, 179], (50, 3)):
        r = rotation_matrix(yaw, pitch, roll)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        assert pose_close(pose_from_rotation(r), (yaw, pitch, roll), 1e-9)


def test_head_pose_of_mean_face_is_zero():
    assert pose_close(head_pose(M), (0, 0, 0), 1e-9)
    assert fit_pose(M).rms < 1e-9


@pytest.mark.parametrize(
    "angles", [(40, 0, 0), (-40, 0, 0), (0, 25, 0), (0, -25, 0), (0, 0, 30), (0, 0, -30), (30, -20, 15), (75, 10, -5)]
)
def test_head_pose_recovers_rotations(angles):
    assert pose_close(head_pose(rotate_landmarks(M, *angles)), angles, 1e-6)
    noisy = rotate_landmarks(M + np.random.default_rng(0).normal(0, 1.5, M.shape), *angles)
    assert pose_close(head_pose(noisy), angles, 2.0)


def test_head_pose_is_scale_and_translation_invariant():
    lm = rotate_landmarks(M, 35, -10, 5) * 2.7 + np.array([400.0, -30.0, 12.0])
    assert pose_close(head_pose(lm), (35, -10, 5), 1e-6)


def test_pose_signs_in_the_image():
    c = M.mean(0)
    turned = rotate_landmarks(M, yaw=30)
    assert turned[30, 0] > M[30, 0] + 10  # yaw > 0: the nose moves to image right
    assert turned[30, 0] > turned[42, 0] - 20
    up = rotate_landmarks(M, pitch=20)
    assert up[30, 1] < M[30, 1] - 5  # pitch > 0: the nose moves up (y down)
    cw = rotate_landmarks(M, roll=20)
    assert cw[45, 1] > M[45, 1] + 5 and cw[36, 1] < M[36, 1] - 5  # roll > 0: clockwise on screen
    np.testing.assert_allclose(cw.mean(0), c)  # about the centroid


@pytest.mark.parametrize("yaw", [-90, 90])
def test_profile_views_are_finite(yaw):
    lm = rotate_landmarks(M, yaw=yaw)
    assert np.all(np.isfinite(lm))
    assert pose_close(head_pose(lm), (yaw, 0, 0), 1e-6)
    xs = lm[:, 0]
    assert np.ptp(xs) < np.ptp(M[:, 0])  # a profile is narrower than the frontal face


@pytest.mark.parametrize("axis", ["yaw", "pitch", "roll"])
def test_rotate_then_unrotate_is_identity(axis):
    lm = rotate_landmarks(M, 10, -5, 3)
    there = rotate_landmarks(lm, **{axis: 30})
    assert not np.allclose(there, lm)
    np.testing.assert_allclose(rotate_landmarks(there, **{axis: -30}), lm, atol=1e-9)


def test_combined_rotation_undone_in_reverse_order():
    lm = rotate_landmarks(M, 25, 15, -10)
    back = rotate_landmarks(rotate_landmarks(rotate_landmarks(lm, roll=10), pitch=-15), yaw=-25)
    np.testing.assert_allclose(back, M, atol=1e-9)


def test_rotate_about_given_centre_keeps_it_fixed():
    centre = np.array([128.0, 140.0, 0.0])
    out = rotate_landmarks(M, yaw=50, center=centre)
    moved = rotate_landmarks(np.vstack([centre, M[1:]]), yaw=50, center=centre)
    np.testing.assert_allclose(moved[0], centre, atol=1e-9)
    np.testing.assert_allclose(out[1:], moved[1:], atol=1e-9)
    np.testing.assert_allclose(
        rotate_landmarks(M, roll=10, center=(128, 140)), rotate_landmarks(M, roll=10, center=(128, 140, 7)), atol=1e-9
    )


def test_pose_landmarks_sets_absolute_pose_and_keeps_shape():
    lm = rotate_landmarks(M * 1.3, 20, 10, 5)
    posed = pose_landmarks(lm, -30, 5, 0)
    assert pose_close(head_pose(posed), (-30, 5, 0), 1e-6)
    dist = lambda a: np.linalg.norm(a[:, None] - a[None], axis=2)  # noqa: E731
    np.testing.assert_allclose(dist(posed), dist(lm), atol=1e-9)  # rigid: same 3D shape
    np.testing.assert_allclose(posed.mean(0), lm.mean(0), atol=1e-9)
    np.testing.assert_allclose(frontalize(rotate_landmarks(M, yaw=60)), M, atol=1e-9)


def test_fit_pose_canonical_round_trip():
    lm = rotate_landmarks(M, 30, 10, -20) * 0.5 + 7
    fit = fit_pose(lm)
    np.testing.assert_allclose(fit.to_canonical(lm), M, atol=1e-9)
    np.testing.assert_allclose(fit.from_canonical(M), lm, atol=1e-9)
    assert fit.scale == pytest.approx(0.5)


# --- expressions --------------------------------------------------------------------------------------------
def test_zero_edit_is_identity_and_input_untouched():
    lm = rotate_landmarks(M, yaw=30)
    before = lm.copy()
    np.testing.assert_array_equal(edit_expression(lm), lm)
    edit_expression(lm, mouth_open=0.3, eyes_open=-1, smile=0.2)
    np.testing.assert_array_equal(lm, before)


def test_mouth_open_is_monotonic_and_in_iod_units():
    iod = inter_ocular_distance(M)
    gaps = [
        edit_expression(M, mouth_open=a)[66, 1] - edit_expression(M, mouth_open=a)[62, 1] for a in (0.0, 0.1, 0.3, 0.6)
    ]
    assert all(b > a for a, b in itertools.pairwise(gaps))
    assert gaps[2] - gaps[0] == pytest.approx(0.3 * iod)
    opened = edit_expression(M, mouth_open=0.2)
    closed = edit_expression(opened, mouth_open=-5.0)  # clamped at closed lips, never crossed
    assert closed[66, 1] - closed[62, 1] == pytest.approx(0.0, abs=1e-9)
    assert closed[8, 1] < opened[8, 1]  # the chin came back up


def test_eyes_open_minus_one_closes_the_eyes():
    closed = edit_expression(M, eyes_open=-1.0)
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        np.testing.assert_allclose(closed[upper], closed[lower])
    wide = edit_expression(M, eyes_open=0.5)
    assert (wide[41, 1] - wide[37, 1]) == pytest.approx(1.5 * (M[41, 1] - M[37, 1]))
    with pytest.raises(InputError, match="-1"):
        edit_expression(M, eyes_open=-1.5)


def test_smile_raises_and_widens_mouth_corners():
    smile = edit_expression(M, smile=0.15)
    assert smile[48, 1] < M[48, 1] and smile[54, 1] < M[54, 1]
    assert smile[54, 0] - smile[48, 0] > M[54, 0] - M[48, 0]
    frown = edit_expression(M, smile=-0.1)
    assert frown[48, 1] > M[48, 1]


@pytest.mark.parametrize("angles", [(50, 0, 0), (-70, 10, 5), (20, -25, 15)])
def test_edits_work_in_the_face_frame_at_any_pose(angles):
    kwargs = dict(mouth_open=0.3, smile=0.1, eyes_open=-0.5)
    posed_then_edited = edit_expression(rotate_landmarks(M, *angles), **kwargs)
    edited = edit_expression(M, **kwargs)
    edited_then_posed = rotate_landmarks(edited, *angles, center=M.mean(0))
    np.testing.assert_allclose(posed_then_edited, edited_then_posed, atol=1e-6)
    # edits move no rigid point, so the head pose stays put
    assert pose_close(head_pose(posed_then_edited), angles, 1e-6)
    np.testing.assert_allclose(posed_then_edited[list(RIGID_POINTS)], rotate_landmarks(M, *angles)[list(RIGID_POINTS)])


# --- lifting ------------------------------------------------------------------------------------------------
def test_lift_to_3d_keeps_xy_and_scales_reference_depth():
    target = rotate_landmarks(M, roll=12)[:, :2] * 2.0 + 30.0
    lifted = lift_to_3d(target, M)
    np.testing.assert_array_equal(lifted[:, :2], target)
    z = M[:, 2]
    np.testing.assert_allclose(lifted[:, 2], 2.0 * (z - z.mean()) + z.mean(), atol=1e-9)
    np.testing.assert_allclose(lift_to_3d(target), lifted)  # default reference: the mean face
    assert pose_close(head_pose(lifted), (0, 0, 12), 1e-6)


# --- validation ---------------------------------------------------------------------------------------------
def test_bad_landmarks_raise_landmark_error():
    with pytest.raises(LandmarkError, match="lift_to_3d"):
        head_pose(M[:, :2])
    bad = M.copy()
    bad[5, 1] = np.nan
    with pytest.raises(LandmarkError, match=r"\[5\]"):
        rotate_landmarks(bad, yaw=10)
    with pytest.raises(LandmarkError, match="136"):
        check_landmarks(M[:, :2].ravel() / 256)
    with pytest.raises(LandmarkError):
        edit_expression(M[:60], smile=0.1)
    with pytest.raises(LandmarkError, match="numeric"):
        check_landmarks([["a"] * 3] * 68)
    with pytest.raises(LandmarkError, match="depth"):
        head_pose(np.column_stack([M[:, :2], np.zeros(68)]))
    with pytest.raises(LandmarkError, match="coincide"):
        inter_ocular_distance(np.ones((68, 3)))
    assert check_landmarks(M[None]).shape == (68, 3)  # a batch of one is accepted


def test_z_pointing_at_the_viewer_is_detected():
    with pytest.raises(LandmarkError, match=r"\* \[1, 1, -1\]"):
        head_pose(rotate_landmarks(M, 20, 5, 0) * np.array([1, 1, -1]))


def test_real_face_landmarks_from_mediapipe_have_consistent_signs():
    """Mirroring a real photo flips yaw and roll; rotating it counter-clockwise lowers roll (needs mediapipe)."""
    mp = pytest.importorskip("mediapipe")
    import cv2

    from dgkit.io import sample_image

    table = json.loads(resources.files("dgkit").joinpath("assets/mean_face_3d.json").read_text())["mesh_indices"]
    image = sample_image()

    def landmarks(img):
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
            found = mesh.process(img).multi_face_landmarks[0].landmark
        h, w = img.shape[:2]
        pts = np.array([[p.x * w, p.y * h, p.z * w] for p in found])
        return np.array([pts[i].mean(0) for i in table])

    lm = landmarks(image)
    pose = head_pose(lm)  # no z-sign error: MediaPipe's depth convention is dgkit's
    assert fit_pose(lm).rms < 0.15
    mirrored = head_pose(landmarks(np.ascontiguousarray(image[:, ::-1])))
    assert mirrored.yaw == pytest.approx(-pose.yaw, abs=3) and mirrored.roll == pytest.approx(-pose.roll, abs=3)
    ccw = cv2.warpAffine(image, cv2.getRotationMatrix2D((256, 256), 20, 1.0), (512, 512))  # +20 = counter-clockwise
    assert head_pose(landmarks(ccw)).roll == pytest.approx(pose.roll - 20, abs=4)
