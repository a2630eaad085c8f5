"""The official weights layout: which files, where in a weights folder, how big, where they come from.

The file list and sizes are read from the packaged tensor manifest (``dgkit/assets/manifest.json``, the same
file :mod:`dgkit.checkpoint` checks every tensor against), so there is one place that says which files exist.
This module also names the small marker and record files dgkit keeps beside weights.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from ..checkpoint import KINDS, manifest

__all__ = [
    "CHECKSUMS_NAME",
    "DG_GDRIVE_ID",
    "DG_GDRIVE_URL",
    "LABELS",
    "OFFICIAL_FILES",
    "SOURCES",
    "SYNTHETIC_MARKER",
    "TRAINED_MARKER",
    "VGG_FACE_URL",
    "how_to_get",
    "kind_of_basename",
    "layout_root",
    "official_bytes",
    "official_size_text",
]

#: ``{"rfg": "expr/checkpoints/501500_nets_ema.ckpt", "idsg": ..., "vgg_face": "vgg_face_dag.pth"}``: the
#: official path of each file inside a weights folder (posix separators), in the order rfg, idsg, vgg_face.
OFFICIAL_FILES: dict[str, str] = {kind: str(manifest()["files"][kind]["path"]) for kind in KINDS}

DG_GDRIVE_ID = "1H8RqQ4GAYSVFt9q3CgIyS1CrOKQRXi7U"
DG_GDRIVE_URL = f"https://drive.google.com/file/d/{DG_GDRIVE_ID}/view"
VGG_FACE_URL = "http://www.robots.ox.ac.uk/~albanie/models/pytorch-mcn/vgg_face_dag.pth"

LABELS = {"rfg": "RFG", "idsg": "IDSG", "vgg_face": "VGG-Face"}  # short names in messages
SOURCES = {"rfg": DG_GDRIVE_URL, "idsg": DG_GDRIVE_URL, "vgg_face": VGG_FACE_URL}

# marker and record files (names inside a weights folder)
CHECKSUMS_NAME = "CHECKSUMS.json"  # size + sha256 of the files dgkit verified and placed in a weights folder
SYNTHETIC_MARKER = "DGKIT_SYNTHETIC.json"  # marks a folder of synthetic (random) weights
TRAINED_MARKER = "DGKIT_TRAINED.json"  # written by dgkit.training's export: a folder of dgkit-trained weights
COMPLETE_MARKER = ".complete"  # written last into a cached synthetic folder
PLACEMENT_LOCK = ".dgkit-weights.lock"  # held while files are placed into a weights folder
HASH_CACHE_NAME = "file-hashes.json"  # in cache_dir(): sha256 and verification results by (path, size, mtime)


def official_bytes(kind: str) -> int:
    """Size in bytes of the official file ``kind`` (its float32 tensors, from the manifest)."""
    return int(manifest()["files"][kind]["fp32_bytes"])


def official_size_text(kind: str) -> str:
    """The official file's size for messages, rounded to whole megabytes, e.g. ``"about 224 MB"``."""
    return f"about {official_bytes(kind) / 1e6:.0f} MB"


def kind_of_basename(filename: str) -> str | None:
    """``"rfg"``, ``"idsg"`` or ``"vgg_face"`` for an official file name (``"vgg_face_dag.pth"``), else None."""
    return next((kind for kind, rel in OFFICIAL_FILES.items() if PurePosixPath(rel).name == filename), None)


def layout_root(path: Path, kind: str) -> Path:
    """The weights folder that holds ``path`` at the official relative path of ``kind``."""
    return path.parents[len(PurePosixPath(OFFICIAL_FILES[kind]).parts) - 1]


def how_to_get() -> str:
    """What a user can run to get the official files (appended to "not found" messages)."""
    return (
        "How to get them:\n"
        "  - run `dgkit weights download` (needs internet; or dgkit.weights.download_weights() in Python), or\n"
        f"  - download by hand: the DG checkpoints zip from {DG_GDRIVE_URL} and VGG-Face from "
        f"{VGG_FACE_URL}, then run `dgkit weights install PATH` for each (or dgkit.weights.install_weights(PATH)).\n"
        "  - To try dgkit without them, `dgkit weights synthetic DIR` writes random weights in the same layout "
        "(outputs are meaningless); pass weights_dir=DIR."
    )
