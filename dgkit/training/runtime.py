"""Runtime of one training process: device choice, process group (torchrun), mixed precision, gradient
averaging across processes and per-step random generators.

Distributed: launch with ``torchrun --nproc_per_node=K -m dgkit train ...``; each process reads
RANK/WORLD_SIZE/LOCAL_RANK and gradients are averaged with an all-reduce before every optimizer step (plain
all-reduce rather than the DDP wrapper, because R1 needs a double backward and the GAN steps alternate between
networks). Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import zlib
from collections.abc import Mapping

import torch
import torch.distributed as dist
from torch import nn

from .config import TrainConfig

__all__ = ["Runtime", "step_generator"]

log = logging.getLogger("dgkit")


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

