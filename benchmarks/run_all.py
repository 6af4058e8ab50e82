"""Run every benchmark with ``--quick`` (tiny preset, 1–2 steps): ``make bench`` and CI smoke.

Results go to ``benchmarks/results/<name>_quick.json`` (or ``--out-dir``).  Full-size runs are
separate commands (see each script's docstring and the README's "Performance" section).

    python benchmarks/run_all.py               # all, quick
    python benchmarks/run_all.py --full        # all at full size (slow on CPU: tens of minutes)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_limit  # noqa: E402
import bench_sampler_quality  # noqa: E402
import bench_sampling  # noqa: E402
import bench_training  # noqa: E402
import common  # noqa: E402

BENCHMARKS = {
    "bench_sampling": bench_sampling.main,
    "bench_limit": bench_limit.main,
    "bench_training": bench_training.main,
    "bench_sampler_quality": bench_sampler_quality.main,
    "bench_vs_authors": __import__("bench_vs_authors").main,  # issue 19
    "bench_fast_quality": __import__("bench_fast_quality").main,  # issue 19
    "bench_scaling": __import__("bench_scaling").main,  # issue 18: 1 and 2 torchrun processes
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="full-size runs instead of --quick")
    p.add_argument("--out-dir", type=Path, default=common.RESULTS_DIR)
    p.add_argument("--only", default=None, help=f"comma-separated subset of {list(BENCHMARKS)}")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    failed = []
    for name in names:
        suffix = "" if args.full else "_quick"
        out = args.out_dir / f"{name}{suffix}.json"
        argv_b = ["--out", str(out)] + ([] if args.full else ["--quick"])
        common.log(f"== {name} {' '.join(argv_b)}")
        t0 = time.perf_counter()
        try:
            BENCHMARKS[name](argv_b)
        except SystemExit as err:  # a script's clear "cannot run" exit (e.g. no model)
            if err.code not in (0, None):
                failed.append(name)
        except Exception as err:  # noqa: BLE001 - report every failing script, then fail
            common.log(f"{name} failed: {type(err).__name__}: {err}")
            failed.append(name)
        common.log(f"   {name}: {time.perf_counter() - t0:.1f} s")
    if failed:
        common.log(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
