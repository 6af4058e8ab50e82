"""Training-free options of :class:`~cfld.pipelines.CFLDPipeline` that evaluate the UNet less.

* ``guidance_interval=(t_lo, t_hi)`` — guidance only at timesteps ``t_lo ≤ t ≤ t_hi``
  (Kynkäänniemi et al., NeurIPS 2024, "Applying guidance in a limited interval improves sample
  and distribution quality").  Outside the interval only the last branch of the guidance type
  (the full-condition one, ε(C, pose, A) for every type that has it) is evaluated and its
  prediction is used unguided: one UNet sample per image instead of ``len(branches)``.
* ``reuse_eps_every=N`` — NOT DeepCache: the whole (guided) ε of a step is computed fresh on
  every N-th step (steps 0, N, 2N, ...) and reused unchanged on the steps between.  A coarse
  stand-in for feature caching; it skips whole UNet calls.

:class:`EvalPlan` decides per step which branches run and counts the UNet samples evaluated
(``unet_evals_per_image`` of :class:`~cfld.pipelines.CFLDPipelineOutput`).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from cfld.models.cfld import CFLDConditions
from cfld.pipelines.guidance import GuidanceType, branch_conditions


def check_guidance_interval(interval: Sequence[float] | None) -> tuple[float, float] | None:
    """Validate ``guidance_interval``: ``None`` or ``(t_lo, t_hi)`` with 0 ≤ t_lo ≤ t_hi."""
    if interval is None:
        return None
    fix = ("pass guidance_interval=(t_lo, t_hi) with 0 <= t_lo <= t_hi, in scheduler "
           "timesteps (e.g. (0, 500)), or None to guide at every step")
    if isinstance(interval, (str, bytes)) or not isinstance(interval, Sequence) \
            or len(interval) != 2:
        raise ValueError(f"guidance_interval must be a pair, got {interval!r}: {fix}")
    try:
        lo, hi = float(interval[0]), float(interval[1])
    except (TypeError, ValueError):
        raise ValueError(f"guidance_interval must hold two numbers, got {interval!r}: {fix}"
                         ) from None
    if not (lo == lo and hi == hi) or lo < 0 or lo > hi:  # NaN, negative or reversed
        raise ValueError(f"guidance_interval {interval!r} is not valid: {fix}")
    return lo, hi


def check_reuse_every(n: int | None) -> int | None:
    """Validate ``reuse_eps_every``: ``None`` (off) or an int ≥ 1 (1 = off as well)."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"reuse_eps_every must be None or an int >= 1 (e.g. 2: a fresh ε every "
                         f"second step), got {n!r}")
    return None if n == 1 else n


class EvalPlan:
    """Which branches the UNet evaluates at each step, and how many samples it has evaluated."""

    def __init__(self, guidance: GuidanceType, branched: CFLDConditions,
                 conditions: CFLDConditions, uncond_prompt: Tensor,
                 interval: tuple[float, float] | None, reuse_every: int | None) -> None:
        self.guidance, self.branched = guidance, branched
        self.interval, self.reuse_every = interval, reuse_every
        self.batch = conditions.batch_size
        self.samples = 0
        self._eps: Tensor | None = None
        if interval is not None:
            self.unguided = GuidanceType(f"{guidance.name}[unguided]", guidance.branches[-1:],
                                         lambda e, s: e[0], "last branch only, unguided")
            self.unguided_cond = branch_conditions(self.unguided, conditions, uncond_prompt
                                                   ).to(device=branched.prompt.device,
                                                        dtype=branched.prompt.dtype)

    def guided(self, t: Tensor | float) -> bool:
        """True if step ``t`` is guided (always, without an interval)."""
        if self.interval is None:
            return True
        return self.interval[0] <= float(t) <= self.interval[1]

    def for_step(self, t: Tensor | float) -> tuple[GuidanceType, CFLDConditions]:
        """The guidance type and batched conditions to evaluate at step ``t``."""
        if self.guided(t):
            return self.guidance, self.branched
        return self.unguided, self.unguided_cond

    def reused(self, i: int) -> Tensor | None:
        """The ε to reuse at step index ``i`` instead of evaluating the UNet, else ``None``."""
        if self.reuse_every is None or i % self.reuse_every == 0:
            return None
        return self._eps

    def record(self, eps: Tensor, n_samples: int) -> Tensor:
        """Count ``n_samples`` UNet samples and keep ``eps`` for reuse; returns ``eps``."""
        self.samples += n_samples
        if self.reuse_every is not None:
            self._eps = eps
        return eps

    @property
    def evals_per_image(self) -> int:
        """UNet samples evaluated per image (3 per step for ``uc_down_full`` by default)."""
        return self.samples // self.batch if self.batch else 0


__all__ = ["EvalPlan", "check_guidance_interval", "check_reuse_every"]
