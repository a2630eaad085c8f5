"""The public entry points, one per DG stage: :func:`train_idsg` and :func:`train_rfg`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from .config import IDSGConfig, RFGConfig
from .idsg import IDSGTask
from .loop import TrainResult, as_config, train
from .rfg import RFGTask

__all__ = ["train_idsg", "train_rfg"]


def train_idsg(config: IDSGConfig | Mapping | str | os.PathLike | None = None, *, vgg: nn.Module | None = None,
               **values: Any) -> TrainResult:
    """Train the IDSG (shape generator; losses in docs/how-dg-works.md §9).

    Args:
        config: an :class:`IDSGConfig`, a mapping of its fields, or a JSON/YAML file; None = defaults.
        vgg: a VGG-Face module for the identity features (default: loaded from ``config.weights_dir``).
        **values: field overrides, e.g. ``data="data/x", out="runs/x", steps=100``.
    """
    return train(IDSGTask, as_config("idsg", config, values), vgg=vgg)


def train_rfg(config: RFGConfig | Mapping | str | os.PathLike | None = None, *, vgg: nn.Module | None = None,
              **values: Any) -> TrainResult:
    """Train the RFG (face generator and style encoder; losses in docs/how-dg-works.md §9); arguments as :func:`train_idsg`
    (``vgg`` gives the perceptual loss)."""
    return train(RFGTask, as_config("rfg", config, values), vgg=vgg)


