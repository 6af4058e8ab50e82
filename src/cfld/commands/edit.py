"""`cfld edit style|interpolate`: appearance editing without training (paper §4.6, Fig. 6).

    cfld edit style --reference REF.jpg --parts upper_clothes --source NEW.jpg --out out.png
    cfld edit style --reference REF.jpg --mask mask.png --source NEW.jpg --out out.png \\
        [--pose ref_kp.json]
    cfld edit interpolate --source-a A.jpg --source-b B.jpg --pose kp.json --frames 5 --out DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cfld.checks.numbers import FRAMES
from cfld.commands._common import (
    add_overwrite_argument,
    add_sampling_arguments,
    load_sampling,
    print_source_notes,
    require_files,
    step_progress,
)


def run_style(args: argparse.Namespace) -> int:
    """Style transfer by mask."""
    from cfld.checks.outputs import output_image
    from cfld.pipelines.editing import BODY_PARTS, style_transfer
    from cfld.visualize import save_image_atomic

    if (args.mask is None) == (args.parts is None):
        raise ValueError("give either --mask PNG (white = restyle) or --parts "
                         f"({', '.join(BODY_PARTS)})")
    require_files(reference=args.reference, source=args.source, mask=args.mask, pose=args.pose)
    mask: Any = Path(args.mask) if args.mask is not None else args.parts.split(",")
    unknown = [] if args.mask is not None else [m for m in mask if m.strip() not in BODY_PARTS]
    if unknown:
        raise ValueError(f"--parts: unknown body part(s) {unknown}; choose from "
                         f"{', '.join(BODY_PARTS)}")
    if args.mask is None:
        mask = [m.strip() for m in mask]
    output_image(args.out, "--out", overwrite=args.overwrite)
    pipe, kwargs, generator = load_sampling(args)
    print_source_notes(pipe, args.reference, args.source)
    images = style_transfer(pipe, args.reference, mask, args.source, generator=generator,
                            reference_pose=args.pose, on_step=step_progress("style transfer"),
                            **kwargs)
    out = save_image_atomic(images[0], args.out)
    print(f"wrote {out}")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    """Interpolation between two sources: frame PNGs and a strip image."""
    from cfld.animation import save_frames
    from cfld.checks.outputs import frame_outputs, remove_stale_frames
    from cfld.pipelines.editing import image_strip, interpolate
    from cfld.visualize import save_image_atomic

    frames = int(FRAMES.check(args.frames, "--frames"))
    require_files(source_a=args.source_a, source_b=args.source_b, pose=args.pose)
    out = frame_outputs(args.out, frames, overwrite=args.overwrite, extra=["strip.png"])
    pipe, kwargs, generator = load_sampling(args)
    print_source_notes(pipe, args.source_a, args.source_b)
    images = interpolate(pipe, args.source_a, args.source_b, args.pose, n_frames=frames,
                         generator=generator, on_step=step_progress("interpolate"), **kwargs)
    paths = save_frames(images, out)
    remove_stale_frames(out, len(paths))  # an earlier, longer sequence (--overwrite)
    strip = save_image_atomic(image_strip(images), out / "strip.png")
    print(f"wrote {len(paths)} frames ({paths[0]} ... {paths[-1].name}) and {strip}")
    return 0


EXAMPLES = (
    "cfld edit style --reference ref.jpg --parts upper_clothes --source new.jpg --out out.png",
    "cfld edit style --reference ref.jpg --mask mask.png --source new.jpg --out out.png",
    "cfld edit interpolate --source-a a.jpg --source-b b.jpg --pose walking --frames 5 --out "
    "interp",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld edit style` and `cfld edit interpolate`."""
    from cfld.commands._help import add_command
    from cfld.pose.masks import BODY_PARTS

    p = add_command(subparsers, "edit", EXAMPLES,
                    description="Appearance editing without training (paper §4.6).")
    sub = p.add_subparsers(dest="edit_command", metavar="EDIT")
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])

    s = add_command(
        sub, "style", EXAMPLES[:2],
        help="restyle a masked region of a reference photo with another source",
        description="Generate with the reference's pose and the new source's appearance, "
                    "keeping the reference outside the mask (paper §4.6). Body parts: "
                    + "; ".join(f"{k}: {v}" for k, v in BODY_PARTS.items()))
    s.add_argument("--reference", required=True, help="photo to edit")
    s.add_argument("--mask", default=None, metavar="PNG",
                   help="mask in the reference's frame, white = restyle")
    s.add_argument("--parts", default=None, metavar="PART[,PART]",
                   help=f"body parts to restyle instead of a mask: {', '.join(BODY_PARTS)}")
    s.add_argument("--source", required=True, help="photo whose appearance fills the mask")
    s.add_argument("--pose", default=None, metavar="KP_JSON",
                   help="the reference's keypoints (default: estimated from the reference)")
    s.add_argument("--out", required=True, help="output image (.png)")
    add_sampling_arguments(s)
    add_overwrite_argument(s)
    s.set_defaults(func=run_style)

    i = add_command(sub, "interpolate", EXAMPLES[2:],
                    help="interpolate appearance between two sources",
                    description="Linear interpolation of the coarse prompt and every "
                                   "appearance bias between two sources (paper Fig. 6b), "
                                   "same noise for every frame.")
    i.add_argument("--source-a", required=True, help="first source photo (t = 0)")
    i.add_argument("--source-b", required=True, help="second source photo (t = 1)")
    i.add_argument("--pose", required=True,
                   help="target pose: keypoint JSON, skeleton image, or a photo of a person")
    i.add_argument("--frames", type=FRAMES.arg(), default=5,
                   help=f"number of frames, 2 to {FRAMES.hi:g} (default 5)")
    i.add_argument("--out", required=True, metavar="DIR",
                   help="folder for frame_0000.png, ... and strip.png")
    add_sampling_arguments(i)
    add_overwrite_argument(i)
    i.set_defaults(func=run_interpolate)
