"""dgkit.face68: the 68-point scheme tables, the one landmark validator and the landmark dtype policy."""
from __future__ import annotations

import numpy as np
import pytest

from dgkit import face68
from dgkit.errors import InputError, LandmarkError
from dgkit.face68 import CROP_SIZE, FACE_PARTS, LANDMARK_DTYPE, REGIONS, check_landmarks


def _members(table) -> list[int]:
    return sorted(i for part in table for i in part)


# --- tables -------------------------------------------------------------------------------------------------
def test_face_parts_cover_every_point_exactly_once():
    parts = [face68.part_indices(name) for name in FACE_PARTS]
    assert _members(parts) == list(range(68))
    assert [name for name, (*_, closed) in FACE_PARTS.items() if closed] == [
        "right eye", "left eye", "outer lips", "inner lips"]


def test_regions_are_unions_of_whole_parts_and_cover_every_point_once():
    assert _members(REGIONS.values()) == list(range(68))
    parts = {name: set(face68.part_indices(name)) for name in FACE_PARTS}
    for region in REGIONS.values():
        inside = [name for name, idx in parts.items() if idx <= set(region)]
        assert set().union(*(parts[n] for n in inside)) == set(region)  # no part is split between regions


def test_named_ranges_agree_with_the_parts():
    assert list(face68.JAW) == face68.part_indices("jaw")
    assert list(face68.RIGHT_EYE) == face68.part_indices("right eye") == list(range(36, 42))
    assert list(face68.LEFT_EYE) == face68.part_indices("left eye") == list(range(42, 48))
    assert list(face68.INNER_LIPS) == face68.part_indices("inner lips")
    assert list(face68.BROWS) == list(face68.RIGHT_BROW) + list(face68.LEFT_BROW)
    assert list(face68.NOSE) == list(face68.NOSE_BRIDGE) + list(face68.NOSTRILS)
    assert list(face68.MOUTH) == list(face68.OUTER_LIPS) + list(face68.INNER_LIPS)
    assert face68.NOSE_TIP == face68.NOSE_BRIDGE[-1]
    assert set(face68.EYE_CORNERS) <= set(face68.EYES) and set(face68.MOUTH_CORNERS) <= set(face68.OUTER_LIPS)
    assert CROP_SIZE == 256


def test_eyelid_pairs_join_upper_to_lower_lid_of_the_same_eye():
    for upper, lower in face68.EYELID_PAIRS:
        eye = face68.RIGHT_EYE if upper in face68.RIGHT_EYE else face68.LEFT_EYE
        assert lower in eye and upper not in face68.EYE_CORNERS and lower not in face68.EYE_CORNERS
    # upper lids 37, 38 | 43, 44, each above its mirror on the lower lid (points run clockwise round each eye)
    assert [u for u, _ in face68.EYELID_PAIRS] == [37, 38, 43, 44]
    assert all(u + lo == 2 * face68.RIGHT_EYE[0] + 6 or u + lo == 2 * face68.LEFT_EYE[0] + 6
               for u, lo in face68.EYELID_PAIRS)
    for upper, lower in face68.INNER_LIP_PAIRS:
        assert upper in face68.INNER_LIPS and lower in face68.INNER_LIPS and upper + lower == 128


def test_every_module_uses_the_one_table():
    from dgkit import eyes, sketch, viz
    from dgkit.training import losses

    assert eyes.EYELID_PAIRS is face68.EYELID_PAIRS and viz.FACE_PARTS is FACE_PARTS
    assert sketch.SKETCH_SIZE == CROP_SIZE
    assert losses.PARTS == {name: (r.start, r.stop) for name, r in REGIONS.items()}
    frontal = sketch.SEGMENTS["target"]["frontal"]
    assert len(frontal) == sum(last - first + closed for first, last, closed in FACE_PARTS.values()) == 63


# --- the validator ------------------------------------------------------------------------------------------
def test_check_landmarks_returns_a_new_array_of_the_policy_dtype():
    lm = np.arange(136, dtype=np.float32).reshape(68, 2)
    out = check_landmarks(lm)
    assert out.dtype == LANDMARK_DTYPE == np.float64 and out.shape == (68, 2)
    out[0] = -1
    assert lm[0, 0] == 0  # the caller's array is never modified
    assert check_landmarks(lm[None]).shape == (68, 2)  # a batch of one, as detectors return
    assert check_landmarks(lm, batch=True).shape == (1, 68, 2)
    assert check_landmarks(np.stack([lm, lm]), batch=True, dtype=np.float32).dtype == np.float32
    assert check_landmarks(lm.astype(int).tolist(), dims=(2,)).dtype == np.float64


@pytest.mark.parametrize(("bad", "kwargs", "phrase"), [
    (np.zeros((67, 2)), {}, "(68,2) or (68,3)"),
    (np.zeros((67, 2)), {}, "68-point iBUG layout"),
    (np.zeros((68, 2)), {"dims": (3,)}, "lift_to_3d"),
    (np.zeros(136), {}, "reshape(68, 2) * 256"),
    (np.full((68, 2), "a"), {}, "numeric"),
    (np.zeros((0, 68, 2)), {"batch": True}, "empty batch"),
    (np.zeros((2, 68, 2)), {}, "got (2, 68, 2)"),
    (np.zeros((68, 4)), {"batch": True}, "(N,68,2)"),
    (np.where(np.arange(68)[:, None] == 5, np.nan, np.full((68, 2), 100.0)), {}, "points [5]"),
    (np.where(np.arange(3)[:, None, None] == 2, np.inf, np.full((3, 68, 2), 100.0)), {"batch": True},
     "batch items [2]"),
    (np.full((68, 2), 0.5), {"crop_frame": True}, "multiply by 256"),
    (np.full((68, 2), 5000.0), {"crop_frame": True}, "align first with dgkit.align_face"),
])
def test_check_landmarks_messages_name_the_argument_and_say_what_to_do(bad, kwargs, phrase):
    with pytest.raises(LandmarkError) as info:
        check_landmarks(bad, "my_points", **kwargs)
    assert phrase in str(info.value) and "my_points" in str(info.value)
    assert isinstance(info.value, InputError)  # callers catching InputError see landmark mistakes too


def test_ragged_lists_are_a_landmark_error():
    with pytest.raises(LandmarkError, match="numeric array"):
        check_landmarks([[1, 2], [3]])


def test_the_six_former_validators_now_give_the_same_message():
    from dgkit import align_face, draw_sketch
    from dgkit.viz import landmarks_3d

    bad = np.zeros((67, 2))
    photo = np.zeros((64, 64, 3), np.uint8)
    for call in (lambda: align_face(photo, bad), lambda: draw_sketch(bad), lambda: landmarks_3d({"x": bad})):
        with pytest.raises(LandmarkError, match=r"must have shape \(68,2\) or \(68,3\)"):
            call()


# --- dtype policy ---------------------------------------------------------------------------------------------
def test_public_landmark_outputs_are_float64():
    from dgkit.baselines import naive_transfer, relative_transfer_3d
    from dgkit.eyes import correct_eyes
    from dgkit.geometry import edit_expression, lift_to_3d, mean_face_3d, rotate_landmarks

    m = mean_face_3d()
    m32 = m.astype(np.float32)
    outs = [m, rotate_landmarks(m32, yaw=10), edit_expression(m32, smile=0.2), lift_to_3d(m32[:, :2]),
            naive_transfer(m32), relative_transfer_3d(m32, m32), correct_eyes(m32[:, :2], m32[:, :2]),
            correct_eyes(m32[None, :, :2], m32[None, :, :2])]
    assert [o.dtype for o in outs] == [np.float64] * len(outs)


def test_align_face_keeps_the_demos_float32_crop_landmarks():
    from dgkit import align_face

    m = face68_photo_landmarks()
    _, lm = align_face(np.zeros((300, 300, 3), np.uint8), m)
    assert lm.dtype == np.float32  # the one documented exception (docs/conventions.md)


def face68_photo_landmarks() -> np.ndarray:
    from dgkit.geometry import mean_face_3d

    return mean_face_3d()[:, :2] * 0.8 + 20
