"""MediaPipe's 478-point face mesh -> the 68 iBUG points.

The correspondence is a published one (used by several open face-mesh projects): for each iBUG index,
one mesh vertex, or two whose mean is taken. The mesh's jaw vertices lie on the 3D face surface (like
FAN-3D's jaw), not on the visible 2D outline that 2D annotations follow; compare inner points (17..67)
with 2D ground truth.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

NUM_MESH_POINTS = 478  # 468 face mesh vertices + 10 iris points (refine_landmarks=True)

#: iBUG-68 index -> mesh vertex indices (averaged when two)
MESH_TO_IBUG68: tuple[tuple[int, ...], ...] = (
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),       # 0-8   jaw
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),                # 9-16  jaw
    (156,), (63,), (105,), (66,), (107,),                                              # 17-21 right brow
    (336,), (296,), (334,), (293,), (383,),                                            # 22-26 left brow
    (168, 6), (197, 195), (5,), (4,),                                                  # 27-30 nose bridge
    (98,), (97,), (2,), (326,), (327,),                                                # 31-35 nostrils
    (33,), (160,), (158,), (133,), (153,), (144,),                                     # 36-41 right eye
    (362,), (385,), (387,), (263,), (373,), (380,),                                    # 42-47 left eye
    (61,), (39,), (37,), (0,), (267,), (269,), (291,),                                 # 48-54 outer lips
    (321,), (314,), (17,), (84,), (91,),                                               # 55-59 outer lips
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),                         # 60-67 inner lips
)
assert len(MESH_TO_IBUG68) == 68

# (68, 478) averaging matrix: one matrix product maps any mesh to the 68 points
_WEIGHTS = np.zeros((68, NUM_MESH_POINTS))
for _i, _vertices in enumerate(MESH_TO_IBUG68):
    _WEIGHTS[_i, list(_vertices)] = 1.0 / len(_vertices)


def mesh_to_ibug68(mesh_points: np.ndarray) -> np.ndarray:
    """Map mesh points (478, D) or (468, D) to the 68 iBUG points (68, D), float64, same frame and columns.

    Example:
        >>> mesh_to_ibug68(np.zeros((478, 3))).shape
        (68, 3)
    """
    points = np.asarray(mesh_points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] not in (468, NUM_MESH_POINTS):
        raise InputError(f"mesh points must be (478, D) or (468, D), got {points.shape}")
    return _WEIGHTS[:, : points.shape[0]] @ points
