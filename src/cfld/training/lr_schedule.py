"""The official learning-rate schedule (fidelity §6.3): linear warm-up, then step decay.

For the 0-based optimiser step ``s`` (the LR in effect for the (s+1)-th update)::

    s <  warmup:  lr = base · (rate + (1 − rate) · (s + 1) / warmup)
    s >= warmup:  lr = base · decay ** (number of boundaries b with b <= s)

with boundaries = decay epoch × iterations per epoch.  :class:`WarmupStepDecay` is the
multiplier as a LambdaLR-compatible callable object (its state is stored by
``LambdaLR.state_dict()``); ``torch.optim.lr_scheduler.LambdaLR`` calls it with ``last_epoch``,
which is exactly ``s`` when the scheduler is stepped once per optimiser step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR


def decay_boundaries(decay_epochs: Sequence[float], iters_per_epoch: int) -> list[int]:
    """Per-iteration decay boundaries: ``round(epoch × iters_per_epoch)`` (sorted).

    Whole epochs (official: [50]) give exact multiples; fractional epochs are allowed for short
    runs.
    """
    if iters_per_epoch < 1:
        raise ValueError(f"iters_per_epoch must be >= 1, got {iters_per_epoch}")
    return sorted(int(round(float(e) * int(iters_per_epoch))) for e in decay_epochs)


class WarmupStepDecay:
    """LR multiplier of step ``s`` (see module docstring).

    Args:
        warmup_steps: Warm-up length (1000); 0 = no warm-up.
        warmup_rate: Start of the warm-up as a fraction of the base LR (0.1).
        boundaries: Steps at which the LR is multiplied by ``decay_rate``.
        decay_rate: Decay factor (0.1).
    """

    def __init__(self, warmup_steps: int = 1000, warmup_rate: float = 0.1,
                 boundaries: Sequence[int] = (), decay_rate: float = 0.1) -> None:
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)
        self.warmup_rate = float(warmup_rate)
        self.boundaries = sorted(int(b) for b in boundaries)
        self.decay_rate = float(decay_rate)

    def __call__(self, step: int) -> float:
        s = int(step)
        if s < self.warmup_steps:
            return self.warmup_rate + (1.0 - self.warmup_rate) * (s + 1) / self.warmup_steps
        n = sum(1 for b in self.boundaries if b <= s)
        return self.decay_rate**n


def lr_at(step: int, base_lr: float, warmup_steps: int = 1000, warmup_rate: float = 0.1,
          boundaries: Sequence[int] = (), decay_rate: float = 0.1) -> float:
    """The learning rate of 0-based step ``step`` (for tests and plots)."""
    return base_lr * WarmupStepDecay(warmup_steps, warmup_rate, boundaries, decay_rate)(step)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int = 1000,
                       warmup_rate: float = 0.1, boundaries: Sequence[int] = (),
                       decay_rate: float = 0.1) -> LambdaLR:
    """A LambdaLR applying :class:`WarmupStepDecay`; call ``.step()`` after every update."""
    return LambdaLR(optimizer, WarmupStepDecay(warmup_steps, warmup_rate, boundaries, decay_rate))
