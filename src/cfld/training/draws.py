"""Every random draw of a training sample, from (seed, step, sample index) alone.

A pair's draws — its timestep uniforms, its noise, its classifier-free dropout uniforms, the
VAE posterior noise and the stochastic-depth draws of H_S — come from generators seeded by the
run's seed, the optimiser step and the pair's index in the global batch
(:meth:`cfld.training.batches.BatchPlan.sample_indices`).  The same total batch therefore gives
the same step on 1 process × 4 pairs, 2 processes × 2 pairs or 1 process × 2 pairs × 2
accumulation steps, and a resumed run draws what the uninterrupted one drew.  (The authors draw
from per-process global streams; their image flips come from the data set, which draws per item:
:class:`cfld.data.datasets.DeepFashionTrain`.)

Rows follow the objective's layout: row ``j`` is the reconstruction sample of pair ``j`` (its
source), row ``B + j`` the transfer sample (its target) (:mod:`cfld.training.objective`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from cfld.seeding import seeded_generator


class SampleDraws:
    """Per-pair random streams for one micro-batch.

    Each call draws the next values of every pair's stream, two per pair (source row, target
    row); the calls of a step must come in a fixed order (the trainer's: posterior noise, noise,
    timestep uniforms, dropout uniforms).

    Args:
        seed: The run's seed.
        step: The 0-based optimiser step.
        indices: The pairs' indices in the global batch.
    """

    def __init__(self, seed: int, step: int, indices: Sequence[int]) -> None:
        self.indices = list(indices)
        self._streams = [seeded_generator(seed, step, i, "sample") for i in self.indices]
        # Stochastic depth draws in its own streams: how many layers draw does not shift the
        # noise or the timesteps.
        self.drop_path = [seeded_generator(seed, step, i, "drop_path") for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def normal(self, shape: Sequence[int]) -> Tensor:
        """Standard normal (2B, *shape): rows [sources; targets]."""
        per_pair = torch.stack([torch.randn((2, *shape), generator=g) for g in self._streams])
        return per_pair.transpose(0, 1).reshape(2 * len(self), *shape)  # (B, 2, ...) → (2B, ...)

    def uniform(self) -> Tensor:
        """U[0, 1) draws (2B,): rows [sources; targets]."""
        per_pair = torch.stack([torch.rand(2, generator=g) for g in self._streams])  # (B, 2)
        return per_pair.t().reshape(-1)


__all__ = ["SampleDraws"]
