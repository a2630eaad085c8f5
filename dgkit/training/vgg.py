"""Weight files for training: find one official file (VGG-Face, or a stage for an export) in dgkit's weight
folders, and load VGG-Face frozen."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..errors import WeightsNotFoundError
from ..weights import OFFICIAL_FILES, synthetic_weights_dir, weights_search_dirs

__all__ = ["find_vgg_face", "find_weight_file", "load_vgg_face"]

log = logging.getLogger("dgkit")


def find_weight_file(kind: str, folders: list[Path]) -> Path | None:
    """The first ``folder / OFFICIAL_FILES[kind]`` that exists (``kind``: "rfg", "idsg" or "vgg_face"), else None.

    ``folders`` is normally :func:`dgkit.weights.weights_search_dirs` (the order :func:`dgkit.weights.locate_weights`
    searches), so a file is taken from the folder inference would take it from. Unlike ``locate_weights`` this
    looks for one file: training from scratch needs VGG-Face but no RFG/IDSG weights.
    """
    for folder in folders:
        if (folder / OFFICIAL_FILES[kind]).is_file():
            return folder / OFFICIAL_FILES[kind]
    return None


def find_vgg_face(weights_dir: str | os.PathLike | None, allow_synthetic: bool) -> Path:
    """Path of ``vgg_face_dag.pth`` in dgkit's weight folders (or the synthetic one if allowed)."""
    searched = weights_search_dirs(weights_dir)
    found = find_weight_file("vgg_face", searched)
    if found is not None:
        return found
    if allow_synthetic:
        log.warning("dgkit train: vgg_face_dag.pth not found; using the UNTRAINED synthetic VGG-Face "
                    "(identity features and perceptual loss are meaningless)")
        return synthetic_weights_dir() / OFFICIAL_FILES["vgg_face"]
    raise WeightsNotFoundError(
        "training needs VGG-Face (vgg_face_dag.pth) for identity features and the perceptual loss; searched "
        + ", ".join(str(p) for p in searched) + ". Run `dgkit weights download`, pass weights_dir=FOLDER, or "
        "set allow_synthetic_vgg=true to try the loop with untrained weights.")


def load_vgg_face(path: str | os.PathLike, device: torch.device | str = "cpu") -> nn.Module:
    """A frozen, eval-mode :class:`dgkit.models.VGGFace` from a ``vgg_face_dag.pth`` file."""
    from ..models import VGGFace, from_vgg_face_dag

    vgg = VGGFace()
    vgg.load_state_dict(from_vgg_face_dag(load_checkpoint(path, "vgg_face")))
    vgg.requires_grad_(False)
    return vgg.eval().to(device)


