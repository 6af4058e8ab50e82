"""Strict, safe loading and atomic saving of model folders (safetensors + config.json)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from torch import Tensor, nn

from cfld.checks import writes
from cfld.checks.writes import atomic_dir

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the architecture built from the configuration."""


def _listing(items: list[str], limit: int = 20) -> str:
    head = "\n    ".join(items[:limit])
    return head + (f"\n    ... and {len(items) - limit} more" if len(items) > limit else "")


def check_state_dict(model: nn.Module, state: Mapping[str, Tensor], hint: str = "") -> None:
    """Raise :class:`CheckpointMismatchError` listing missing/unexpected keys and bad shapes."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"missing keys ({len(missing)}):\n    {_listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys ({len(unexpected)}):\n    {_listing(unexpected)}")
    if shapes:
        parts.append(f"shape mismatches ({len(shapes)}):\n    {_listing(shapes)}")
    raise CheckpointMismatchError(
        "checkpoint does not match the model built from the configuration:\n  "
        + "\n  ".join(parts) + (f"\n  {hint}" if hint else "")
    )


def load_state_strict(model: nn.Module, state: Mapping[str, Tensor], hint: str = "",
                      assign: bool = False) -> None:
    """``load_state_dict(strict=True)`` with one readable error listing every problem."""
    check_state_dict(model, state, hint)
    model.load_state_dict(dict(state), strict=True, assign=assign)


def atomic_save_dir(out_dir: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)`` then move ``tmp_dir`` to ``out_dir`` (replacing it).

    A crash mid-write never leaves a half-written folder where a good one was
    (:func:`cfld.checks.writes.atomic_dir`).
    """
    return atomic_dir(out_dir, write)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place.

    A crash mid-write never leaves a truncated file where a good one was; the file gets the
    umask's permissions (:mod:`cfld.checks.writes`).
    """
    return writes.write_bytes_atomic(path, data)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text version of :func:`write_bytes_atomic`."""
    return writes.write_text_atomic(path, text)
