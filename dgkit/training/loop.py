"""The training loop shared by both DG stages: data order, prefetching, the step, EMA, logging, sample grids,
checkpoints and exact resume (the stages are :mod:`dgkit.training.idsg` and :mod:`dgkit.training.rfg`; the
public entry points :func:`dgkit.training.train_idsg` / :func:`~dgkit.training.train_rfg`).

From a notebook (the dataset layout is :mod:`dgkit.training.data`)::

    import dgkit
    from dgkit.training import export_trained_weights, train_idsg, train_rfg
    idsg = train_idsg(data="data/tiny", out="runs/tiny", steps=200, batch_size=8, allow_synthetic_vgg=True)
    rfg = train_rfg(data="data/tiny", out="runs/tiny", steps=4, batch_size=2, image_size=64, allow_synthetic_vgg=True)
    print(idsg.final_losses, rfg.checkpoint)     # mean losses of the last log window; latest nets_ema file
    dg = dgkit.load_dg(export_trained_weights("runs/tiny", out_dir="weights_tiny", allow_synthetic_vgg=True))

``allow_synthetic_vgg`` uses the untrained synthetic VGG-Face when the real ``vgg_face_dag.pth`` is absent:
fine to try the loop, meaningless identity features. ``image_size=64`` is a CPU smoke-run setting (a few
seconds per RFG step on 2 cores); real RFG training is 256 px on a GPU. The IDSG step is cheap everywhere.
The exported EMA networks (beta 0.999) start from PyTorch's default init (as the released code, docs/how-dg-works.md §8), so after
a few hundred steps they still show collapsed shapes / noise: for short runs pass ``ema_beta=0.9,
ema_from_default_init=False``. Sample grids show the trained and the EMA networks. From a shell:
``dgkit train idsg --data D --out RUN`` and ``dgkit train export RUN --out WEIGHTS``.

Run folder (one folder may hold both stages)::

    RUN/expr/checkpoints/{step}_nets_ema.ckpt      RFG  {"generator", "style_encoder"} EMA weights (the official layout, docs/weights.md)
    RUN/expr_lm/checkpoints/{step}_nets_ema.ckpt   IDSG {"lm_linear_encoder", "linear_decoder" (EMA),
                                                         "linear_discriminator", "linear_classfier"}
    RUN/<expr|expr_lm>/checkpoints/{step}_train_state.pt   networks, EMA, optimizers, step, RNG (resume)
    RUN/config_{kind}.json  RUN/train_{kind}.csv  RUN/samples_{kind}/{step:06d}.png  RUN/tensorboard_{kind}/

Distributed: launch with ``torchrun --nproc_per_node=K -m dgkit train ...``; each process reads
RANK/WORLD_SIZE/LOCAL_RANK, the data is sharded with a ``DistributedSampler`` and gradients are averaged with
an all-reduce before every optimizer step (plain all-reduce rather than the DDP wrapper, because R1 needs a
double backward and the GAN steps alternate between networks). Only rank 0 writes files; the logged
losses are rank 0's.

Determinism: data order is a function of (seed, step), augmentation randomness is re-seeded from
(seed, rank, step) at every step, so resuming from a train state continues exactly as an uninterrupted run.

Speed: RFG's next batches are read in a background thread during the step (:mod:`dgkit.training.prefetch`;
``prefetch=False`` turns it off; with ``num_workers`` > 0 the DataLoader's worker processes do it; the IDSG's
data is in memory and is not prefetched), and the
losses stay on the device (:class:`LossWindow`): the host waits for them once per log row, sample grid or
checkpoint, not once per loss per step. A NaN/infinite loss is therefore noticed at the next of those points
(at the latest ``log_every`` steps later, before anything is written) and reported with the step it occurred in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from torch.utils.data import DataLoader

from ..errors import ConfigError, TrainingError
from ..io import clean_stale_temporaries, make_output_folder
from .checkpoints import (
    checkpoint_dir,
    latest_checkpoint,
    load_train_state,
    save_checkpoints,
)
from .config import TrainConfig, config_from_dict, config_to_dict, load_config
from .prefetch import Prefetcher
from .runlog import RunLogger, write_png
from .runtime import Runtime, step_generator
from .sampler import EpochItems, StreamBatchSampler
from .task import Task

__all__ = ["LossWindow", "TrainResult", "as_config", "train"]

log = logging.getLogger("dgkit")


# --- results --------------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        kind: "idsg" or "rfg".
        run_dir: the run folder.
        steps: the step reached.
        checkpoint: the latest ``{step}_nets_ema.ckpt`` (official layout), None on ranks other than 0.
        state_path: the latest ``{step}_train_state.pt`` (for ``resume``).
        log_path: the CSV log.
        final_losses: mean of each loss over the last logging window.
        samples: sample-grid PNGs written.
        nets: the EMA networks (and, for IDSG, the trained discriminator/classifier) as modules.
    """

    kind: str
    run_dir: Path
    steps: int
    checkpoint: Path | None
    state_path: Path | None
    log_path: Path | None
    final_losses: dict[str, float]
    samples: list[Path] = field(default_factory=list)
    nets: dict[str, nn.Module] = field(default_factory=dict, repr=False)


# --- the loop -------------------------------------------------------------------------------------------------
def as_config(kind: str, config: TrainConfig | Mapping | str | os.PathLike | None, values: dict) -> TrainConfig:
    if config is None or isinstance(config, Mapping):
        merged = {**dict(config or {}), **{k: v for k, v in values.items() if v is not None}}
        return config_from_dict(kind, merged)
    if isinstance(config, (str, os.PathLike)):
        return load_config(kind, config, **values)
    if not isinstance(config, TrainConfig) or config.kind != kind:
        raise ConfigError(f"expected a {kind.upper()} config, got {type(config).__name__}")
    cfg = dataclasses.replace(config, **values) if values else config
    cfg.validate()
    return cfg


class LossWindow:
    """The losses of the steps since the last log row, kept on the training device.

    ``add`` stacks a step's losses (0-d tensors or floats) into one device vector without waiting for the device;
    ``read`` copies the window to the host once (one synchronisation per log interval, not one per loss per
    step), stops with :class:`TrainingError` at the first step whose loss is NaN or infinite, and returns the mean
    of each loss. The loop reads before every log row, sample grid and checkpoint, so nothing is written from a
    step with a non-finite loss.
    """

    def __init__(self, names: tuple[str, ...], device):
        self.names, self.device = names, device
        self.steps: list[int] = []
        self.rows: list = []
        self._host: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, losses: Mapping[str, Any]) -> None:
        import torch

        self.rows.append(torch.stack([torch.as_tensor(losses[k], dtype=torch.float32, device=self.device).reshape(())
                                      for k in self.names]))
        self.steps.append(step)
        self._host = None

    def read(self, last_good: Callable[[], Path | None]) -> dict[str, float]:
        """Mean of each loss over the window (one host sync); TrainingError names the first non-finite step."""
        import torch

        if self._host is None:
            self._host = torch.stack(self.rows).cpu().numpy().astype(np.float64) if self.rows else \
                np.zeros((0, len(self.names)))
        finite = np.isfinite(self._host)
        if not finite.all():
            row = int(np.argmin(finite.all(axis=1)))
            bad = {k: v for k, v, ok in zip(self.names, self._host[row], finite[row]) if not ok}
            good = last_good()
            where = f"the last good checkpoint is {good}" if good else "no checkpoint was saved before it"
            raise TrainingError(
                f"training stopped at step {self.steps[row]}: loss {', '.join(f'{k}={v}' for k, v in bad.items())} "
                f"is not finite; {where}. Lower the learning rate (--set lr=...), check the data, or resume from "
                "the last checkpoint with --resume.")
        return {k: float(v) for k, v in zip(self.names, self._host.mean(axis=0))} if len(self) else {}

    def clear(self) -> None:
        self.steps, self.rows, self._host = [], [], None


def train(task_cls: type[Task], cfg: TrainConfig, **task_kwargs: Any) -> TrainResult:
    """Run ``task_cls`` with ``cfg`` (see :func:`train_idsg`/:func:`train_rfg` for the public entry points)."""
    rt = Runtime(cfg)
    try:
        return _train(task_cls(cfg, rt, **task_kwargs), cfg, rt)
    finally:
        rt.close()


def _train(task: Task, cfg: TrainConfig, rt: Runtime) -> TrainResult:
    run_dir = Path(cfg.out).expanduser()
    created = not run_dir.exists()
    try:
        return _train_in(task, cfg, rt, run_dir)
    except BaseException:
        # a run that failed before its first step leaves nothing behind (its folder held only our setup files)
        if rt.is_main and created and run_dir.is_dir() and not any(run_dir.rglob("*.ckpt")) and \
                not any(run_dir.rglob("*.pt")) and not _trained_any(run_dir, task.kind):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _trained_any(run_dir: Path, kind: str) -> bool:
    """True when the run's CSV log has at least one row (a step finished)."""
    path = run_dir / f"train_{kind}.csv"
    try:
        return len(path.read_text().strip().splitlines()) > 1
    except OSError:
        return False


def _train_in(task: Task, cfg: TrainConfig, rt: Runtime, run_dir: Path) -> TrainResult:
    if rt.is_main:
        make_output_folder(run_dir)
        clean_stale_temporaries(checkpoint_dir(run_dir, task))  # left by saves of killed runs (SIGKILL)
    start = 0
    previous = latest_checkpoint(run_dir, task.kind) or latest_checkpoint(run_dir, task.kind, state=True)
    if previous is not None and not cfg.resume:
        raise ConfigError(f"{run_dir} already holds a trained {task.kind.upper()} ({previous.name}); pass --resume "
                          "(resume=True) to continue it, or choose a new --out folder (nothing was overwritten)")
    state_file = latest_checkpoint(run_dir, task.kind, state=True) if cfg.resume else None
    if cfg.resume and state_file is None and rt.is_main:
        log.warning("dgkit train: resume requested but %s holds no %s train state; starting at step 0",
                    run_dir, task.kind.upper())
    if state_file is not None:
        start = load_train_state(task, state_file)
    if rt.is_main:
        (run_dir / f"config_{task.kind}.json").write_text(json.dumps(config_to_dict(cfg), indent=2) + "\n")

    dataset = task.build_dataset()
    sampler = StreamBatchSampler(len(dataset), cfg.batch_size, seed=cfg.seed, rank=rt.rank, world=rt.world,
                                 consumed=start * cfg.batch_size * cfg.grad_accum)
    loader = DataLoader(EpochItems(dataset), batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=rt.device.type == "cuda", persistent_workers=False)
    fixed = next(iter(DataLoader(EpochItems(dataset), batch_size=min(4, len(dataset)),
                                 sampler=[(0, i) for i in range(min(4, len(dataset)))])))
    logger = RunLogger(task, run_dir, start, rt.is_main)
    samples: list[Path] = []
    ckpt = state_path = None
    window = LossWindow(task.loss_names, rt.device)
    final: dict[str, float] = {}
    progress = None
    if rt.is_main and cfg.progress:
        from tqdm.auto import tqdm

        progress = tqdm(total=cfg.steps, initial=start, desc=f"train {task.kind}", unit="step")
    # worker processes prefetch by themselves; without them a thread reads the next batches' files during the
    # step (not for in-memory data: there the thread only competes with the step for the interpreter)
    threaded = cfg.prefetch and cfg.num_workers == 0 and task.reads_files
    batches = Prefetcher(iter(loader)) if threaded else iter(loader)
    t0, t_window = time.perf_counter(), time.perf_counter()
    step = start
    try:
        for step in range(start + 1, cfg.steps + 1):
            task.step = step
            micro = [task.batch_to_device(next(batches)) for _ in range(cfg.grad_accum)]
            window.add(step, task.train_step(micro, step_generator(cfg.seed, rt.rank, step)))
            rt.end_iteration()
            task.update_ema()
            if progress is not None:
                progress.update(1)
            last = step == cfg.steps
            log_now = step % max(cfg.log_every, 1) == 0 or last
            sample_now = rt.is_main and cfg.sample_every and (step % cfg.sample_every == 0 or last)
            save_now = rt.is_main and ((cfg.save_every and step % cfg.save_every == 0) or last)
            if log_now or sample_now or save_now:  # the only host syncs for the losses
                means = window.read(lambda: ckpt or latest_checkpoint(run_dir, task.kind))
            if log_now:
                final = means
                elapsed = time.perf_counter() - t_window
                speed = len(window) * cfg.batch_size * cfg.grad_accum * rt.world / max(elapsed, 1e-9)
                logger.write(step, {"time_s": logger.time_offset + time.perf_counter() - t0, "samples_per_s": speed,
                                    **final})
                if progress is not None:
                    progress.set_postfix({k: f"{v:.3g}" for k, v in list(final.items())[:4]})
                window.clear()
                t_window = time.perf_counter()
            if sample_now:
                samples.append(write_png(run_dir / f"samples_{task.kind}" / f"{step:06d}.png",
                                         task.sample_grid(task.batch_to_device(fixed))))
            if save_now:
                ckpt, state_path = save_checkpoints(task, step, run_dir)
        if start >= cfg.steps and rt.is_main:
            ckpt = latest_checkpoint(run_dir, task.kind)
            state_path = latest_checkpoint(run_dir, task.kind, state=True)
        rt.barrier()
    finally:
        if isinstance(batches, Prefetcher):
            batches.close()
        if progress is not None:
            progress.close()
        logger.close()
    return TrainResult(kind=task.kind, run_dir=run_dir, steps=max(step, start), checkpoint=ckpt,
                       state_path=state_path, log_path=logger.path if rt.is_main else None, final_losses=final,
                       samples=samples, nets=task.result_nets())
