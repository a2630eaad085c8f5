"""Training DG on your own data (losses: docs/how-dg-works.md §9).

From a notebook::

    from dgkit.training import export_trained_weights, train_idsg, train_rfg
    train_idsg(data="data/tiny", out="runs/tiny", steps=200, batch_size=8, allow_synthetic_vgg=True)
    train_rfg(data="data/tiny", out="runs/tiny", steps=4, batch_size=2, image_size=64, allow_synthetic_vgg=True)
    dg = dgkit.load_dg(export_trained_weights("runs/tiny", out_dir="weights_tiny", allow_synthetic_vgg=True))

From a shell: ``dgkit train idsg|rfg --data D --out RUN`` and ``dgkit train export RUN --out WEIGHTS``.
The names above (and :class:`~dgkit.training.loop.TrainResult`, :func:`~dgkit.training.checkpoints.latest_checkpoint`)
are loaded on first use; nothing heavy is imported with this package. Modules, one job each:

* :mod:`~dgkit.training.data`        dataset folder layout, manifests, the IDSG/RFG datasets, cached identity
  features, a tiny synthetic dataset.
* :mod:`~dgkit.training.prepare`     ``dgkit prepare-data``: photos/videos of people -> a dataset folder.
* :mod:`~dgkit.training.config`      the training settings (dataclasses, files, ``--set`` overrides).
* :mod:`~dgkit.training.losses`      the IDSG and RFG losses and the weight initialisation.
* :mod:`~dgkit.training.runtime`     device, process group (torchrun), mixed precision, gradient averaging.
* :mod:`~dgkit.training.task`        the base class of a stage: networks, EMA, optimizers, loss meter.
* :mod:`~dgkit.training.idsg`, :mod:`~dgkit.training.rfg`  the two stages (networks, step, release layout).
* :mod:`~dgkit.training.sampler`     resumable data order across epochs and processes.
* :mod:`~dgkit.training.checkpoints` release checkpoints and exact-resume train states.
* :mod:`~dgkit.training.runlog`      CSV/TensorBoard logs and sample-grid PNGs.
* :mod:`~dgkit.training.loop`        the loop shared by both stages.
* :mod:`~dgkit.training.entry`       ``train_idsg`` / ``train_rfg``.
* :mod:`~dgkit.training.vgg`         finding a weight file for training; loading VGG-Face.
* :mod:`~dgkit.training.export`      ``export_trained_weights``: runs -> a weights folder ``load_dg`` reads.
* :mod:`~dgkit.training.cli`         ``dgkit train``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checkpoints import latest_checkpoint
    from .entry import train_idsg, train_rfg
    from .export import export_trained_weights
    from .loop import TrainResult

_LAZY = {
    "train_idsg": "entry",
    "train_rfg": "entry",
    "export_trained_weights": "export",
    "TrainResult": "loop",
    "latest_checkpoint": "checkpoints",
}

__all__ = ["TrainResult", "export_trained_weights", "latest_checkpoint", "train_idsg", "train_rfg"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
