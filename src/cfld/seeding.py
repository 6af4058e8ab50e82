"""Seeds derived from what a random draw is *for*, not from which process makes it.

A multi-process run must give the results of a single-process run (design §6).  That holds
when every draw of a sample comes from a generator seeded by the sample's identity — the run's
seed, the optimiser step and the sample's place in the global batch for training; the seed and
the pair's file names for generation — instead of from a stream that each process advances
through its own share of the data.

* :func:`derive_seed` hashes such an identity into a 63-bit seed (stable across processes,
  machines and Python runs, unlike ``hash()``);
* :func:`sample_generators` makes per-sample generators visible to layers that draw inside a
  forward pass (stochastic depth, :class:`cfld.models.swin.DropPath`) for the duration of a
  ``with`` block; outside one, those layers draw from torch's global generator as the authors'
  code does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import torch

_SAMPLE_GENERATORS: ContextVar[Sequence[torch.Generator] | None] = ContextVar(
    "cfld_sample_generators", default=None)


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from ``parts`` (ints and strings), e.g. ``(seed, step, index)`` or
    ``(seed, source name, target name)``; equal parts give equal seeds everywhere."""
    text = "\x1f".join(f"{type(p).__name__}:{p}" for p in parts)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def seeded_generator(*parts: int | str) -> torch.Generator:
    """A CPU generator seeded with :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


@contextmanager
def sample_generators(generators: Sequence[torch.Generator]) -> Iterator[None]:
    """Within the block, layers that draw per sample use ``generators[i]`` for batch row ``i``
    (:func:`current_sample_generators`)."""
    token = _SAMPLE_GENERATORS.set(list(generators))
    try:
        yield
    finally:
        _SAMPLE_GENERATORS.reset(token)


def current_sample_generators() -> Sequence[torch.Generator] | None:
    """The generators of the enclosing :func:`sample_generators` block, or None."""
    return _SAMPLE_GENERATORS.get()


def per_sample_uniform(generators: Sequence[torch.Generator], device: torch.device | None = None,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """One U[0, 1) draw per generator, as a (len(generators),) tensor on ``device``."""
    u = torch.stack([torch.rand((), generator=g) for g in generators])
    return u.to(device=device, dtype=dtype)


__all__ = ["current_sample_generators", "derive_seed", "per_sample_uniform", "sample_generators",
           "seeded_generator"]
