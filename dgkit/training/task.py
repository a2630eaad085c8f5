"""The base class of a DG training stage (:class:`Task`): networks, EMA copies, optimizers, the loss meter and
the hooks a stage fills in (dataset, step, release checkpoint, sample grid)."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .config import TrainConfig
from .runtime import Runtime

__all__ = ["Task", "cpu_state", "requires_grad"]


class Task(ABC):
    """One DG stage: its networks, EMA copies, optimizers, data and training step.

    Subclasses (``dgkit.training.idsg.IDSGTask``, ``dgkit.training.rfg.RFGTask``) set ``kind``,
    ``subdir`` (``expr_lm``/``expr``) and ``loss_names`` and fill ``nets``, ``ema`` and ``optims``.
    """

    kind: str = ""
    subdir: str = ""
    loss_names: tuple[str, ...] = ()
    reads_files: bool = False  # True when items are read from disk per step (worth prefetching in a thread)

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

    def loss_meter(self, n_micro_batches: int) -> tuple[dict[str, torch.Tensor], Callable[..., None]]:
        """Logged losses of one step (0-d zeros on the device for every ``loss_names`` entry) and
        ``add(name=tensor, ...)``, which accumulates each loss averaged over the step's micro-batches (gradient
        accumulation). The values stay on the device: the loop copies them to the host once per log interval."""
        zero = torch.zeros((), device=self.rt.device)
        out: dict[str, torch.Tensor] = dict.fromkeys(self.loss_names, zero)

        def add(**values: torch.Tensor) -> None:
            for k, v in values.items():
                out[k] = out[k] + v.detach().float() / n_micro_batches

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
    def train_step(self, batches: list[dict], gen: torch.Generator) -> dict[str, torch.Tensor]:
        """One optimizer step over ``grad_accum`` micro-batches; returns the losses (0-d tensors, or floats)."""

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

