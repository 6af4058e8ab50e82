"""`cfld generate`: a photo + a target pose → an image; or a whole pairs csv in batch mode."""

from __future__ import annotations

import argparse
from pathlib import Path

from cfld.pipelines.guidance import GUIDANCE_TYPES
from cfld.pipelines.schedulers import SCHEDULERS

OUTPUT_SEPARATOR = "___"  # <source stem>___<target stem>.png, matched by `cfld evaluate`


def output_name(source: str, target: str) -> str:
    """File name of a generated image: stems without extensions joined by ``___``."""
    return f"{Path(source).stem}{OUTPUT_SEPARATOR}{Path(target).stem}.png"


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Which pipeline to load and where to run it (generate, edit, animate, app)."""
    p.add_argument("--model", default=None, metavar="DIR|HUB_ID",
                   help="pipeline or model folder, or hub id (default: the shipped small model)")
    p.add_argument("--vae", default=None, metavar="DIR",
                   help="SD-1.5 VAE folder for a model folder without one (e.g. `cfld convert` "
                        "output)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cpu)")


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by generate/edit/animate: the model and how to sample it."""
    add_model_arguments(p)
    p.add_argument("--steps", type=int, default=None,
                   help="denoising steps (default 50 for ddpm, 20 otherwise)")
    p.add_argument("--scheduler", default="ddpm", choices=sorted(SCHEDULERS))
    p.add_argument("--guidance-type", default="uc_down_full", choices=sorted(GUIDANCE_TYPES))
    p.add_argument("--scale-pose", type=float, default=2.0, help="w_pose of Eq. (7)")
    p.add_argument("--scale-app", type=float, default=2.0, help="w_app of Eq. (7)")
    p.add_argument("--seed", type=int, default=0)


def _size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    from cfld.pose import parse_size

    return parse_size(text)


def default_steps(args: argparse.Namespace) -> int:
    """50 DDPM steps (the paper), 20 for the deterministic/multistep solvers."""
    if args.steps is not None:
        if args.steps < 1:
            raise ValueError("--steps must be at least 1")
        return args.steps
    return 50 if args.scheduler in ("ddpm", "euler_a") else 20


def run(args: argparse.Namespace) -> int:
    """Single or batch generation."""
    import torch
    from tqdm import tqdm

    from cfld.shipped import load_pipeline
    from cfld.visualize import make_grid, save_image_atomic

    single = args.source is not None or args.pose is not None
    if single == (args.pairs is not None):
        raise ValueError("give either --source and --pose (one image) or --pairs CSV --data ROOT "
                         "(batch mode)")
    if single and (args.source is None or args.pose is None):
        raise ValueError("single-image mode needs both --source IMG and --pose (kp.json | pose "
                         "image | photo)")
    if args.pairs is not None and args.data is None:
        raise ValueError("batch mode needs --data ROOT (the folder with test_highres/ and the "
                         "annotation csv)")
    pipe = load_pipeline(args.model, args.vae, args.scheduler, args.device)
    pipe.set_progress_bar_config(disable=True)
    steps = default_steps(args)
    size = _size(args.size)
    common = dict(num_inference_steps=steps, guidance_type=args.guidance_type,
                  scale_pose=args.scale_pose, scale_app=args.scale_app,
                  output_size=size, keep_square=args.keep_square)

    if single:
        out = Path(args.out)
        if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            out = out / output_name(str(args.source), str(args.pose))
        g = torch.Generator().manual_seed(args.seed)
        pipe.set_progress_bar_config(disable=False)
        result = pipe(args.source, args.pose, generator=g, **common)
        save_image_atomic(result.images[0], out)
        if args.grid:
            from cfld.pipelines.inputs import open_image
            from cfld.pose import pose_map_to_image

            img = result.images[0]
            grid = make_grid([[open_image(args.source), pose_map_to_image(result.pose_maps[0]),
                               img]], cell=(img.height, img.width),
                             labels=["source", "target pose", "generated"])
            save_image_atomic(grid, out.with_name(out.stem + "_grid.png"))
        print(f"wrote {out}")
        return 0

    from cfld.data import ANNOTATION_TEST, TEST_DIR, read_annotations, read_pairs

    root = Path(args.data)
    pairs = read_pairs(args.pairs)
    if args.limit:
        pairs = pairs[: args.limit]
    annotations = read_annotations(root / ANNOTATION_TEST)
    out_dir = Path(args.out)
    todo = [(s, t) for s, t in pairs
            if args.overwrite or not (out_dir / output_name(s, t)).exists()]
    missing = sorted({t for _, t in todo if t not in annotations})
    if missing:
        raise ValueError(f"{len(missing)} target(s) have no keypoints in {ANNOTATION_TEST}, e.g. "
                         f"{missing[0]}; run `cfld data check {root}`")
    print(f"{len(pairs)} pairs, {len(pairs) - len(todo)} already generated, {len(todo)} to go "
          f"-> {out_dir}")
    for start in tqdm(range(0, len(todo), args.batch_size), desc="generate", unit="batch"):
        chunk = todo[start:start + args.batch_size]
        # One generator per batch, seeded by the batch position: reruns are reproducible
        # and resuming an interrupted run regenerates identical images.
        g = torch.Generator().manual_seed(args.seed + start)
        result = pipe([root / TEST_DIR / s for s, _ in chunk],
                      [annotations[t] for _, t in chunk], generator=g, **common)
        for (s, t), img in zip(chunk, result.images, strict=True):
            save_image_atomic(img, out_dir / output_name(s, t))
    print(f"done: {len(pairs)} images in {out_dir}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld generate`."""
    p = subparsers.add_parser("generate", help="generate a person in a target pose",
                              description="Generate the person of --source in the pose of "
                                          "--pose, or every pair of a pairs csv (--pairs).")
    p.add_argument("--source", default=None, help="source photo")
    p.add_argument("--pose", default=None,
                   help="target pose: keypoint JSON, skeleton image, or a photo of a person")
    p.add_argument("--pairs", default=None, metavar="CSV",
                   help="batch mode: pairs csv (from,to) e.g. ROOT/fasion-resize-pairs-test.csv")
    p.add_argument("--data", default=None, metavar="ROOT",
                   help="batch mode: data root with test_highres/ and the annotation csv")
    p.add_argument("--out", required=True,
                   help="output .png (single), or a folder (<source>___<target>.png names)")
    p.add_argument("--size", default=None, metavar="HxW",
                   help="output size, e.g. 256x176 or 512x352 (default: the model's)")
    p.add_argument("--keep-square", action="store_true",
                   help="keep the generated square image (no resize to the evaluation size)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--limit", type=int, default=None, help="batch mode: first N pairs only")
    p.add_argument("--overwrite", action="store_true",
                   help="batch mode: regenerate images that already exist")
    p.add_argument("--grid", action="store_true",
                   help="single mode: also write <out>_grid.png (source | pose | generated)")
    add_sampling_arguments(p)
    p.set_defaults(func=run)
