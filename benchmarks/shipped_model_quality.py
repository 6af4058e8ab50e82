"""Quality of the shipped small model on 200 unseen procedural pairs, against copying the source.

    python benchmarks/shipped_model_quality.py                       # shipped model, DDPM-50
    python benchmarks/shipped_model_quality.py --scheduler ddim --steps 20
    python benchmarks/shipped_model_quality.py --model runs/synthetic/run/model --pairs 40
    python benchmarks/shipped_model_quality.py --people-seed 4242  # another unseen set of people

The people are drawn with a seed never used for training (``cfld.demo.HELD_OUT_SEED``), so none
was seen in training.  Scores (at 128×88, the procedural images' size): SSIM (the paper's
window-51 variant), PSNR and the silhouette IoU of the generated person against the true target
silhouette from the part-label maps, LPIPS, and the appearance score: the part-colour error with
2-px eroded masks, for the true source and for the swapped-source control (the same poses and
noise generated from another person's source).  Targets: IoU ≥ 0.75, SSIM ≥ 0.747, part-colour
error ≤ 0.10 and ≤ 0.35 × the swapped-source error.
Writes ``benchmarks/results/shipped_model_quality[_<scheduler><steps>][_people<seed>].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import common
from train_synthetic import DATA as TRAINING_DATA  # benchmarks/ is on sys.path as the script's dir

RESULTS = Path(__file__).resolve().parent / "results"
TRAINING_DATA_SEED = TRAINING_DATA["seed"]  # the shipped model's training people


def resolution_ceiling(pipe, root: Path, num_pairs: int) -> float:
    """Mean silhouette IoU of the TRUE targets passed through the model's image size.

    Each target is resized to the size the model generates (as training images are: PIL
    bicubic), back to the evaluation size as generated images are (torch bicubic, uint8), and
    scored like a generated image: the best a perfect model of this resolution can reach.
    """
    from cfld.data import TEST_DIR, load_image
    from cfld.data.images import load_label_map, to_tensor
    from cfld.demo import evaluation_pairs
    from cfld.metrics import silhouette_iou
    from cfld.pipelines.pipeline_cfld import quantize, resize_output

    pairs = evaluation_pairs(root, num_pairs)  # the pairs score_pairs scores
    size = tuple(pipe.default_output_size)
    total = 0.0
    for _, target in pairs:
        small = to_tensor(load_image(root / TEST_DIR / target, tuple(pipe.image_size)))[None]
        back = quantize(resize_output(small, size)).float() / 255
        parts = load_label_map(root / "test_parts" / (Path(target).stem + ".png"), size)[None]
        total += float(silhouette_iou(back, parts).sum())
    return total / len(pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="pipeline folder (default: shipped)")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--scheduler", default="ddpm")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--people-seed", type=int, default=None,
                        help="seed of the procedural held-out people (default "
                             "cfld.demo.HELD_OUT_SEED); another seed gives another unseen set")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="result JSON path")
    args = parser.parse_args(argv)
    from cfld.demo import HELD_OUT_SEED, make_held_out_root, score_pairs

    if args.people_seed is None:
        args.people_seed = HELD_OUT_SEED
    if args.people_seed == TRAINING_DATA_SEED:
        parser.error(f"--people-seed {TRAINING_DATA_SEED} draws the training people; pick another")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from cfld.shipped import load_pipeline

    # "own": the folder's scheduler (a distilled student's LCMScheduler)
    pipe = load_pipeline(args.model, scheduler=None if args.scheduler == "own" else args.scheduler)
    pipe.disable_autocast()  # fp32, as reported (the bf16 default: within the spread)
    pipe.set_progress_bar_config(disable=True)
    load_at_start = list(os.getloadavg())
    command = shlex.join(["python", "benchmarks/shipped_model_quality.py",
                          *(sys.argv[1:] if argv is None else argv)])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        people = -(-args.pairs // 12)  # 4 poses → 12 ordered pairs per person
        root = make_held_out_root(Path(tmp) / "held_out", people, seed=args.people_seed)
        from cfld.demo import HELD_OUT_METRICS
        from cfld.metrics import LPIPS
        from cfld.metrics.scoring import lpips_metric

        metrics = [*HELD_OUT_METRICS, lpips_metric(LPIPS())]
        result = score_pairs(pipe, root, args.pairs, args.steps, args.seed,
                             batch_size=args.batch_size, progress=True, metrics=metrics)
        ceiling = resolution_ceiling(pipe, root, args.pairs)
    seconds = time.perf_counter() - t0
    out = result.as_dict()
    out.update({
        "scheduler": args.scheduler, "steps": args.steps, "seconds": round(seconds, 1),
        "held_out_people": people, "held_out_seed": args.people_seed,
        "image_size": list(pipe.default_output_size),
        "model_image_size": list(pipe.image_size),
        # the best IoU a perfect model generating at model_image_size can reach here
        "ground_truth_through_model_size": {"silhouette_iou": ceiling},
        # part colour error: eroded masks (cfld.metrics.scoring.report_erosion)
        "part_colour_ratio_to_swapped": (out["model"]["part_colour_error"]
                                         / out["swapped_source"]["part_colour_error"]),
        "targets": {"silhouette_iou": 0.75, "ssim": 0.747, "part_colour_error": 0.10,
                    "part_colour_ratio_to_swapped": 0.35},
        "met": {
            "silhouette_iou": out["model"]["silhouette_iou"] >= 0.75,
            "ssim": out["model"]["ssim"] >= 0.747,
            "part_colour_error": out["model"]["part_colour_error"] <= 0.10,
            "part_colour_ratio_to_swapped": (out["model"]["part_colour_error"]
                                             <= 0.35 * out["swapped_source"]["part_colour_error"]),
        },
        "machine": {**common.machine_info(torch.device("cpu")), "python":
                    platform.python_version(), "threads": torch.get_num_threads(),
                    "load_average_at_start": load_at_start, "command": command},
        "command": command,  # tests/test_readme_claims.py requires it of README sources
    })
    default = (args.scheduler, args.steps) == ("ddpm", 50)
    suffix = "" if default else f"_{args.scheduler}{args.steps}"
    if args.people_seed != HELD_OUT_SEED:
        suffix += f"_people{args.people_seed}"
    path = Path(args.out) if args.out else RESULTS / f"shipped_model_quality{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"{out['num_pairs']} unseen pairs, {args.scheduler}-{args.steps}, {seconds:.0f} s")
    print("| method | SSIM | PSNR | silhouette IoU | part colour error | LPIPS |")
    print("|---|---|---|---|---|---|")
    for key in ("model", "swapped_source", "copy_source"):
        m = out[key]
        print(f"| {key} | {m['ssim']:.4f} | {m['psnr']:.2f} | {m['silhouette_iou']:.4f} | "
              f"{m['part_colour_error']:.4f} | {m['lpips']:.4f} |")
    print(f"| ground truth through {out['model_image_size']} | | | {ceiling:.4f} | | |")
    print(f"part colour error ratio true/swapped: {out['part_colour_ratio_to_swapped']:.3f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
