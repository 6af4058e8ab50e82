"""`cfld demo`: the shipped small model on unseen procedural people, fully offline."""

from __future__ import annotations

import argparse
import json
import time

from cfld.checks.numbers import PAIRS, SEED, STEPS

#: What `cfld demo` writes into --out (refused when present, unless --overwrite).
DEMO_FILES = ("grid.png", "metrics.json")


def run(args: argparse.Namespace) -> int:
    """Write DIR/grid.png and DIR/metrics.json; print where they are."""
    from cfld.checks.files import input_file
    from cfld.checks.outputs import output_dir
    from cfld.checks.writes import replace_entries
    from cfld.demo import run_demo
    from cfld.pose.gallery import is_example_pose
    from cfld.shipped import shipped_model_dir, shipped_name

    if args.fast:
        if args.model is not None:
            raise ValueError(f"--fast is --model cfld-synthetic-fast; give one of --fast and "
                             f"--model {args.model}")
        args.model = "cfld-synthetic-fast"
    if shipped_name(args.model):  # a shipped model not in this installation: say so first
        shipped_model_dir(args.model)
    output_dir(args.out, "--out", DEMO_FILES, overwrite=args.overwrite)
    if (args.source is None) != (args.pose is None):
        raise ValueError("give both --source and --pose to add your own pair to the demo")
    for flag, path in (("--source", args.source), ("--pose", args.pose)):
        if path is not None and not (flag == "--pose" and is_example_pose(path)):
            input_file(path, flag)
    if args.source is not None:  # the shipped model's note for a real photo; no person
        from cfld.data.images import open_image
        from cfld.scope import source_notes

        shipped = args.model is None or bool(shipped_name(args.model))
        for line in source_notes(open_image(args.source, what="--source"), shipped):
            print(line)
    t0 = time.perf_counter()
    # Written in a temporary folder, then renamed over the old files: both or neither.
    metrics = replace_entries(args.out, lambda tmp: run_demo(
        tmp, num_pairs=args.pairs, num_inference_steps=args.steps, scheduler=args.scheduler,
        seed=args.seed, model=args.model, source=args.source, pose=args.pose))
    print(f"{metrics['num_pairs']} unseen procedural pairs, "
          f"{metrics['settings']['scheduler']} {metrics['settings']['steps']} steps")
    print(f"  {'':<15} {'SSIM':>7} {'PSNR':>7} {'sil. IoU':>9} {'part colour err':>16}")
    for key, label in (("model", "model"), ("swapped_source", "swapped source"),
                       ("copy_source", "copy source")):
        if key in metrics:
            m = metrics[key]
            print(f"  {label:<15} {m['ssim']:7.4f} {m['psnr']:7.2f} {m['silhouette_iou']:9.4f} "
                  f"{m['part_colour_error']:16.4f}")
    if "swapped_source" in metrics:
        true, other = metrics["model"], metrics["swapped_source"]
        ratio = true["part_colour_error"] / other["part_colour_error"]
        print(f"  part colour error with the true source = {ratio:.2f} x with another person's "
              "source (lower: the model carries the source's appearance)")
    print(f"wrote {args.out}/grid.png (source | target pose | generated | ground truth) and "
          f"{args.out}/metrics.json in {time.perf_counter() - t0:.1f} s")
    if args.json:
        print(json.dumps(metrics))
    return 0


EXAMPLES = (
    "cfld demo                                        # -> demo/grid.png, demo/metrics.json",
    "cfld demo --pairs 12 --out demo12",
    "cfld demo --source me.jpg --pose walking         # your own pair added to the grid",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld demo`."""
    from cfld.commands._common import add_overwrite_argument
    from cfld.commands._help import SCHEDULER_NAMES, add_command
    from cfld.shipped import DEMO_SETTINGS

    p = add_command(subparsers, "demo", EXAMPLES, description=(
        "Run the shipped small model (procedural people, offline) on unseen procedural pairs "
        "and\nwrite grid.png (source | target pose | generated | ground truth) and "
        "metrics.json."))
    p.add_argument("--out", default="demo", metavar="DIR", help="output folder")
    p.add_argument("--pairs", type=PAIRS.arg(), default=6, help="held-out pairs to generate")
    p.add_argument("--steps", type=STEPS.arg(), default=None,
                   help=f"denoising steps (default: {DEMO_SETTINGS['steps']}, the demo's "
                        "sampler setting; a distilled model: its recorded steps)")
    p.add_argument("--scheduler", default=None, choices=SCHEDULER_NAMES,
                   help=f"sampler (default: {DEMO_SETTINGS['scheduler']}, the demo's sampler "
                        "setting; a distilled model: its own LCMScheduler)")
    p.add_argument("--seed", type=SEED.arg(), default=0, help="random seed")
    p.add_argument("--model", default=None, metavar="NAME|DIR",
                   help="another pipeline instead of the shipped one (default: cfld-synthetic)")
    p.add_argument("--fast", action="store_true",
                   help="the shipped few-step student (= --model cfld-synthetic-fast; not "
                        "shipped yet: make one with `cfld distill --teacher cfld-synthetic`)")
    p.add_argument("--source", default=None, help="also generate your own photo ...")
    p.add_argument("--pose", default=None,
                   help="... in this pose (an example pose name, keypoint JSON or image)")
    p.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    add_overwrite_argument(p)
    p.set_defaults(func=run)
