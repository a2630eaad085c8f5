"""What a run logs on rank 0: the CSV of losses and speed (always), TensorBoard (when installed and enabled)
and the sample-grid PNGs."""

from __future__ import annotations

import contextlib
import csv
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .task import Task

__all__ = ["RunLogger", "write_png"]

log = logging.getLogger("dgkit")


class RunLogger:
    """CSV (always) and TensorBoard (when importable and enabled) on rank 0; a no-op elsewhere."""

    def __init__(self, task: Task, run_dir: Path, start_step: int, enabled: bool):
        self.enabled = enabled
        self.path = run_dir / f"train_{task.kind}.csv"
        self.columns = ["step", "time_s", "samples_per_s", *task.loss_names]
        self.tb = None
        self.time_offset = 0.0  # seconds of training before a resume: time_s continues from there
        if not enabled:
            return
        rows = []
        if start_step > 0 and self.path.is_file():  # drop rows past the resumed step
            with self.path.open(newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= start_step]
            with contextlib.suppress(ValueError, KeyError, IndexError):
                self.time_offset = float(rows[-1]["time_s"])
        with self.path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        if task.cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("dgkit train: TensorBoard not installed (pip install tensorboard); logging to CSV only")
            else:
                # events from start_step + 1 on are dropped: the resumed step itself was logged before
                self.tb = SummaryWriter(str(run_dir / f"tensorboard_{task.kind}"),
                                        purge_step=start_step + 1 if start_step else None)

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, self.columns).writerow({"step": step, **{k: f"{v:.6g}" for k, v in values.items()}})
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(f"{'loss' if key not in ('time_s', 'samples_per_s') else 'speed'}/{key}",
                                   value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def write_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


