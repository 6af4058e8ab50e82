"""The order in which a run sees its training pairs: seeded, sharded, resumable mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch import Tensor
from torch.utils.data import Sampler

#: The item keys a training step reads (the unified item schema, :class:`cfld.data.PairItem`).
STEP_KEYS = ("img_src", "img_tgt", "img_cond", "pose_img_src", "pose_img_tgt")


class EpochBatchSampler(Sampler[list[int]]):
    """Seeded per-epoch shuffle, drop_last, sharded over processes, resumable mid-epoch.

    The permutation of epoch ``e`` depends only on ``(seed, e)``; global batch ``b`` holds
    ``perm[b·B·W:(b+1)·B·W]`` and process ``r`` takes its ``r``-th slice of ``B`` indices.

    Args:
        num_items: Data set length.
        batch_size: Per-process batch size B.
        seed: Base seed.
        rank, world_size: This process and the number of processes W.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.num_items = int(num_items)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0
        self.start = 0

    @property
    def batches_per_epoch(self) -> int:
        """Optimiser steps per epoch."""
        return self.num_items // (self.batch_size * self.world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from its batch ``start`` (skipping consumed batches)."""
        self.epoch, self.start = int(epoch), int(start)

    def permutation(self, epoch: int) -> Tensor:
        """The item order of ``epoch``."""
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
        return torch.randperm(self.num_items, generator=g)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.permutation(self.epoch)
        step = self.batch_size * self.world_size
        for b in range(self.start, self.batches_per_epoch):
            chunk = perm[b * step:(b + 1) * step]
            yield chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size].tolist()


def device_batch(batch: Mapping[str, object], device: torch.device) -> dict[str, Tensor]:
    """The tensors a training step needs, on ``device``."""
    out = {}
    for k in STEP_KEYS:
        value = batch[k]
        assert isinstance(value, Tensor)
        out[k] = value.to(device, non_blocking=True)
    return out


__all__ = ["STEP_KEYS", "EpochBatchSampler", "device_batch"]
