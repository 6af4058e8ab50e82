"""Atomic, exactly-resumable training checkpoints.

A checkpoint is a folder ``<run>/checkpoints/step_NNNNNNNN/`` holding

* ``trainable.safetensors`` — every trainable parameter and every persistent buffer of the
  model (frozen weights are rebuilt from the seed / pretrained parts and verified with a
  fingerprint instead of being copied into every checkpoint);
* ``state.pt`` — optimiser, LR scheduler, the torch / numpy / python RNG states of every
  process (the training draws themselves are derived from the seed and the step,
  :mod:`cfld.training.draws`), step, epoch, batches consumed in the epoch, frozen-weight
  fingerprint and the run configuration (loadable with ``torch.load(weights_only=True)``).

The folder is written under a temporary name and renamed, so a crash never leaves a partial
checkpoint behind; only the newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from cfld.checkpoint import atomic_save_dir
from cfld.checks.models import load_safetensors, load_torch_file
from cfld.checks.writes import clean_stale_temps
from cfld.training.verify import (
    CorruptCheckpointError,
    newest_intact,
    verify_checkpoint,
    write_manifest,
)

CHECKPOINTS_DIR = "checkpoints"
TRAINABLE_NAME = "trainable.safetensors"
STATE_NAME = "state.pt"
_STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class TrainPosition:
    """Where the run stands: ``step`` optimiser steps done; the next batch is batch
    ``batch_in_epoch`` of epoch ``epoch`` (both 0-based)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


# ---------------------------------------------------------------------------------- RNG states
def capture_rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Global torch (+ CUDA) + numpy + python RNG states, and a generator's if given
    (weights_only-safe)."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Inverse of :func:`capture_rng_state`."""
    if generator is not None:
        generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    np_s = state["numpy"]
    np.random.set_state((np_s["name"], np_s["keys"].numpy().astype(np.uint32), np_s["pos"],
                         np_s["has_gauss"], np_s["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------- model state
def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters and persistent buffers (detached, contiguous, on CPU)."""
    params = dict(model.named_parameters())
    out = {}
    for name, tensor in model.state_dict().items():
        if name in params and not params[name].requires_grad:
            continue
        out[name] = tensor.detach().to("cpu").contiguous()
    return out


def frozen_fingerprint(model: nn.Module) -> list[float]:
    """Float64 sums (plain and squared) over all frozen parameters: detects a different init."""
    total = torch.zeros((), dtype=torch.float64)
    squares = torch.zeros((), dtype=torch.float64)
    count = 0
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                continue
            flat = p.detach().to("cpu", torch.float64)
            total += flat.sum()
            squares += (flat * flat).sum()
            count += p.numel()
    return [float(count), float(total), float(squares)]


# ---------------------------------------------------------------------------------- folders
def checkpoint_dir(run_dir: str | os.PathLike, step: int) -> Path:
    """``<run>/checkpoints/step_<step:08d>``."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"step_{step:08d}"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and d.is_dir() and (d / STATE_NAME).is_file() and (d / TRAINABLE_NAME).is_file():
            found.append((int(m.group(1)), d))
    return [d for _, d in sorted(found)]


def resolve_resume(resume: str | os.PathLike, run_dir: str | os.PathLike) -> Path | None:
    """A checkpoint folder from ``resume``: ``latest`` (in ``run_dir``; None when it has none),
    a run folder (its newest checkpoint) or a checkpoint folder."""
    # The newest *intact* checkpoint (verify.py): a damaged newer one is passed over with a
    # warning, and the temporaries of a killed checkpoint write are removed.
    required = (TRAINABLE_NAME, STATE_NAME)
    if os.fspath(resume) == "latest":
        clean_stale_temps(Path(run_dir) / CHECKPOINTS_DIR)
        found = list_checkpoints(run_dir)
        intact = newest_intact(found, required)
        if found and intact is None:
            raise CorruptCheckpointError(f"every checkpoint in {Path(run_dir) / CHECKPOINTS_DIR} "
                                         "is damaged; start a new run (another --out)")
        return intact
    path = Path(resume)
    if (path / STATE_NAME).is_file():
        return verify_checkpoint(path, required)
    clean_stale_temps(path / CHECKPOINTS_DIR)
    found = list_checkpoints(path)
    intact = newest_intact(found, required)
    if intact is not None:
        return intact
    if found:
        raise CorruptCheckpointError(f"every checkpoint in {path / CHECKPOINTS_DIR} is damaged")
    raise FileNotFoundError(f"no checkpoint found at {path} (expected a checkpoint folder with "
                            f"{STATE_NAME} or a run folder with {CHECKPOINTS_DIR}/step_*)")


def save_checkpoint(run_dir: str | os.PathLike, *, model: nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: LRScheduler,
                    position: TrainPosition, rng_states: list[dict[str, Any]],
                    fingerprint: list[float], config: dict[str, Any],
                    extra: dict[str, Any] | None = None, keep: int = 3) -> Path:
    """Write one checkpoint atomically and prune to the newest ``keep``."""
    target = checkpoint_dir(run_dir, position.step)
    weights = trainable_state_dict(model)
    state = {
        "format": 1,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_states,
        "step": position.step,
        "epoch": position.epoch,
        "batch_in_epoch": position.batch_in_epoch,
        "frozen_fingerprint": fingerprint,
        "config": config,
        "extra": extra or {},
    }

    def write(tmp: Path) -> None:
        save_file(weights, str(tmp / TRAINABLE_NAME))
        torch.save(state, tmp / STATE_NAME)
        write_manifest(tmp)  # last: a checkpoint whose files match it is complete

    atomic_save_dir(target, write)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``(trainable weights, state)`` of a checkpoint folder, verified against its manifest.

    Raises:
        FileNotFoundError: Not a checkpoint folder.
        CorruptCheckpointError: A file is missing, damaged or unreadable (named).
    """
    path = Path(path)
    for name in (TRAINABLE_NAME, STATE_NAME):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path / name} not found: not a complete checkpoint")
    verify_checkpoint(path, (TRAINABLE_NAME, STATE_NAME))
    weights = load_safetensors(path / TRAINABLE_NAME, "checkpoint weights")
    state = load_torch_file(path / STATE_NAME, "checkpoint state")
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f"{path / STATE_NAME} is not a cfld training state")
    return weights, state


def load_trainable_into(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy checkpoint weights into ``model``; every trainable tensor must be present."""
    expected = trainable_state_dict(model)
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(model.state_dict()))
    if missing or unexpected:
        raise ValueError(f"checkpoint does not match the model's trainable set: missing "
                         f"{missing[:5]}{'…' if len(missing) > 5 else ''}, unexpected "
                         f"{unexpected[:5]}{'…' if len(unexpected) > 5 else ''}; resume with the "
                         "same preset and --trainable as the interrupted run")
    model.load_state_dict(weights, strict=False)
