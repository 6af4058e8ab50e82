"""The order in which a run sees its training pairs: seeded, sharded, resumable mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Sampler

#: The item keys a training step reads (the unified item schema, :class:`cfld.data.PairItem`).
STEP_KEYS = ("img_src", "img_tgt", "img_cond", "pose_img_src", "pose_img_tgt")
#: Keys a step uses when the data set provides them (the part-balanced loss's label maps).
OPTIONAL_STEP_KEYS = ("parts_src", "parts_tgt")


@dataclass(frozen=True)
class BatchPlan:
    """How one optimiser step's pairs are divided (fidelity §6.3): ``total`` pairs =
    ``per_process`` pairs per micro-batch × ``processes`` × ``accumulation`` micro-batches.

    Pair ``j`` of micro-batch ``a`` on process ``r`` is sample ``a·B·W + r·B + j`` of the global
    batch; its random draws depend on that index only (:mod:`cfld.training.draws`), so any
    division of the same total gives the same step.
    """

    per_process: int
    processes: int = 1
    accumulation: int = 1
    lr: float = 1e-4

    @property
    def total(self) -> int:
        return self.per_process * self.processes * self.accumulation

    def sample_indices(self, micro: int, rank: int) -> list[int]:
        """Global-batch indices of the pairs of micro-batch ``micro`` on process ``rank``."""
        first = (micro * self.processes + rank) * self.per_process
        return list(range(first, first + self.per_process))

    def check_resume(self, saved_total: int | None, saved_processes: int, where: object,
                     note: bool = False) -> None:
        """Refuse to resume a checkpoint of another total batch (its steps differ).

        Another process count or accumulation at the same total is fine: every draw of a step
        comes from (seed, step, sample index) and the data order from (seed, epoch), not from
        the per-process global RNG streams of the checkpoint, so the steps are the same up to
        float rounding (bit for bit with the same division).  ``note`` prints that it happens.

        Raises:
            ValueError: naming both process counts, both totals and the fix.
        """
        if saved_total != self.total:
            raise ValueError(
                f"the checkpoint in {where} was written by {saved_processes} process(es) at a "
                f"total batch of {saved_total} pairs per step; this run has {self.processes} "
                f"process(es) and a total batch of {self.total} (total_batch_size: checkpoint "
                f"{saved_total} vs now {self.total}): resume with --total-batch-size "
                f"{saved_total} (any process count x accumulation steps that divides it)")
        if note and saved_processes != self.processes:
            print(f"cfld train: resuming a {saved_processes}-process checkpoint on "
                  f"{self.processes} process(es) at the same total batch {self.total}: the same "
                  "steps, equal up to float rounding", flush=True)

    def describe(self) -> str:
        """One line for the start of a run."""
        return (f"batch: {self.processes} process(es) x {self.per_process} pairs x "
                f"{self.accumulation} accumulation step(s) = total batch {self.total} pairs "
                f"per optimiser step; lr {self.lr:.4g}")


#: Pairs per micro-batch and process when neither ``batch_size`` nor ``total_batch_size`` is set.
DEFAULT_BATCH_SIZE = 8
#: The paper's learning-rate rule: 5e-7 × total batch (1.12e-4 at the authors' 224; fidelity §6.3).
PAPER_LR_PER_PAIR = 5e-7


def resolve_batch_plan(batch_size: int | None, total_batch_size: int | None,
                       accumulation: int, processes: int, lr: float,
                       scale_lr: bool = False) -> BatchPlan:
    """The per-process batch from the given sizes, the authors' way (fidelity §6.3): a total
    (``INPUT.BATCH_SIZE``) is split by processes and accumulation steps; a per-process size is
    multiplied by them.

    Raises:
        ValueError: the total does not divide, or disagrees with an explicit ``batch_size``.
    """
    share = processes * accumulation
    if total_batch_size is None:
        per = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    else:
        if total_batch_size % share:
            raise ValueError(f"total_batch_size {total_batch_size} is not divisible by "
                             f"{processes} process(es) x {accumulation} accumulation step(s); "
                             "choose a multiple, or change the process or accumulation count")
        per = total_batch_size // share
        if batch_size is not None and batch_size != per:
            raise ValueError(f"batch_size {batch_size} x {processes} process(es) x "
                             f"{accumulation} accumulation step(s) != total_batch_size "
                             f"{total_batch_size}; give only one of the two")
    if per < 1:
        raise ValueError(f"batch_size must be >= 1, got {per}")
    plan = BatchPlan(per, processes, accumulation, lr)
    if scale_lr:
        plan = BatchPlan(per, processes, accumulation, PAPER_LR_PER_PAIR * plan.total)
    return plan


class EpochBatchSampler(Sampler[list[int]]):
    """Seeded per-epoch shuffle, drop_last, sharded over processes, resumable mid-epoch.

    The permutation of epoch ``e`` depends only on ``(seed, e)``; optimiser step ``b`` of the
    epoch takes the ``T = B·W·A`` items ``perm[b·T:(b+1)·T]``; micro-batch ``a`` of it holds
    ``perm[b·T + a·B·W : b·T + (a+1)·B·W]`` and process ``r`` takes its ``r``-th slice of ``B``.
    Every process iterates ``A`` micro-batches per step; no item is seen twice in an epoch.

    Args:
        num_items: Data set length.
        batch_size: Per-process micro-batch size B.
        seed: Base seed.
        rank, world_size: This process and the number of processes W.
        accumulation: Micro-batches per optimiser step A.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, accumulation: int = 1) -> None:
        self.num_items = int(num_items)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.accumulation = int(accumulation)
        self.epoch = 0
        self.start = 0

    @property
    def batches_per_epoch(self) -> int:
        """Optimiser steps per epoch."""
        return self.num_items // (self.batch_size * self.world_size * self.accumulation)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from its optimiser step ``start`` (skipping consumed ones)."""
        self.epoch, self.start = int(epoch), int(start)

    def permutation(self, epoch: int) -> Tensor:
        """The item order of ``epoch``."""
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
        return torch.randperm(self.num_items, generator=g)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start) * self.accumulation

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.permutation(self.epoch)
        width = self.batch_size * self.world_size
        for b in range(self.start, self.batches_per_epoch):
            for a in range(self.accumulation):
                first = (b * self.accumulation + a) * width + self.rank * self.batch_size
                yield perm[first:first + self.batch_size].tolist()


def device_batch(batch: Mapping[str, object], device: torch.device) -> dict[str, Tensor]:
    """The tensors a training step needs, on ``device``."""
    out = {}
    for k in STEP_KEYS + OPTIONAL_STEP_KEYS:
        if k not in batch and k in OPTIONAL_STEP_KEYS:
            continue
        value = batch[k]
        assert isinstance(value, Tensor)
        out[k] = value.to(device, non_blocking=True)
    return out


__all__ = ["DEFAULT_BATCH_SIZE", "PAPER_LR_PER_PAIR", "STEP_KEYS", "BatchPlan", "EpochBatchSampler",
           "device_batch", "resolve_batch_plan"]
