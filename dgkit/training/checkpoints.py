"""Checkpoints of a run: the release file ``{step}_nets_ema.ckpt`` (official layout) and the exact-resume
``{step}_train_state.pt`` (networks, EMA, optimizers, loss scale, step, RNG), their folders and discovery."""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..checkpoint import save_checkpoint
from ..errors import CheckpointError
from .config import config_to_dict

if TYPE_CHECKING:
    from .task import Task

__all__ = ["checkpoint_dir", "latest_checkpoint", "load_train_state", "save_checkpoints"]

log = logging.getLogger("dgkit")


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


def save_checkpoints(task: Task, step: int, run_dir: Path) -> tuple[Path, Path]:
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


def load_train_state(task: Task, path: Path) -> int:
    hint = ("delete it to resume from the previous train state, or train into a new --out folder without "
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
                   if k not in ("steps", "resume", "progress", "device", "num_workers", "prefetch", "log_every", "sample_every",
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


