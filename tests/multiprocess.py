"""Starting real multi-process runs from tests: ``torchrun --standalone --nproc_per_node N``.

Each process gets one torch thread (two processes share this machine's cores), the hub is
offline, and a test can kill a whole run — the launcher and its workers, found by process id —
and nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

TESTS = Path(__file__).resolve().parent
TORCHRUN = Path(sys.executable).with_name("torchrun")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # a launcher's variables of the test process itself must not leak
    return env


def torchrun_command(cli_args: Sequence[str], nproc: int = 2) -> list[str]:
    """``torchrun ... -m cfld.cli <cli_args>``."""
    return [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", "-m", "cfld.cli",
            *map(str, cli_args)]


def driver_command(commands: Sequence[Sequence[str]], nproc: int = 2) -> list[str]:
    """Several ``cfld`` commands run one after the other by the same processes (one start-up)."""
    import json

    script = TESTS / "multiprocess_driver.py"
    return [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", str(script),
            json.dumps([list(map(str, c)) for c in commands])]


def run(command: Sequence[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run to the end; fail with the output when the exit code is not 0."""
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{command[:4]}... exited {done.returncode}\n--- stdout\n"
                             f"{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-6000:]}")
    return done


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc), deepest first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out[::-1]


def _kill_run(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and its workers (torchrun starts them in sessions of their own)."""
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)


def run_until(command: Sequence[str], condition: Callable[[], bool], timeout: float = 300,
              poll: float = 0.02) -> bool:
    """Start ``command`` and SIGKILL the whole run as soon as ``condition()`` holds.

    Returns:
        True when it was killed, False when it ended first (the caller decides if that is a
        failure).
    """
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if condition():
                _kill_run(proc)
                return True
            if time.monotonic() > deadline:
                raise AssertionError(f"{command[:4]}... still running after {timeout} s")
            time.sleep(poll)
        err = proc.stderr.read() if proc.stderr else ""
        if proc.returncode != 0:
            raise AssertionError(f"{command[:4]}... exited {proc.returncode}\n{err[-6000:]}")
        return False
    finally:
        if proc.poll() is None:
            _kill_run(proc)
        if proc.stderr:
            proc.stderr.close()
