#!/usr/bin/env python
"""Regenerate ``dgkit/assets/mean_face_3d.json``: a canonical 3D 68-point face in the 256 ArcFace crop frame.

Source: MediaPipe's canonical face model (Apache-2.0), the neutral 3D face that MediaPipe's face geometry
module fits to its 468/478-point face mesh. Either file works; their first 468 vertices are identical:

* ``mediapipe/modules/face_geometry/data/canonical_face_model.obj`` (468 vertices), or
* ``mediapipe/modules/face_geometry/data/face_model_with_iris.obj`` (478 vertices),

from https://github.com/google-ai-edge/mediapipe (the 0.10.14 wheel does not bundle them; when an installed
mediapipe has one, this script finds it by itself). Only the ``v x y z`` lines are read.

Steps (the asset records them too):

1. 68 iBUG points from the mesh with the published 478->68 correspondence (``dgkit.landmarks.mesh68.MESH_TO_IBUG68``,
   the table the mediapipe backend uses; two indices are averaged). Like FAN-3D, the jaw points lie on the
   3D surface, not on the visible 2D outline.
2. Axes: the model has x to the subject's left (image right), y up, z towards the viewer, in cm. dgkit uses
   x right, y down, z away from the viewer (right-handed, and the same depth sign as MediaPipe's face mesh),
   so y and z are negated.
3. The inner lips are closed: the canonical mesh keeps its inner-lip vertices 0.55 cm apart, while iBUG
   annotates a closed mouth with coinciding inner-lip points (61/67, 62/66, 63/65). Each pair is replaced by
   its midpoint, so that the mean face is a neutral, closed-mouth expression.
4. Placement: one uniform scale and a translation (no rotation, so the mean face is exactly frontal: yaw,
   pitch and roll 0) fitted by least squares to the ArcFace 5-point template of ``dgkit.align`` (eye centres,
   nose tip p30, mouth corners p48/p54). The same scale multiplies z; z is then centred on its mean.

Usage::

    python scripts/make_mean_face.py --obj path/to/canonical_face_model.obj            # writes the asset
    python scripts/make_mean_face.py --obj path/to/face_model_with_iris.obj --check    # compares, exit 1 if not equal
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "dgkit" / "assets" / "mean_face_3d.json"

# The 478->68 table, the 68-point scheme and the alignment template are dgkit's own (one definition each, used
# here and at run time).
sys.path.insert(0, str(REPO))
from dgkit.align import ARCFACE_TEMPLATE_256  # noqa: E402  (256-crop pixels, x, y)
from dgkit.face68 import INNER_LIP_PAIRS  # noqa: E402
from dgkit.landmarks.mesh68 import MESH_TO_IBUG68  # noqa: E402

_OBJ_NAMES = ("canonical_face_model.obj", "face_model_with_iris.obj")


def mesh_to_ibug() -> list[list[int]]:
    """The correspondence as a list: entry i holds the mesh vertex indices of iBUG point i."""
    return [list(vertices) for vertices in MESH_TO_IBUG68]


def find_obj() -> Path | None:
    """The canonical face model inside an installed mediapipe, if that wheel bundles it."""
    try:
        import mediapipe  # noqa: PLC0415  (optional: only used to locate the file)
    except ImportError:
        return None
    data = Path(mediapipe.__file__).parent / "modules" / "face_geometry" / "data"
    for name in _OBJ_NAMES:
        if (data / name).is_file():
            return data / name
    return None


def read_obj_vertices(path: Path) -> np.ndarray:
    """The ``v x y z`` rows of a Wavefront .obj file, (N, 3) float64, in file order."""
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("v "):
            rows.append([float(t) for t in line.split()[1:4]])
    vertices = np.asarray(rows, dtype=np.float64)
    if vertices.ndim != 2 or len(vertices) < 468:
        raise SystemExit(f"{path}: expected at least 468 vertices (a MediaPipe face model), found {len(vertices)}")
    return vertices


def build(vertices: np.ndarray) -> dict:
    """The asset (a JSON-ready dict) from the mesh vertices (N>=468, 3) in MediaPipe's model axes."""
    table = mesh_to_ibug()
    used = sorted({i for idx in table for i in idx})
    points = np.array([vertices[idx].mean(axis=0) for idx in table])  # (68,3), cm, y up, z to viewer
    points = points * np.array([1.0, -1.0, -1.0])  # -> y down, z away from the viewer
    for upper, lower in INNER_LIP_PAIRS:
        points[upper] = points[lower] = 0.5 * (points[upper] + points[lower])

    five = np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])[:, :2]
    src_c = five - five.mean(0)
    dst_c = ARCFACE_TEMPLATE_256 - ARCFACE_TEMPLATE_256.mean(0)
    scale = float((src_c * dst_c).sum() / (src_c**2).sum())  # least squares, scale + translation only
    shift = ARCFACE_TEMPLATE_256.mean(0) - scale * five.mean(0)
    crop = points * scale
    crop[:, :2] += shift
    crop[:, 2] -= crop[:, 2].mean()
    residual = scale * five + shift - ARCFACE_TEMPLATE_256
    digest = hashlib.sha256(np.ascontiguousarray(vertices[used], dtype="<f8").tobytes()).hexdigest()
    return {
        "description": "Canonical 3D 68-point (iBUG order) neutral face in the 256x256 ArcFace crop frame. "
        "Columns x, y, z: x right, y down (crop pixels), z relative depth on the x scale, growing away from "
        "the viewer, mean 0.",
        "source": "MediaPipe canonical face model (mediapipe/modules/face_geometry/data/"
        "canonical_face_model.obj, github.com/google-ai-edge/mediapipe), Apache-2.0",
        "source_vertices_sha256": digest,
        "generator": "scripts/make_mean_face.py",
        "steps": [
            "478->68 correspondence of dgkit.landmarks.mesh68 (pairs averaged)",
            "negate y and z (model: y up, z to viewer)",
            "inner lips closed: pairs (61,67), (62,66), (63,65) set to their midpoints",
            "uniform scale + translation fitted (least squares) to the ArcFace 5-point template of "
            "dgkit.align; z scaled alike and centred",
        ],
        "scale_px_per_cm": round(scale, 6),
        "template_residual_px": np.round(residual, 3).tolist(),
        "template_rms_px": round(float(np.sqrt((residual**2).sum(1).mean())), 3),
        "mesh_indices": table,
        "points": np.round(crop, 4).tolist(),
    }


def _dumps(asset: dict) -> str:
    """JSON with one line per innermost list of numbers (one point per line), so diffs stay readable."""
    text = json.dumps(asset, indent=1)
    text = re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--obj", type=Path, help="canonical_face_model.obj or face_model_with_iris.obj")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args(argv)
    obj = args.obj or find_obj()
    if obj is None:
        print(
            "No MediaPipe canonical face model found. Get canonical_face_model.obj (or face_model_with_iris.obj) "
            "from github.com/google-ai-edge/mediapipe, mediapipe/modules/face_geometry/data/, and pass --obj.",
            file=sys.stderr,
        )
        return 2
    asset = build(read_obj_vertices(obj))
    if args.check:
        stored = json.loads(args.out.read_text())
        same = np.allclose(stored["points"], asset["points"], atol=1e-4) and (
            stored["source_vertices_sha256"] == asset["source_vertices_sha256"]
        )
        print(f"{args.out}: {'matches' if same else 'DIFFERS from'} {obj}")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(_dumps(asset))
    print(f"wrote {args.out} (template RMS {asset['template_rms_px']} px) from {obj}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
