"""Sampled quality per body part: which parts of the person a model's samples carry.

    python benchmarks/sampled_parts.py --model MODEL --pairs 48 --people-seed 2024 \
        --guidance uc_down_full,none --out benchmarks/results/appearance/sampled_parts_X.json

For each guidance type: SSIM, silhouette IoU and the part-colour error (2-px eroded masks at
128×88) overall and per body part, with the true source and with the swapped-source control,
through the same evaluation loop as ``cfld demo`` (:func:`cfld.demo.score_pairs`).  The people
come from ``--people-seed`` (use a validation seed to choose, a test seed to report).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def per_part_metrics() -> list:
    """One PairMetric per procedural part label: that part's eroded colour error."""
    from cfld.data.synthetic import PART_LABELS
    from cfld.metrics import part_colour_error
    from cfld.metrics.scoring import part_metric, report_erosion

    def one(label: int):
        def fn(pred, b, parts):
            _, per = part_colour_error(pred, b.gt, parts, per_part=True,
                                       erode=report_erosion(pred.shape[-2]))
            return per.get(label, torch.full((pred.shape[0],), float("nan"), dtype=torch.float64))
        return part_metric(f"part/{PART_LABELS[label]}", fn)

    return [one(label) for label in PART_LABELS if label > 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="pipeline folder (default: shipped)")
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--people-seed", type=int, default=2024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--scheduler", default="ddpm",
                        help="scheduler name, or 'own' for the folder's (a distilled student's)")
    parser.add_argument("--guidance", default="uc_down_full",
                        help="comma-separated guidance types (e.g. uc_down_full,none), or "
                             "'own' for the model's default (a distilled student's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from cfld.demo import HELD_OUT_METRICS, make_held_out_root, score_pairs
    from cfld.shipped import load_pipeline
    from common import machine_info, write_json

    machine = machine_info(torch.device("cpu"))
    pipe = load_pipeline(args.model, scheduler=None if args.scheduler == "own" else args.scheduler)
    pipe.disable_autocast()  # fp32, as reported (the bf16 default: within the spread)
    pipe.set_progress_bar_config(disable=True)
    metrics = [*HELD_OUT_METRICS, *per_part_metrics()]
    results = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_held_out_root(Path(tmp) / "held_out", -(-args.pairs // 12),
                                  seed=args.people_seed)
        for guidance in args.guidance.split(","):
            kwargs = {} if guidance == "own" else {"guidance_type": guidance}
            r = score_pairs(pipe, root, args.pairs, args.steps, args.seed, batch_size=8,
                            metrics=metrics, **kwargs).as_dict()
            m, s = r["model"], r["swapped_source"]
            results[guidance] = {"model": m, "swapped_source": s,
                                 "ratio": m["part_colour_error"] / s["part_colour_error"]}
            print(guidance, json.dumps({k: round(v, 3) for k, v in m.items()
                                        if isinstance(v, float)}), flush=True)
    out = {"model": args.model or "shipped", "pairs": args.pairs,
           "people_seed": args.people_seed, "scheduler": args.scheduler, "steps": args.steps,
           "results": results, "seconds": round(time.perf_counter() - t0, 1),
           "machine": machine}
    print(f"wrote {write_json(out, Path(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
