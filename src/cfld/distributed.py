"""The processes of one run: launch detection, the process group, ordered gathering.

Launchers (design §6, README "Scaling out"):

* GPUs: ``accelerate launch --multi_gpu --num_processes N -m cfld.cli ...`` (NCCL), or
  ``torchrun --nproc_per_node N -m cfld.cli ...``;
* CPU machines: ``torchrun --nproc_per_node N -m cfld.cli ...`` (gloo).

Both launchers set ``WORLD_SIZE``.  accelerate 1.15 forms a process group on a machine without
CUDA only when asked for the CPU (``Accelerator(cpu=True)``); otherwise every process of a
torchrun launch believes it is alone and all of them would train on the same data and write the
same files.  :func:`make_accelerator` and :func:`processes` therefore ask for the CPU themselves
when several processes were launched and no GPU is present, and refuse to go on when the group
they got is not the size that was launched (:class:`LaunchError`).  (``accelerate launch
--num_processes N --cpu`` starts one process and sets no ``WORLD_SIZE``: it cannot be told apart
from a plain single run; use torchrun on CPUs.)

:func:`map_ordered` shares numbered work items round-robin between the processes and hands the
results to the main process in item order, so whatever is accumulated from them (running means,
FID statistics) is added in the order of a single-process run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


class LaunchError(ValueError):
    """Several processes were launched but they did not form one process group (a ValueError:
    the launch command is wrong, and the CLI reports it in one line)."""


def launched_processes() -> int:
    """The number of processes the launcher started (``WORLD_SIZE``; 1 without a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def launched_rank() -> int:
    """This process's rank as the launcher set it (``RANK``; 0 without a launcher)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _cpu_group_needed() -> bool:
    return launched_processes() > 1 and not torch.cuda.is_available()


def check_group(num_processes: int) -> None:
    """Raise :class:`LaunchError` unless the group has as many members as were launched."""
    launched = launched_processes()
    if num_processes != launched:
        raise LaunchError(
            f"the launcher started {launched} processes (WORLD_SIZE={launched}) but this one is "
            f"in a group of {num_processes}: every process would repeat the same work and write "
            "the same files. On CPU machines use `torchrun --nproc_per_node N -m cfld.cli ...`; "
            "on GPUs `accelerate launch --multi_gpu --num_processes N -m cfld.cli ...`")


def make_accelerator(**kwargs: Any) -> Any:
    """An :class:`accelerate.Accelerator` that spans every launched process (gloo on CPU)."""
    from accelerate import Accelerator

    cpu = bool(kwargs.pop("cpu", False)) or _cpu_group_needed()
    accelerator = Accelerator(cpu=cpu, **kwargs)
    check_group(accelerator.num_processes)
    return accelerator


@dataclass
class Processes:
    """This process's place in the run.

    Attributes:
        rank: 0 … world − 1.
        world: Number of processes.
        device: The device this process computes on (``cuda:<local rank>`` on GPUs).
    """

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process."""
        if self.world > 1:
            torch.distributed.barrier()

    def gather(self, obj: T) -> list[T]:
        """``obj`` of every process, in rank order (on every process)."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: T) -> T:
        """The main process's ``obj`` (on every process)."""
        if self.world == 1:
            return obj
        box = [obj if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def processes(device: str | torch.device | None = None) -> Processes:
    """This process's :class:`Processes`; joins the launcher's process group when there is one.

    Args:
        device: The user's device choice; with several processes on GPUs, ``None`` or
            ``"cuda"`` becomes this process's own GPU.
    """
    if launched_processes() == 1:
        return Processes(device=torch.device(device or "cpu"))
    from accelerate import PartialState

    on_cpu = device is not None and torch.device(device).type == "cpu"
    state = PartialState(cpu=_cpu_group_needed() or on_cpu)
    check_group(state.num_processes)
    dev = torch.device(device) if device is not None else state.device
    if dev.type == "cuda" and dev.index is None:
        dev = state.device
    return Processes(rank=state.process_index, world=state.num_processes, device=dev)


def map_ordered(fn: Callable[[int], T], count: int, procs: Processes) -> Iterator[T]:
    """``fn(k)`` for ``k`` in ``range(count)``, item ``k`` computed by process ``k % world``.

    Yields the results in item order on the main process and nothing elsewhere; every process
    must iterate to the end (each round of ``world`` items is one collective).
    """
    for start in range(0, count, procs.world):
        k = start + procs.rank
        local = fn(k) if k < count else None
        results = procs.gather(local)
        if procs.is_main:
            for j, value in enumerate(results):
                if start + j < count:
                    yield value


__all__ = ["LaunchError", "Processes", "check_group", "launched_processes", "launched_rank",
           "make_accelerator", "map_ordered", "processes"]
