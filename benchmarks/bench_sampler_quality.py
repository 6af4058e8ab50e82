"""Which sampler, how many steps: quality vs the paper's DDPM-50 on held-out procedural pairs.

With the shipped small model (``cfld.shipped``; or ``--model DIR``), on pairs of procedural
people never seen in training (``cfld.data.synthetic``, the test split of another seed), in two
disjoint sets: the sampler is *chosen* on validation people (``--val-people-seed``) and the
choice is *reported* on test people (``--test-people-seed``), so the reported figures of the
chosen row are not biased by the choice.  On the validation people:

* DDPM-50 (the paper's sampler) with two seeds: the reference and its seed-to-seed spread;
* DDPM at 10, 15, 20 and 25 steps, DDIM, DPM-Solver++, UniPC and Euler-ancestral at 10 and 20
  (``--steps`` sets one list for all), started from the same z_T as the DDPM-50 seed-0 run.

Scores per configuration: SSIM and silhouette IoU against the ground truth (``cfld.metrics``;
the authors' 51×51-window SSIM; a 7×7 window only for images narrower than 51 pixels), the mean
absolute pixel distance to the DDPM-50 output of the same seed, and seconds per image.

A configuration is *within the DDPM-50 spread* when its mean SSIM and mean IoU (quality: the
agreement with the ground truth) are no lower than DDPM-50's minus the seed-to-seed spread (the
larger of the difference between the two seeds' means and two standard errors of the per-pair
seed differences).  The fastest such configuration (fewest UNet evaluations; at equal cost the
better SSIM) is the pick.  On the test people: DDPM-50 with two seeds again (the test spread),
the pick and the demo's setting (``cfld.shipped.DEMO_SETTINGS``), each with its
``within_spread`` against the test spread.  The JSON's top-level ``rows``, ``seed_spread`` and
``pick`` are the validation ones; ``test`` holds the test ones.

The pixel distance to the DDPM-50 image of the same z_T is reported next to DDPM-50's own
seed-to-seed distance (``pixel_le_seed_distance``) but is not a quality gate: DDPM-50 is
stochastic, so any other sampler's image, however good, is "another sample" whose distance to it
is of the order of the seed-to-seed distance.

    python benchmarks/bench_sampler_quality.py                 # shipped model
    python benchmarks/bench_sampler_quality.py --model DIR     # a trained pipeline folder
    python benchmarks/bench_sampler_quality.py --quick         # smoke test (random weights if
                                                               # no model is installed)
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import common
from cfld.demo import HELD_OUT_SEED
from cfld.shipped import DEMO_SETTINGS
from train_synthetic import DATA as TRAINING_DATA  # benchmarks/ is on sys.path

# The three deterministic solvers, plus two stochastic ones (DDPM itself with fewer steps,
# and Euler ancestral): a stochastic sampler adds fresh noise at every step as DDPM-50 does.
# Samplers that cannot handle the model's prediction type are skipped (listed in the JSON).
SAMPLERS = ("ddim", "dpm", "unipc", "ddpm", "euler_a")
STEPS = {"ddpm": (10, 15, 20, 25)}  # the others at 10 and 20 (CPU time; see the docstring)
OTHER_STEPS = (10, 20)
REFERENCE = ("ddpm", 50)
SSIM_WINDOW = 7
# Procedural people never seen in training (the shipped model's training people are seed 0):
# the sampler is chosen on the validation people (the seed the shipped recipe was chosen on)
# and reported on the test people (the seed the shipped model's quality is reported on).
TRAINING_PEOPLE_SEED = TRAINING_DATA["seed"]
VAL_PEOPLE_SEED = 2024
TEST_PEOPLE_SEED = HELD_OUT_SEED


def load_model(model_dir: Path | None, quick: bool, device: torch.device):
    """The pipeline to evaluate and a description; ``None`` if no model is available."""
    from cfld import CFLDPipeline

    if model_dir is not None:
        if not Path(model_dir).is_dir():
            return None, f"--model {model_dir} is not a folder"
        pipe = CFLDPipeline.from_pretrained(model_dir)
        desc = str(model_dir)
    else:
        try:
            from cfld.shipped import load_shipped_pipeline, shipped_model_dir

            desc = str(shipped_model_dir())
            pipe = load_shipped_pipeline()
        except (ImportError, FileNotFoundError) as err:
            if not quick:
                return None, str(err)
            pipe = common.build_pipeline("synthetic", device)  # CI smoke test only
            desc = "random weights, synthetic preset (quick smoke test: no model installed)"
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    pipe.disable_autocast()  # fp32, as reported (the bf16 default is within the spread)
    return pipe, desc


def held_out_pairs(pipe, root: Path, n_pairs: int, people: int,
                   seed: int) -> dict[str, torch.Tensor]:
    """Pairs of new procedural people drawn with ``seed`` (their test split): sources, target
    poses, ground truth, part maps."""
    from cfld.data import DeepFashionTest
    from cfld.data.synthetic import PARTS_DIRS, make_sample_root

    test_size = tuple(pipe.default_output_size)
    make_sample_root(root, people=1, poses=4, size=(128, 88), seed=seed,
                     test_people=people)
    gen = tuple(pipe.image_size)
    data = DeepFashionTest(root, gen_size=gen, cond_size=(pipe.model.source_size,) * 2,
                           pose_size=tuple(pipe.pose_size), test_size=test_size)
    # spread the pairs over the people: every k-th pair
    idx = np.linspace(0, len(data) - 1, min(n_pairs, len(data))).round().astype(int)
    items = [data[int(i)] for i in idx]
    parts = []
    for it in items:
        lab = Image.open(root / PARTS_DIRS["test"] / (Path(it["to"]).stem + ".png"))
        lab = lab.resize(test_size[::-1], Image.NEAREST)
        parts.append(torch.from_numpy(np.asarray(lab).astype(np.int64)))
    return {"source": torch.stack([it["img_cond"] for it in items]),
            "pose": torch.stack([it["pose_img_tgt"] for it in items]),
            "gt": torch.stack([it["img_gt"] for it in items]),
            "parts": torch.stack(parts)}


def sample(pipe, sched: str, steps: int, data: dict[str, torch.Tensor], seed: int,
           chunk: int) -> tuple[torch.Tensor, float]:
    """Images (N, 3, H, W) in [0, 1] (uint8-quantised like saved files) and seconds per image."""
    from cfld.pipelines.pipeline_cfld import quantize
    from cfld.pipelines.schedulers import make_scheduler

    base = pipe.scheduler
    pipe.scheduler = make_scheduler(sched, base)
    n = data["source"].shape[0]
    latents = torch.randn((n, *pipe.latent_shape), generator=torch.Generator().manual_seed(seed))
    out = []
    t0 = time.perf_counter()
    try:
        for i in range(0, n, chunk):
            sl = slice(i, i + chunk)
            g = torch.Generator().manual_seed(seed * 1000 + i)
            z = latents[sl] * pipe.scheduler.init_noise_sigma
            img = pipe(data["source"][sl], data["pose"][sl], num_inference_steps=steps,
                       latents=z, generator=g, output_type="pt").images
            out.append(quantize(img).float() / 255)
    finally:
        pipe.scheduler = base
    return torch.cat(out), (time.perf_counter() - t0) / n


def scores(images: torch.Tensor, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-pair SSIM and silhouette IoU against the ground truth."""
    from cfld.metrics import silhouette_iou, ssim

    win = 51 if min(images.shape[-2:]) >= 51 else SSIM_WINDOW
    return {"ssim": ssim(images, data["gt"], win_size=win).float(),
            "iou": silhouette_iou(images, data["parts"]).float()}


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference in [0, 1] units."""
    return float((a - b).abs().mean())


def seed_spread(s0: dict[str, torch.Tensor], s1: dict[str, torch.Tensor]) -> dict[str, float]:
    """DDPM's seed-to-seed spread: per score the larger of the difference between the two
    seeds' means and two standard errors of the per-pair seed differences."""
    n = len(s0["ssim"])
    spread = {}
    for k in ("ssim", "iou"):
        diff = s0[k] - s1[k]
        sem = float(diff.std()) / math.sqrt(n) if n > 1 else 0.0
        spread[k] = max(abs(float(s0[k].mean() - s1[k].mean())), 2 * sem)
    return spread


def evaluate(pipe, data: dict[str, torch.Tensor], configs: list[tuple[str, int]],
             ref_steps: int, chunk: int) -> dict[str, Any]:
    """The DDPM reference (seeds 0 and 1), its spread and one row per (sampler, steps) in
    ``configs`` on one set of pairs; every row starts from the seed-0 reference's z_T."""
    common.log(f"reference DDPM-{ref_steps}, seeds 0 and 1")
    ref0, t_ref = sample(pipe, "ddpm", ref_steps, data, 0, chunk)
    ref1, _ = sample(pipe, "ddpm", ref_steps, data, 1, chunk)
    s0, s1 = scores(ref0, data), scores(ref1, data)
    spread = seed_spread(s0, s1)
    spread["pixel"] = pixel_distance(ref0, ref1)
    reference = {"sampler": "ddpm", "steps": ref_steps, "s_per_image": t_ref,
                 "ssim": float(s0["ssim"].mean()), "iou": float(s0["iou"].mean()),
                 "ssim_seed1": float(s1["ssim"].mean()), "iou_seed1": float(s1["iou"].mean()),
                 "pixel_dist_seed0_vs_seed1": spread["pixel"]}
    rows = [{"sampler": "ddpm", "steps": ref_steps, "unet_evals_per_image": 3 * ref_steps,
             "s_per_image": t_ref, "ssim": reference["ssim"], "iou": reference["iou"],
             "pixel_dist_to_ddpm50": 0.0, "within_spread": True,
             "pixel_le_seed_distance": True}]
    for sched, steps in configs:
        common.log(f"{sched}-{steps}")
        imgs, t = sample(pipe, sched, steps, data, 0, chunk)
        sc = scores(imgs, data)
        row = {"sampler": sched, "steps": steps, "unet_evals_per_image": 3 * steps,
               "s_per_image": t, "ssim": float(sc["ssim"].mean()),
               "iou": float(sc["iou"].mean()), "pixel_dist_to_ddpm50": pixel_distance(imgs, ref0)}
        row["within_spread"] = (row["ssim"] >= reference["ssim"] - spread["ssim"]
                                and row["iou"] >= reference["iou"] - spread["iou"])
        row["pixel_le_seed_distance"] = row["pixel_dist_to_ddpm50"] <= spread["pixel"]
        rows.append(row)
    return {"reference_row": reference, "seed_spread": spread, "rows": rows,
            "pairs": int(data["source"].shape[0])}


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The pick: the fewest steps within the spread (at equal steps the better SSIM)."""
    ok = [r for r in rows[1:] if r["within_spread"]]
    pick = min(ok, key=lambda r: (r["steps"], -r["ssim"])) if ok else rows[0]
    return {"sampler": pick["sampler"], "steps": pick["steps"],
            "speedup_vs_ddpm50": rows[0]["unet_evals_per_image"] / pick["unet_evals_per_image"],
            "reason": ("fewest steps whose SSIM and IoU are within the DDPM seed-to-seed "
                       "spread") if ok else "no faster sampler within the spread: keep DDPM"}


def parse(argv: list[str] | None):
    """The command line (see the module docstring)."""
    p = common.parser(__doc__.splitlines()[0], default_preset="synthetic")
    p.add_argument("--model", type=Path, default=None, help="pipeline folder (default: shipped)")
    p.add_argument("--pairs", type=int, default=None,
                   help="validation pairs, where the sampler is chosen (default 32; quick 2)")
    p.add_argument("--test-pairs", type=int, default=None,
                   help="test pairs, where the choice is reported (default 32; quick 2)")
    p.add_argument("--people", type=int, default=None, help="people per split (default 12)")
    p.add_argument("--val-people-seed", type=int, default=VAL_PEOPLE_SEED,
                   help=f"seed of the validation people (default {VAL_PEOPLE_SEED})")
    p.add_argument("--test-people-seed", type=int, default=TEST_PEOPLE_SEED,
                   help=f"seed of the test people (default {TEST_PEOPLE_SEED})")
    p.add_argument("--steps", default=None,
                   help="comma-separated steps for every sampler (default: DDPM 10,15,20,25, "
                        "the others 10,20)")
    p.add_argument("--reference-steps", type=int, default=None, help="DDPM steps (default 50)")
    p.add_argument("--chunk", type=int, default=16, help="pairs per pipeline call")
    args = p.parse_args(argv)
    if args.val_people_seed == args.test_people_seed:
        p.error("--val-people-seed and --test-people-seed must differ: the sampler chosen on "
                "the validation people is reported on other people")
    for name in ("val_people_seed", "test_people_seed"):
        if getattr(args, name) == TRAINING_PEOPLE_SEED:
            p.error(f"--{name.replace('_', '-')} {TRAINING_PEOPLE_SEED} draws the training "
                    "people; pick another")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    device = common.setup(args, "bench_sampler_quality")
    pipe, desc = load_model(args.model, args.quick, device)
    if pipe is None:
        print(f"bench_sampler_quality: no model to evaluate: {desc}\n"
              "Give --model DIR (a CFLDPipeline folder, e.g. written by `cfld train`) or install "
              "the shipped model (cfld/assets/cfld-synthetic).", file=sys.stderr)
        raise SystemExit(2)
    if args.steps or args.quick:
        steps_of = dict.fromkeys(SAMPLERS, [int(s) for s in (args.steps or "2").split(",")])
    else:
        steps_of = {s: list(STEPS.get(s, OTHER_STEPS)) for s in SAMPLERS}
    ref_steps = args.reference_steps or (3 if args.quick else REFERENCE[1])
    n_val = args.pairs or (2 if args.quick else 32)
    n_test = args.test_pairs or (2 if args.quick else 32)
    people = args.people or (1 if args.quick else 12)
    from cfld.pipelines.schedulers import supports

    prediction = pipe.scheduler.config.get("prediction_type", "epsilon")
    result: dict[str, Any] = {
        "benchmark": "bench_sampler_quality", "model": desc, "quick": args.quick,
        "held_out_people": people, "reference": f"ddpm-{ref_steps}",
        "ssim_window": 51 if min(pipe.default_output_size) >= 51 else SSIM_WINDOW,
        "guidance_type": "uc_down_full", "machine": common.machine_info(device),
        "skipped_samplers": [s for s in SAMPLERS if not supports(s, prediction)]}
    configs = [(s, n) for s in SAMPLERS if supports(s, prediction) for n in steps_of[s]]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        val = held_out_pairs(pipe, Path(tmp) / "val", n_val, people, args.val_people_seed)
        test = held_out_pairs(pipe, Path(tmp) / "test", n_test, people, args.test_people_seed)
    # Validation: every configuration; the pick is made here (top-level rows, seed_spread).
    common.log(f"validation people (seed {args.val_people_seed})")
    result.update(evaluate(pipe, val, configs, ref_steps, args.chunk))
    result["validation_people_seed"] = args.val_people_seed
    pick = choose(result["rows"])
    result["pick"] = {**pick, "chosen_on": "validation"}
    # Test: other people; the pick and the demo's setting are scored there, not chosen there.
    common.log(f"test people (seed {args.test_people_seed})")
    demo = (DEMO_SETTINGS["scheduler"], DEMO_SETTINGS["steps"])
    wanted = [(pick["sampler"], pick["steps"]), demo]
    test_configs = [c for i, c in enumerate(wanted) if c not in wanted[:i]
                    and c != ("ddpm", ref_steps)]
    result["test"] = {"people_seed": args.test_people_seed,
                      **evaluate(pipe, test, test_configs, ref_steps, args.chunk)}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    path = common.write_json(result, args.out)
    cols = ["sampler", "steps", "s_per_image", "ssim", "iou", "pixel_dist_to_ddpm50",
            "pixel_le_seed_distance", "within_spread"]
    spread, tspread = result["seed_spread"], result["test"]["seed_spread"]
    print("validation\n" + common.table(result["rows"], cols))
    print(f"DDPM seed-to-seed spread: SSIM {spread['ssim']:.4f}, IoU {spread['iou']:.4f}, "
          f"pixel {spread['pixel']:.4f}; pick: {pick['sampler']}-{pick['steps']}")
    print("test\n" + common.table(result["test"]["rows"], cols))
    print(f"test spread: SSIM {tspread['ssim']:.4f}, IoU {tspread['iou']:.4f}   → {path}")
    return result


if __name__ == "__main__":
    main()
