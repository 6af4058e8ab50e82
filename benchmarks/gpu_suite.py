"""Every benchmark at GPU sizes in one command, within about 8 minutes on one GPU: one JSON.

Runs each script of :data:`SUITE` as its own subprocess on ``cuda`` (so one failure or one
time-out does not stop the others, and each script's peak GPU memory is its own), with a time
limit per script that sums to :data:`BUDGET_S`.  Every sub-result is written to a temporary
folder (the CPU results in ``benchmarks/results/`` stay untouched) and gathered, with the
command, exit status and wall time of each script, into ``benchmarks/results/gpu_suite.json``.

Without a CUDA device it prints that it skipped and exits 0 (nothing is written): no GPU has
been lent to this project so far, so this suite has not been run yet.

    python benchmarks/gpu_suite.py              # on a machine with a GPU
    python benchmarks/gpu_suite.py --dry-run    # print the commands and the time limits
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BUDGET_S = 480  # the 8 minutes on one GPU

#: (script, arguments, time limit in seconds).  Sizes: the full-size model where a GPU runs it
#: in seconds, 50 steps where the sampling figure is per image at the paper's 50 steps.
SUITE: list[tuple[str, list[str], int]] = [
    ("bench_vs_authors", ["--steps", "10", "--repeats", "3"], 100),
    ("bench_sampling", ["--batch-sizes", "1,8", "--steps", "10", "--runs", "3", "--compile"],
     110),
    ("bench_limit", ["--repeat", "5"], 40),
    ("bench_training", ["--batch", "4", "--steps", "3"], 90),
    ("bench_fast_quality", ["--select-pairs", "48", "--report-pairs", "96"], 70),
    ("bench_sampler_quality", ["--pairs", "96", "--people", "24"], 50),
    ("fidelity", [], 20),
]


def has_cuda() -> bool:
    """True if torch sees a CUDA device."""
    import torch

    return torch.cuda.is_available()


def commands(out_dir: Path) -> list[dict[str, Any]]:
    """The suite's commands (each writes ``out_dir/<script>.json``)."""
    return [{"script": name, "timeout_s": limit,
             "argv": [sys.executable, str(HERE / f"{name}.py"), "--device", "cuda",
                      "--out", str(out_dir / f"{name}.json"), *args]}
            for name, args, limit in SUITE]


def run(cmd: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Run one script with its time limit; its result JSON (if any) goes into the row."""
    t0 = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    try:
        proc = subprocess.run(cmd["argv"], capture_output=True, text=True, env=env,
                              timeout=cmd["timeout_s"], cwd=HERE.parent)
        rc, tail = proc.returncode, (proc.stdout + proc.stderr)[-2000:]
    except subprocess.TimeoutExpired as err:
        out = (err.stdout or b"") + (err.stderr or b"")
        rc, tail = "timeout", out.decode(errors="replace")[-2000:] if isinstance(out, bytes) \
            else str(out)[-2000:]
    row: dict[str, Any] = {"script": cmd["script"], "command": " ".join(cmd["argv"][1:]),
                           "timeout_s": cmd["timeout_s"], "rc": rc,
                           "wall_s": time.perf_counter() - t0, "output_tail": tail}
    path = out_dir / f"{cmd['script']}.json"
    if path.is_file():
        row["result"] = json.loads(path.read_text())
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=RESULTS / "gpu_suite.json")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--only", default=None, help="comma-separated subset of the scripts")
    args = p.parse_args(argv)
    if sum(limit for _, _, limit in SUITE) > BUDGET_S:  # pragma: no cover - a suite edit
        raise SystemExit(f"gpu_suite: the time limits exceed {BUDGET_S} s")
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(Path(tmp))
        if args.only:
            cmds = [c for c in cmds if c["script"] in set(args.only.split(","))]
        if args.dry_run:
            for c in cmds:
                print(f"[{c['timeout_s']:>4} s] {' '.join(c['argv'][1:])}")
            print(f"total limit {sum(c['timeout_s'] for c in cmds)} s of {BUDGET_S} s")
            return 0
        if not has_cuda():
            print("gpu_suite: no CUDA device here, so nothing was run (skipped). Run it on a "
                  "machine with one GPU; no GPU has been lent to this project so far.")
            return 0
        import torch

        t0 = time.perf_counter()
        rows = []
        for c in cmds:
            print(f"gpu_suite: {c['script']} (limit {c['timeout_s']} s)", flush=True)
            rows.append(run(c, Path(tmp)))
    result = {"benchmark": "gpu_suite", "gpu": torch.cuda.get_device_name(),
              "torch": torch.__version__, "budget_s": BUDGET_S,
              "wall_s": time.perf_counter() - t0, "date_utc": time.strftime(
                  "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows": rows,
              "failed": [r["script"] for r in rows if r["rc"] != 0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(f"gpu_suite: {len(rows) - len(result['failed'])}/{len(rows)} scripts ok, "
          f"{result['wall_s']:.0f} s → {args.out}")
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
