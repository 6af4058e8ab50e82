"""`cfld pose IMAGE --out kp.json`: estimate COCO-18 keypoints from a photo, offline."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `pose` command to the CLI."""
    p = subparsers.add_parser("pose", help="estimate COCO-18 keypoints of the person in a photo")
    p.add_argument("image", help="photo of one person")
    p.add_argument("--out", required=True, help="keypoint JSON to write")
    p.add_argument(
        "--frame",
        default=None,
        help="express keypoints in this HxW frame (e.g. 256x176); default the photo's size",
    )
    p.add_argument("--skeleton", default=None, help="also save a skeleton image (PNG) here")
    p.add_argument("--backend", default="mediapipe", help="estimator backend (default mediapipe)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out / --skeleton if they exist (default: refuse)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Estimate keypoints and write them as JSON (and optionally a skeleton image)."""
    from cfld.checks.numbers import MAX_OUTPUT_SIDE
    from cfld.checks.outputs import output_file, output_image
    from cfld.data.images import open_image
    from cfld.pose.estimate import estimate_keypoints, get_estimator
    from cfld.pose.render import render_skeleton_image
    from cfld.sizes import parse_size
    from cfld.visualize import save_image_atomic

    frame = parse_size(args.frame, max_side=MAX_OUTPUT_SIDE) if args.frame else None
    output_file(args.out, "--out", args.overwrite, suffixes=(".json",))
    if args.skeleton:
        output_image(args.skeleton, "--skeleton", args.overwrite)
    image = open_image(args.image, what="photo")
    kp = estimate_keypoints(image, frame=frame, estimator=get_estimator(args.backend))
    kp.to_json(args.out)
    h, w = kp.frame
    print(f"wrote {int(kp.present.sum())}/18 joints in frame {h}x{w} to {args.out}")
    if args.skeleton:
        save_image_atomic(render_skeleton_image(kp), args.skeleton)
    return 0
