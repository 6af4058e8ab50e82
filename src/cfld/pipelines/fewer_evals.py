"""Training-free options of :class:`~cfld.pipelines.CFLDPipeline` that evaluate the UNet less.

* ``guidance_interval=(t_lo, t_hi)`` — guidance only at timesteps ``t_lo ≤ t ≤ t_hi``
  (Kynkäänniemi et al., NeurIPS 2024, "Applying guidance in a limited interval improves sample
  and distribution quality").  Outside the interval only the last branch of the guidance type
  (the full-condition one, ε(C, pose, A) for every type that has it) is evaluated and its
  prediction is used unguided: one UNet sample per image instead of ``len(branches)``.
* ``deep_cache_interval=N`` — DeepCache-style reuse of the deep UNet features
  (:mod:`cfld.pipelines.deep_cache`): the full UNet every N-th step, its shallow levels only in
  between.
* ``reuse_eps_every=N`` — NOT DeepCache: the whole (guided) ε of a step is computed fresh on
  every N-th step (steps 0, N, 2N, ...) and reused unchanged on the steps between.  A coarse
  stand-in for feature caching; it skips whole UNet calls.

:class:`EvalPlan` decides per step which branches run and counts the UNet samples evaluated
(``unet_evals_per_image``, full evaluations, and ``shallow_unet_evals_per_image``, DeepCache's
shallow ones, of :class:`~cfld.pipelines.CFLDPipelineOutput`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from torch import Tensor, nn

from cfld.models.cfld import CFLDConditions
from cfld.pipelines.deep_cache import DeepCache, check_deep_cache_interval
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


def check_reductions(guidance_interval: Sequence[float] | None, reuse_eps_every: int | None,
                     deep_cache_interval: int | None
                     ) -> tuple[tuple[float, float] | None, int | None, int | None]:
    """Validate the three options (see the module docstring)."""
    return (check_guidance_interval(guidance_interval), check_reuse_every(reuse_eps_every),
            check_deep_cache_interval(deep_cache_interval))


class EvalPlan:
    """Which branches the UNet evaluates at each step, and how many samples it has evaluated."""

    def __init__(self, guidance: GuidanceType, branched: CFLDConditions,
                 conditions: CFLDConditions, uncond_prompt: Tensor, unet: nn.Module,
                 interval: tuple[float, float] | None, reuse_every: int | None,
                 deep_cache_every: int | None = None) -> None:
        self.guidance, self.branched = guidance, branched
        self.interval, self.reuse_every = interval, reuse_every
        self.batch = conditions.batch_size
        self.deep_cache = DeepCache(unet, deep_cache_every) if deep_cache_every else None
        self.samples = self.shallow_samples = 0
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

    @contextlib.contextmanager
    def unet_call(self, i: int, n_samples: int) -> Iterator[None]:
        """Context of the UNet call of step ``i`` on ``n_samples`` samples: counts it (full or
        shallow) and switches DeepCache's record/replay."""
        if self.deep_cache is None:
            self.samples += n_samples
            yield
            return
        with self.deep_cache.step(i, n_samples) as full:
            if full:
                self.samples += n_samples
            else:
                self.shallow_samples += n_samples
            yield

    def record(self, eps: Tensor) -> Tensor:
        """Keep ``eps`` for reuse (``reuse_eps_every``); returns ``eps``."""
        if self.reuse_every is not None:
            self._eps = eps
        return eps

    @property
    def evals_per_image(self) -> int:
        """Full UNet samples evaluated per image (3 per step for ``uc_down_full`` by default)."""
        return self.samples // self.batch if self.batch else 0

    @property
    def shallow_evals_per_image(self) -> int:
        """Shallow (DeepCache) UNet samples evaluated per image (0 without DeepCache)."""
        return self.shallow_samples // self.batch if self.batch else 0


__all__ = ["EvalPlan", "check_guidance_interval", "check_reductions", "check_reuse_every"]
