"""Scaling out on this machine: training steps/s and generated images/s with 1 and 2 processes.

Every run is a real launch, ``torchrun --standalone --nproc_per_node P -m cfld.cli ...`` (gloo on
CPU), with ``T`` torch threads per process (``OMP_NUM_THREADS``):

* training: preset ``synthetic`` from scratch on procedural people, the same total batch for
  every configuration (``--total-batch-size``), steps/s from the run's own loop time (the
  start-up of the processes is reported separately as the launch's wall time);
* generation: ``cfld generate --pairs`` with the shipped model (DDPM, ``--steps``), images/s
  from the generation loop's time; the images of every configuration are compared with those of
  1 process (they must be the same files, byte for byte).

The configurations are (processes × threads) 1×1, 2×1 and 1×2: 2×1 against 1×2 is scaling out
against more threads on the same two cores.  Each is launched ``--repeats`` times (3); the JSON
gives every run, the median and the spread (min, max), and each launch's peak RSS per process
(``getrusage`` of the launcher's children).  A last part measures what batch invariance costs
(``generate --pairs`` at ``--batch-size 4`` with and without ``--batch-invariant``, 1 process ×
1 thread) and how many pixel values another batch size moves without it.  Numbers on a shared
CPU are informative only: another job's load changes them between runs (the load average at the
start and end is recorded).

    python benchmarks/bench_scaling.py            # about 15 minutes on 2 busy cores
    python benchmarks/bench_scaling.py --quick    # 1 run, 2 steps, 4 pairs: proves it works
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

CONFIGS = "1x1,2x1,1x2"  # processes x threads per process
AUTHORS_PAIRS_PER_GPU = 224 // 8  # INPUT.BATCH_SIZE 224 over 8 GPUs (fidelity §6.3)
GEN_BATCH = 4  # generate --batch-size of every run
_DONE = re.compile(r"done: (\d+) generated, .* wrote .* in ([0-9.]+) s")


#: Runs ``argv`` and prints the peak RSS (KiB) of its largest descendant process on stderr's
#: last line: the launcher waits for its workers, so their usage reaches this wrapper.
_PEAK_RSS = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
             "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
             "file=sys.stderr); sys.exit(r.returncode)")


def _launch(procs: int, threads: int, cli: list[str]) -> tuple[str, float, float]:
    """Run ``cfld <cli>`` on ``procs`` processes; (stdout, wall seconds, peak RSS per process
    in GB)."""
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "HF_HUB_OFFLINE": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(key, None)
    command = [sys.executable, "-c", _PEAK_RSS, str(torchrun), "--standalone",
               f"--nproc_per_node={procs}", "-m", "cfld.cli", *cli]
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[3:])} failed:\n{done.stderr[-4000:]}")
    peak = [ln for ln in done.stderr.splitlines() if ln.startswith("peak_rss_kib ")][-1]
    return done.stdout, wall, int(peak.split()[1]) / 2**20


def spread(values: list[float]) -> dict[str, Any]:
    """Every run's value, their median and (min, max)."""
    return {"runs": values, "median": statistics.median(values),
            "spread": [min(values), max(values)]}


def _train_cli(args: Any, root: Path, out: Path) -> list[str]:
    return ["train", "--preset", args.preset, "--data", str(root), "--out", str(out),
            "--total-batch-size", str(args.total_batch), "--max-steps", str(args.train_steps),
            "--warmup-steps", "0", "--sample-every", "-1", "--checkpoint-every", "-1",
            "--no-export", "--no-progress", "--seed", str(args.seed)]


def _generate_cli(args: Any, root: Path, out: Path, *extra: str) -> list[str]:
    return ["generate", "--pairs", str(root / "fasion-resize-pairs-test.csv"), "--data",
            str(root), "--out", str(out), "--limit", str(args.pairs), "--steps",
            str(args.gen_steps), "--batch-size", str(GEN_BATCH), "--seed", str(args.seed), *extra]


def parse_train(stdout: str) -> dict[str, Any]:
    """The run summary (the last JSON line) → steps/s."""
    summary = json.loads([ln for ln in stdout.splitlines() if ln.startswith("{")][-1])
    return {"num_processes": summary["num_processes"],
            "total_batch_size": summary["total_batch_size"],
            "seconds_per_step": summary["seconds_per_step"],
            "steps_per_s": 1.0 / summary["seconds_per_step"]}


def parse_generate(stdout: str) -> dict[str, Any]:
    """The ``done:`` line → images/s of the generation loop."""
    m = next(m for m in map(_DONE.search, stdout.splitlines()) if m)
    images, seconds = int(m.group(1)), float(m.group(2))
    return {"images": images, "loop_s": seconds, "images_per_s": images / seconds}


def pixel_differences(folder: Path, reference: Path) -> dict[str, int]:
    """How many uint8 values of the images in ``folder`` differ from ``reference``'s, and by
    how much at most."""
    import numpy as np
    from PIL import Image

    count = worst = 0
    for f in sorted(reference.glob("*.png")):
        a = np.asarray(Image.open(f), dtype=np.int16)
        b = np.asarray(Image.open(folder / f.name), dtype=np.int16)
        count += int((a != b).sum())
        worst = max(worst, int(np.abs(a - b).max()))
    return {"pixel_values_differing": count, "max_abs_difference": worst}


def batch_invariance_cost(args: Any, root: Path, tmp: Path) -> dict[str, Any]:
    """images/s of ``generate --pairs --batch-size 4`` with each image computed on its own
    (``--batch-invariant``, the default) and with 4 images per pipeline call
    (``--no-batch-invariant``), 1 process × 1 thread, ``repeats`` launches each; and the pixel
    values that ``--batch-size 1`` instead of 4 moves in either mode, and that 2 threads
    instead of 1 move with batch invariance (one launch, with ``--thread-check``)."""
    out: dict[str, Any] = {"processes": 1, "threads": 1, "batch_size": GEN_BATCH}
    for mode in ("batch-invariant", "no-batch-invariant"):
        speeds = []
        for k in range(args.repeats):
            common.log(f"== batch invariance: --{mode}, run {k + 1}/{args.repeats}")
            stdout, _, _ = _launch(1, 1, _generate_cli(args, root, tmp / f"i{mode}_{k}",
                                                       f"--{mode}"))
            speeds.append(parse_generate(stdout)["images_per_s"])
        one = tmp / f"i{mode}_b1"
        _launch(1, 1, [*_generate_cli(args, root, one, f"--{mode}"), "--batch-size", "1"])
        out[mode.replace("-", "_")] = {"images_per_s": statistics.median(speeds),
                                       "images_per_s_stats": spread(speeds),
                                       "vs_batch_size_1": pixel_differences(one,
                                                                            tmp / f"i{mode}_0")}
    out["slowdown"] = (out["no_batch_invariant"]["images_per_s"]
                       / out["batch_invariant"]["images_per_s"])
    out["two_threads_vs_one"] = None
    if args.thread_check:  # slow where the cores are taken: OpenMP threads wait for each other
        common.log("== batch invariance: 2 threads instead of 1")
        two = tmp / "i_threads2"
        _launch(1, 2, _generate_cli(args, root, two))
        out["two_threads_vs_one"] = pixel_differences(two, tmp / "ibatch-invariant_0")
    return out


def authors_batch_memory(stored: Path = common.RESULTS_DIR / "bench_training.json"
                         ) -> dict[str, Any]:
    """GPU memory per process at the authors' 28 pairs per GPU, and at 7 pairs per micro-batch
    (the same total with ``--gradient-accumulation-steps 4``): an ESTIMATE from the CPU
    measurement of one full-size step at batch 1 (``bench_training.py``'s rule, fp16 autocast,
    UNet checkpointing).  No GPU was lent, so nothing here is measured on a GPU."""
    import bench_training

    data = json.loads(stored.read_text())
    rows = [r for r in data["rows"] if r.get("checkpointing")]
    pairs = (AUTHORS_PAIRS_PER_GPU, AUTHORS_PAIRS_PER_GPU // 4)
    return {"source": stored.relative_to(common.RESULTS_DIR.parent.parent).as_posix(),
            "measured_on_gpu": False,
            "measured_cpu_peak_rss_gb_at_batch_1": {r["config"]: r["peak_rss_gb"] for r in rows},
            "estimates": {str(n): {r["config"]: bench_training.estimate_gpu_memory(r, n)
                                   for r in rows} for n in pairs}}


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], default_preset="synthetic")
    p.add_argument("--configs", default=CONFIGS, help=f"processes x threads (default {CONFIGS})")
    p.add_argument("--train-steps", type=int, default=6)
    p.add_argument("--total-batch", type=int, default=8)
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--gen-steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="launches per configuration (3)")
    p.add_argument("--thread-check", action="store_true",
                   help="also generate once with 2 threads and count the pixel values that move")
    p.add_argument("--memory-only", action="store_true",
                   help="only (re)compute the memory estimate in an existing result file")
    args = p.parse_args(argv)
    args.preset = args.preset or "synthetic"  # also with --quick: it needs no VAE
    device = common.setup(args, "bench_scaling")
    if args.memory_only:
        result = json.loads(args.out.read_text())
        result["memory_per_gpu_at_authors_batch"] = authors_batch_memory()
        common.write_json(result, args.out)
        return 0
    if args.quick:
        args.train_steps, args.pairs, args.gen_steps, args.repeats = 2, 4, 2, 1
        args.configs = "1x1,2x1"
    from cfld.data.synthetic import make_sample_root

    machine = common.machine_info(device)  # the load average before the runs
    tmp = Path(tempfile.mkdtemp(prefix="cfld-bench-scaling-"))
    root = make_sample_root(tmp / "root", people=4, poses=4, size=(128, 88), seed=args.seed,
                            test_people=2)
    rows, reference = [], None
    configs = [tuple(int(n) for n in c.split("x")) for c in args.configs.split(",")]
    for procs, threads in configs:
        label = f"{procs}x{threads}"
        train_runs, gen_runs = [], []
        for k in range(args.repeats):
            common.log(f"== {label}: train, run {k + 1}/{args.repeats}")
            out, wall, rss = _launch(procs, threads,
                                     _train_cli(args, root, tmp / f"t{label}_{k}"))
            train_runs.append({**parse_train(out), "launch_wall_s": wall,
                               "peak_rss_gb_per_process": rss})
            common.log(f"== {label}: generate, run {k + 1}/{args.repeats}")
            gen_dir = tmp / f"g{label}_{k}"
            out, wall, rss = _launch(procs, threads, _generate_cli(args, root, gen_dir))
            gen_runs.append({**parse_generate(out), "launch_wall_s": wall,
                             "peak_rss_gb_per_process": rss})
        images = {f.name: f.read_bytes() for f in sorted(gen_dir.glob("*.png"))}
        reference = reference or images
        first = tmp / f"g{configs[0][0]}x{configs[0][1]}_0"
        train = {"num_processes": train_runs[0]["num_processes"],
                 "total_batch_size": train_runs[0]["total_batch_size"],
                 "steps_per_s": statistics.median(r["steps_per_s"] for r in train_runs),
                 "steps_per_s_stats": spread([r["steps_per_s"] for r in train_runs]),
                 "peak_rss_gb_per_process": max(r["peak_rss_gb_per_process"]
                                                for r in train_runs),
                 "runs": train_runs}
        gen = {"images": gen_runs[0]["images"],
               "images_per_s": statistics.median(r["images_per_s"] for r in gen_runs),
               "images_per_s_stats": spread([r["images_per_s"] for r in gen_runs]),
               "peak_rss_gb_per_process": max(r["peak_rss_gb_per_process"] for r in gen_runs),
               "runs": gen_runs, "same_images_as_first": images == reference,
               **pixel_differences(gen_dir, first)}
        rows.append({"processes": procs, "threads_per_process": threads, "train": train,
                     "generate": gen})
    base = rows[0]
    for row in rows:
        row["train_speedup_vs_first"] = (row["train"]["steps_per_s"]
                                         / base["train"]["steps_per_s"])
        row["generate_speedup_vs_first"] = (row["generate"]["images_per_s"]
                                            / base["generate"]["images_per_s"])
    invariance = batch_invariance_cost(args, root, tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "quick": bool(args.quick), "machine": machine, "rows": rows,
        "batch_invariance": invariance,
        "memory_per_gpu_at_authors_batch": authors_batch_memory(),
        "settings": {"preset": args.preset, "train_steps": args.train_steps,
                     "total_batch": args.total_batch, "pairs": args.pairs,
                     "gen_steps": args.gen_steps, "gen_batch": GEN_BATCH, "model": "shipped",
                     "repeats": args.repeats, "batch_invariant": True},
        "note": ("informative: short runs on a shared 2-core CPU whose other core is busy with "
                 "other jobs; medians of `repeats` launches, spread = (min, max); compare only "
                 "within this file. Images equal the first configuration's at the same thread "
                 "count whatever the process count or batch size; another thread count rounds "
                 "differently (pixel_values_differing)"),
    }
    common.write_json(result, args.out)
    print(common.table([{"P x T": f"{r['processes']}x{r['threads_per_process']}",
                         "train steps/s": r["train"]["steps_per_s"],
                         "images/s": r["generate"]["images_per_s"],
                         "same images": r["generate"]["same_images_as_first"]} for r in rows],
                       ["P x T", "train steps/s", "images/s", "same images"]))
    print(f"batch invariance: {invariance['batch_invariant']['images_per_s']:.3g} images/s "
          f"vs {invariance['no_batch_invariant']['images_per_s']:.3g} without "
          f"(x{invariance['slowdown']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
