"""One training loop for both DG stages: seeds, data order, mixed precision, data parallelism, gradient
accumulation, EMA, checkpoints in the official layout, exact resume, logs and sample grids.

From a notebook (the dataset layout is :mod:`dgkit.training.data`)::

    import dgkit
    from dgkit.training.engine import train_idsg, train_rfg, export_weights
    idsg = train_idsg(data="data/tiny", out="runs/tiny", steps=200, batch_size=8, allow_synthetic_vgg=True)
    rfg = train_rfg(data="data/tiny", out="runs/tiny", steps=4, batch_size=2, image_size=64, allow_synthetic_vgg=True)
    print(idsg.final_losses, rfg.checkpoint)     # mean losses of the last log window; latest nets_ema file
    dg = dgkit.load_dg(export_weights("runs/tiny", out_dir="weights_tiny", allow_synthetic_vgg=True))

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
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import json
import logging
import math
import os
import pickle
import random
import shutil
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError, ConfigError, TrainingError, WeightsError, WeightsNotFoundError
from ..io import clean_stale_temporaries, make_output_folder
from .config import (
    IDSGConfig,
    RFGConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
)

__all__ = [
    "Runtime",
    "Task",
    "TrainResult",
    "export_weights",
    "latest_checkpoint",
    "load_vgg_face",
    "train",
    "train_idsg",
    "train_rfg",
]

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


# --- runtime: device, distributed, precision --------------------------------------------------------------------
def _dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment (or an initialised process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


class Runtime:
    """Device, process group and mixed precision of one training process.

    ``backward`` scales a loss for gradient accumulation (and fp16), ``step`` all-reduces gradients across
    processes and steps an optimizer, ``end_iteration`` updates the fp16 loss scale.
    """

    def __init__(self, cfg: TrainConfig):
        self.rank, self.world, self.local_rank = _dist_env()
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()) \
                else "gloo"
            dist.init_process_group(backend=backend, init_method="env://")
            self.owns_group = True
        self.device = self._pick_device(cfg.device)
        self.accum = cfg.grad_accum
        self.amp_dtype: torch.dtype | None = None
        if cfg.amp != "none":
            if self.device.type == "cuda":
                self.amp_dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
            elif self.is_main:
                log.warning("dgkit train: amp=%s needs a CUDA device; training on %s in float32 instead.",
                            cfg.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

    def _pick_device(self, name: str) -> torch.device:
        from ..device import resolve_device

        if name == "auto":  # training's "auto" is CUDA, else the CPU (see TrainConfig.device)
            name = "cuda" if torch.cuda.is_available() else "cpu"
        device = resolve_device(name)  # DeviceError (a one-line message) for unknown or missing devices
        if device.type == "cuda":
            if device.index is None:
                device = torch.device("cuda", self.local_rank if self.world > 1 else torch.cuda.current_device())
            torch.cuda.set_device(device)
        return device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        loss = loss / self.accum
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Average the gradients over processes, then step (through the fp16 scaler when used)."""
        if self.world > 1:
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            if grads:
                flat = torch.cat([g.reshape(-1) for g in grads])
                dist.all_reduce(flat)
                flat /= self.world
                offset = 0
                for g in grads:
                    g.copy_(flat[offset:offset + g.numel()].view_as(g))
                    offset += g.numel()
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    def end_iteration(self) -> None:
        if self.scaler is not None:
            self.scaler.update()

    def broadcast_(self, modules: Mapping[str, nn.Module]) -> None:
        """Make every process start from rank 0's parameters."""
        if self.world > 1:
            for net in modules.values():
                for t in list(net.parameters()) + list(net.buffers()):
                    dist.broadcast(t.data, src=0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """A torch.Generator (on CPU) seeded from (seed, rank, step): augmentation randomness without saved state."""
    gen = torch.Generator()
    gen.manual_seed(zlib.crc32(f"{seed}/{rank}/{step}".encode()))
    return gen


# --- tasks ----------------------------------------------------------------------------------------------------
class Task(ABC):
    """One DG stage: its networks, EMA copies, optimizers, data and training step.

    Subclasses (``dgkit.training.idsg.IDSGTask``, ``dgkit.training.rfg.RFGTask``) set ``kind``,
    ``subdir`` (``expr_lm``/``expr``) and ``loss_names`` and fill ``nets``, ``ema`` and ``optims``.
    """

    kind: str = ""
    subdir: str = ""
    loss_names: tuple[str, ...] = ()

    def __init__(self, cfg: TrainConfig, rt: Runtime):
        self.cfg, self.rt = cfg, rt
        self.step = 0  # the step being trained (set by the loop)
        self.nets: dict[str, nn.Module] = {}
        self.ema: dict[str, nn.Module] = {}
        self.optims: dict[str, torch.optim.Optimizer] = {}

    # networks
    def init_networks(self, nets: dict[str, nn.Module], ema_names: tuple[str, ...]) -> None:
        """Seed, build EMA copies (before or after he_init; docs/how-dg-works.md §8), move to the device, sync ranks."""
        from .losses import he_init

        self.nets = nets
        if self.cfg.ema_from_default_init:
            self.ema = {k: copy.deepcopy(nets[k]) for k in ema_names}
        if self.cfg.he_init:
            for net in nets.values():
                net.apply(he_init)
        if not self.cfg.ema_from_default_init:
            self.ema = {k: copy.deepcopy(nets[k]) for k in ema_names}
        for net in [*self.nets.values(), *self.ema.values()]:
            net.to(self.rt.device).train()
            for p in net.parameters():
                p.requires_grad_(True)
        for net in self.ema.values():
            net.requires_grad_(False)
        self.rt.broadcast_({**self.nets, **{f"ema.{k}": v for k, v in self.ema.items()}})

    def adam(self, net: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        # fused: one kernel for all parameters instead of a Python loop over tensors
        return torch.optim.Adam(net.parameters(), lr=lr or self.cfg.lr, betas=tuple(self.cfg.betas),
                                weight_decay=self.cfg.weight_decay, fused=True)

    def r1_weight(self) -> float:
        """Weight of R1 at this step: ``lambda_reg * r1_every`` every ``r1_every``-th step, else 0."""
        k = self.cfg.r1_every
        return self.cfg.lambda_reg * k if self.step % k == 0 else 0.0

    def loss_meter(self, n_micro_batches: int) -> tuple[dict[str, float], Callable[..., None]]:
        """Logged losses of one step (zeros for every ``loss_names`` entry) and ``add(name=tensor, ...)``, which
        accumulates each loss averaged over the step's micro-batches (gradient accumulation)."""
        out: dict[str, float] = dict.fromkeys(self.loss_names, 0.0)

        def add(**values: torch.Tensor) -> None:
            for k, v in values.items():
                out[k] += float(v.detach()) / n_micro_batches

        return out, add

    @torch.no_grad()
    def update_ema(self) -> None:
        beta = self.cfg.ema_beta
        for name, ema in self.ema.items():  # ema += (1 - beta) * (net - ema), all tensors in one call
            torch._foreach_lerp_(list(ema.parameters()), list(self.nets[name].parameters()), 1.0 - beta)

    # the rest is method-specific
    @abstractmethod
    def build_dataset(self) -> Dataset:
        """The training set (items are dicts; the default collate batches them)."""

    @abstractmethod
    def train_step(self, batches: list[dict], gen: torch.Generator) -> dict[str, float]:
        """One optimizer step over ``grad_accum`` micro-batches; returns the losses (floats)."""

    @abstractmethod
    def release_checkpoint(self) -> dict[str, dict[str, torch.Tensor]]:
        """``{net_name: state_dict}`` in the official layout (what ``dgkit.load_dg`` reads)."""

    @abstractmethod
    def sample_grid(self, batch: dict) -> np.ndarray:
        """(H,W,3) uint8 RGB picture of the EMA networks' current output on a fixed batch."""

    def result_nets(self) -> dict[str, nn.Module]:
        """The networks a :class:`TrainResult` hands back: the EMA copies (IDSG adds D and C)."""
        return dict(self.ema)

    def batch_to_device(self, batch: dict) -> dict:
        return {k: v.to(self.rt.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
                for k, v in batch.items()}


def requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


def cpu_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict as contiguous float32 CPU tensors (the official files' format)."""
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()}


# --- data order -----------------------------------------------------------------------------------------------
class _Len:
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


class _EpochItems(Dataset):
    """Wraps a dataset so that items are addressed as (epoch, index): pair drawing follows the epoch."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        if hasattr(self.dataset, "set_epoch") and getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


class StreamBatchSampler:
    """Endless batches of ``(epoch, index)``: per-epoch ``DistributedSampler`` permutations, concatenated.

    The position is ``consumed`` (items already drawn by this process), so the stream is a pure function of
    (seed, rank, world, consumed): resuming at step k restarts exactly where the run was. Batches may span
    epochs, so datasets smaller than a batch still work.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int, rank: int, world: int, consumed: int = 0):
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.consumed = consumed
        self.per_epoch = math.ceil(n / world)

    def _epoch(self, epoch: int) -> list[int]:
        sampler = DistributedSampler(_Len(self.n), num_replicas=self.world, rank=self.rank, shuffle=True,
                                     seed=self.seed, drop_last=False)
        sampler.set_epoch(epoch)
        return list(sampler)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, offset = divmod(self.consumed, self.per_epoch)
        order = self._epoch(epoch)
        while True:
            batch = []
            while len(batch) < self.batch_size:
                if offset == len(order):
                    epoch, offset = epoch + 1, 0
                    order = self._epoch(epoch)
                batch.append((epoch, order[offset]))
                offset += 1
            yield batch


# --- checkpoints ----------------------------------------------------------------------------------------------
def checkpoint_dir(run_dir: Path, task_or_kind: Task | str) -> Path:
    kind = task_or_kind if isinstance(task_or_kind, str) else task_or_kind.kind
    return Path(run_dir) / {"rfg": "expr", "idsg": "expr_lm"}[kind] / "checkpoints"


def _steps_of(folder: Path, suffix: str) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob(f"*{suffix}"):
        head = path.name[: -len(suffix)]
        if head.isdigit():
            found.append((int(head), path))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike, kind: str, *, state: bool = False) -> Path | None:
    """The highest-step ``{step}_nets_ema.ckpt`` (or ``_train_state.pt`` with ``state=True``) of a run."""
    found = _steps_of(checkpoint_dir(Path(run_dir), kind), "_train_state.pt" if state else "_nets_ema.ckpt")
    return found[-1][1] if found else None


def _save(task: Task, step: int, run_dir: Path) -> tuple[Path, Path]:
    folder = checkpoint_dir(run_dir, task)
    ckpt = save_checkpoint(task.release_checkpoint(), folder / f"{step}_nets_ema.ckpt")
    state = {
        "format": "dgkit-train-state", "version": 1, "kind": task.kind, "step": step,
        "config": json.dumps(config_to_dict(task.cfg)),
        "nets": {k: v.state_dict() for k, v in task.nets.items()},
        "ema": {k: v.state_dict() for k, v in task.ema.items()},
        "optims": {k: v.state_dict() for k, v in task.optims.items()},
        "scaler": task.rt.scaler.state_dict() if task.rt.scaler is not None else {},
        "rng": {"torch": torch.get_rng_state(), "python": json.dumps(random.getstate())},
    }
    state_path = save_checkpoint(state, folder / f"{step}_train_state.pt")
    keep = task.cfg.keep_checkpoints
    if keep > 0:
        for suffix in ("_nets_ema.ckpt", "_train_state.pt"):
            for _, old in _steps_of(folder, suffix)[:-keep]:
                old.unlink(missing_ok=True)
    return ckpt, state_path


def _torch_reason(exc: BaseException) -> str:
    """torch's error in a few words, without its advice to load with ``weights_only=False`` (never safe here)."""
    text = str(exc).strip().splitlines()
    first = text[0][:160] if text else ""
    if "weights_only" in str(exc) or isinstance(exc, pickle.UnpicklingError):
        return "it holds Python objects other than tensors, which dgkit refuses to load (they could run code)"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _load_state(task: Task, path: Path) -> int:
    hint = (f"delete it to resume from the previous train state, or train into a new --out folder without "
            "--resume")
    try:
        state = torch.load(path, map_location=task.rt.device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(f"cannot read the train state {path} ({_torch_reason(exc)}); {hint}") from None
    if not isinstance(state, dict) or state.get("format") != "dgkit-train-state" or state.get("kind") != task.kind:
        raise CheckpointError(f"{path} is not a dgkit {task.kind.upper()} train state; resume needs the "
                              f"*_train_state.pt written by `dgkit train {task.kind}`")
    try:
        saved = json.loads(state["config"])
        changed = [k for k, v in config_to_dict(task.cfg).items()
                   if k not in ("steps", "resume", "progress", "device", "num_workers", "log_every", "sample_every",
                                "save_every", "keep_checkpoints", "tensorboard") and saved.get(k, v) != v]
        if changed and task.rt.is_main:
            log.warning("dgkit train: resuming with changed settings (%s); the run will differ from an "
                        "uninterrupted one", ", ".join(changed))
        for group, target in (("nets", task.nets), ("ema", task.ema), ("optims", task.optims)):
            for name, obj in target.items():
                obj.load_state_dict(state[group][name])
        if task.rt.scaler is not None and state["scaler"]:
            task.rt.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        py = json.loads(state["rng"]["python"])
        random.setstate((py[0], tuple(py[1]), py[2]))
        return int(state["step"])
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        what = f"it has no {exc.args[0]!r} entry" if isinstance(exc, KeyError) else _torch_reason(exc)
        raise CheckpointError(f"{path} is a damaged or incompatible {task.kind.upper()} train state ({what}); "
                              f"{hint}") from None


# --- logging --------------------------------------------------------------------------------------------------
class _Logger:
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


def _write_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


# --- the loop -------------------------------------------------------------------------------------------------
def _as_config(kind: str, config: TrainConfig | Mapping | str | os.PathLike | None, values: dict) -> TrainConfig:
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


def _check_finite(losses: Mapping[str, float], step: int, last_good: Path | None) -> None:
    """Stop with TrainingError when a loss is NaN or infinite (nothing is saved from this step on)."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(float(v))}
    if not bad:
        return
    where = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was saved before it"
    raise TrainingError(
        f"training stopped at step {step}: loss {', '.join(f'{k}={v}' for k, v in bad.items())} is not finite; "
        f"{where}. Lower the learning rate (--set lr=...), check the data, or resume from the last checkpoint "
        "with --resume.")


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
        start = _load_state(task, state_file)
    if rt.is_main:
        (run_dir / f"config_{task.kind}.json").write_text(json.dumps(config_to_dict(cfg), indent=2) + "\n")

    dataset = task.build_dataset()
    sampler = StreamBatchSampler(len(dataset), cfg.batch_size, seed=cfg.seed, rank=rt.rank, world=rt.world,
                                 consumed=start * cfg.batch_size * cfg.grad_accum)
    loader = DataLoader(_EpochItems(dataset), batch_sampler=sampler, num_workers=cfg.num_workers,
                        pin_memory=rt.device.type == "cuda", persistent_workers=False)
    fixed = next(iter(DataLoader(_EpochItems(dataset), batch_size=min(4, len(dataset)),
                                 sampler=[(0, i) for i in range(min(4, len(dataset)))])))
    logger = _Logger(task, run_dir, start, rt.is_main)
    samples: list[Path] = []
    ckpt = state_path = None
    window: dict[str, list[float]] = {}
    final: dict[str, float] = {}
    progress = None
    if rt.is_main and cfg.progress:
        from tqdm.auto import tqdm

        progress = tqdm(total=cfg.steps, initial=start, desc=f"train {task.kind}", unit="step")
    batches = iter(loader)
    t0, t_window, n_window = time.perf_counter(), time.perf_counter(), 0
    step = start
    try:
        for step in range(start + 1, cfg.steps + 1):
            task.step = step
            micro = [task.batch_to_device(next(batches)) for _ in range(cfg.grad_accum)]
            losses = task.train_step(micro, step_generator(cfg.seed, rt.rank, step))
            _check_finite(losses, step, ckpt or latest_checkpoint(run_dir, task.kind))
            rt.end_iteration()
            task.update_ema()
            for k, v in losses.items():
                window.setdefault(k, []).append(v)
            n_window += 1
            if progress is not None:
                progress.update(1)
            if step % max(cfg.log_every, 1) == 0 or step == cfg.steps:
                elapsed = time.perf_counter() - t_window
                final = {k: float(np.mean(v)) for k, v in window.items()}
                speed = n_window * cfg.batch_size * cfg.grad_accum * rt.world / max(elapsed, 1e-9)
                logger.write(step, {"time_s": logger.time_offset + time.perf_counter() - t0, "samples_per_s": speed,
                                    **final})
                if progress is not None:
                    progress.set_postfix({k: f"{v:.3g}" for k, v in list(final.items())[:4]})
                window, t_window, n_window = {}, time.perf_counter(), 0
            if rt.is_main and cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.steps):
                samples.append(_write_png(run_dir / f"samples_{task.kind}" / f"{step:06d}.png",
                                          task.sample_grid(task.batch_to_device(fixed))))
            if rt.is_main and ((cfg.save_every and step % cfg.save_every == 0) or step == cfg.steps):
                ckpt, state_path = _save(task, step, run_dir)
        if start >= cfg.steps and rt.is_main:
            ckpt = latest_checkpoint(run_dir, task.kind)
            state_path = latest_checkpoint(run_dir, task.kind, state=True)
        rt.barrier()
    finally:
        if progress is not None:
            progress.close()
        logger.close()
    return TrainResult(kind=task.kind, run_dir=run_dir, steps=max(step, start), checkpoint=ckpt,
                       state_path=state_path, log_path=logger.path if rt.is_main else None, final_losses=final,
                       samples=samples, nets=task.result_nets())


def train_idsg(config: IDSGConfig | Mapping | str | os.PathLike | None = None, *, vgg: nn.Module | None = None,
               **values: Any) -> TrainResult:
    """Train the IDSG (shape generator; losses in docs/how-dg-works.md §9).

    Args:
        config: an :class:`IDSGConfig`, a mapping of its fields, or a JSON/YAML file; None = defaults.
        vgg: a VGG-Face module for the identity features (default: loaded from ``config.weights_dir``).
        **values: field overrides, e.g. ``data="data/x", out="runs/x", steps=100``.
    """
    from .idsg import IDSGTask

    return train(IDSGTask, _as_config("idsg", config, values), vgg=vgg)


def train_rfg(config: RFGConfig | Mapping | str | os.PathLike | None = None, *, vgg: nn.Module | None = None,
              **values: Any) -> TrainResult:
    """Train the RFG (face generator and style encoder; losses in docs/how-dg-works.md §9); arguments as :func:`train_idsg`
    (``vgg`` gives the perceptual loss)."""
    from .rfg import RFGTask

    return train(RFGTask, _as_config("rfg", config, values), vgg=vgg)


# --- VGG-Face ---------------------------------------------------------------------------------------------------
def find_vgg_face(weights_dir: str | os.PathLike | None, allow_synthetic: bool) -> Path:
    """Path of ``vgg_face_dag.pth`` in dgkit's weight folders (or the synthetic one if allowed)."""
    from ..weights import OFFICIAL_FILES, synthetic_weights_dir, weights_search_dirs

    searched = weights_search_dirs(weights_dir)
    for folder in searched:
        if (folder / OFFICIAL_FILES["vgg_face"]).is_file():
            return folder / OFFICIAL_FILES["vgg_face"]
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


# --- export ---------------------------------------------------------------------------------------------------
TRAINED_MARKER = "DGKIT_TRAINED.json"


def export_weights(*run_dirs: str | os.PathLike, out_dir: str | os.PathLike, weights_dir: str | os.PathLike | None = None,
                   allow_synthetic_vgg: bool = False, link: bool = True) -> Path:
    """Assemble a weights folder that :func:`dgkit.load_dg` reads from trained runs.

    The latest RFG and IDSG ``nets_ema`` checkpoints of ``run_dirs`` are copied under the official names
    (``expr/checkpoints/501500_nets_ema.ckpt``, ``expr_lm/checkpoints/30000_nets_ema.ckpt``, whatever the
    step); a stage no run has comes from ``weights_dir``'s weights (dgkit's search path when None), and so
    does ``vgg_face_dag.pth``; files from a weights folder are symlinked when ``link`` (else copied), trained
    ones are copied. ``DGKIT_TRAINED.json`` records where each file came from and whether it is synthetic.

    Returns:
        ``out_dir`` (pass it to ``dgkit.load_dg``).
    Raises:
        WeightsError: ``out_dir`` already holds weight files (nothing is overwritten).
        WeightsNotFoundError: a stage is in no run and not in the weight folders.
    """
    from ..weights import (
        OFFICIAL_FILES,
        synthetic_seed,
        synthetic_weights_dir,
        weights_search_dirs,
    )

    out = Path(out_dir).expanduser()
    targets = {kind: out / rel for kind, rel in OFFICIAL_FILES.items()}
    existing = [str(p) for p in targets.values() if p.exists() or p.is_symlink()]
    if existing:
        raise WeightsError(f"{out} already holds weight files ({', '.join(existing)}); export into a new folder")
    sources: dict[str, tuple[Path, str]] = {}
    for run in run_dirs:
        for kind in ("rfg", "idsg"):
            found = latest_checkpoint(run, kind)
            if found is not None:
                sources[kind] = (found, "trained")
    folders = weights_search_dirs(weights_dir) + ([synthetic_weights_dir()] if allow_synthetic_vgg else [])
    for kind in ("rfg", "idsg", "vgg_face"):
        if kind in sources:
            continue
        for folder in folders:
            if (folder / OFFICIAL_FILES[kind]).is_file():
                sources[kind] = (folder / OFFICIAL_FILES[kind], "weights folder")
                break
        else:
            raise WeightsNotFoundError(
                f"no {kind} weights for the export: no run in {', '.join(map(str, run_dirs)) or '(none)'} has "
                f"them and {OFFICIAL_FILES[kind]} is not in {', '.join(map(str, folders))}")
    for kind, (src, origin) in sources.items():
        if origin == "trained":
            load_checkpoint(src, kind)  # refuse a damaged or mismatched file before placing it
        dst = targets[kind]
        dst.parent.mkdir(parents=True, exist_ok=True)
        if link and origin == "weights folder":
            try:
                dst.symlink_to(src.resolve())
                continue
            except OSError:
                pass
        shutil.copy2(src, dst)
    marker = {"trained_by": "dgkit", "files": {}}
    for kind, (src, origin) in sources.items():
        marker["files"][kind] = {"source": str(src.resolve()), "origin": origin,
                                 "placed": "symlink" if targets[kind].is_symlink() else "copy",
                                 "synthetic": synthetic_seed(src) is not None}
    (out / TRAINED_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return out
