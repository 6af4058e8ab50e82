"""DeepCache-style reuse of the deep UNet features between steps (Ma et al., CVPR 2024).

On a *cache* step the whole UNet runs and forward hooks record the outputs of its deep part:
``down_blocks[k:]``, ``mid_block`` and ``up_blocks[:n-k]`` (``k = keep_levels``, default 1).
On the other steps those modules are replaced, for that call only, by stubs that replay the
recorded outputs: only ``conv_in``, the shallow ``down_blocks[:k]`` (whose skip connections are
computed fresh) and the shallow ``up_blocks[n-k:]`` run, on top of the cached output of
``up_blocks[n-k-1]``.  The replayed deep *down* outputs only carry shapes (every module that would
read their values is replayed too); the pose-adapter residuals are still consumed in order.

Not compatible with :meth:`~cfld.pipelines.CFLDPipeline.compile_unet` (the stubs replace
``forward``); a change of batch size (``guidance_interval``) forces a cache step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import Tensor, nn


def _clone(out: Any) -> Any:
    if isinstance(out, Tensor):
        return out.clone()
    if isinstance(out, tuple):
        return tuple(_clone(o) for o in out)
    return out


class DeepCache:
    """Record/replay the deep part of a diffusers ``UNet2DConditionModel``."""

    def __init__(self, unet: nn.Module, interval: int, keep_levels: int = 1) -> None:
        n = len(unet.up_blocks)
        if not 1 <= keep_levels < n:
            raise ValueError(f"keep_levels must be in 1..{n - 1}, got {keep_levels}")
        self.interval = interval
        self.deep: list[nn.Module] = [*unet.down_blocks[keep_levels:], unet.mid_block,
                                      *unet.up_blocks[: n - keep_levels]]
        self._cache: dict[int, Any] = {}
        self._batch: int | None = None

    def is_cache_step(self, i: int, batch: int) -> bool:
        """Full UNet at every ``interval``-th step, at the first, and when the batch changes."""
        return i % self.interval == 0 or batch != self._batch or not self._cache

    @contextlib.contextmanager
    def step(self, i: int, batch: int) -> Iterator[bool]:
        """Context of one UNet call at step ``i``; yields True on a cache (full) step."""
        full = self.is_cache_step(i, batch)
        handles, patched = [], []
        if full:
            self._cache, self._batch = {}, batch
            for j, m in enumerate(self.deep):
                handles.append(m.register_forward_hook(
                    lambda mod, args, out, j=j: self._cache.__setitem__(j, _clone(out))))
        else:
            for j, m in enumerate(self.deep):
                m.forward = lambda *a, j=j, **k: _clone(self._cache[j])
                patched.append(m)
        try:
            yield full
        finally:
            for h in handles:
                h.remove()
            for m in patched:
                del m.forward  # back to the class's forward


def check_deep_cache_interval(n: int | None) -> int | None:
    """Validate ``deep_cache_interval``: ``None`` (off) or an int ≥ 1 (1 = off as well)."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"deep_cache_interval must be None or an int >= 1 (e.g. 3: the full "
                         f"UNet every third step, the shallow levels in between), got {n!r}")
    return None if n == 1 else n


__all__ = ["DeepCache", "check_deep_cache_interval"]
