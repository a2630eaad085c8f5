"""Data order: an endless, resumable stream of batches of ``(epoch, index)`` keys.

The order is a pure function of (seed, rank, world, items consumed), so a resumed run draws exactly the
batches an uninterrupted one would; the data is sharded across processes with a ``DistributedSampler``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler

__all__ = ["EpochItems", "StreamBatchSampler"]


class _Len:
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n


class EpochItems(Dataset):
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


