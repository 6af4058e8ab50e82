"""`cfld animate`: one source photo through a sequence of poses → frame PNGs, a GIF, an MP4.

    cfld animate --source person.jpg --poses poses/ --out frames/ [--gif anim.gif] \
        [--mp4 anim.mp4] [--fps 8]
"""

from __future__ import annotations

import argparse

from cfld.checks.numbers import FPS, FRAMES
from cfld.commands._common import (
    add_overwrite_argument,
    add_sampling_arguments,
    load_sampling,
    print_source_notes,
    require_files,
    step_progress,
)


def run(args: argparse.Namespace) -> int:
    """Generate every frame with the same initial noise and write PNGs + a GIF."""
    from cfld.animation import animate, load_pose_sequence, save_frames, save_gif, save_video
    from cfld.checks.outputs import frame_outputs, output_file, output_image, remove_stale_frames

    require_files(source=args.source)
    fps = float(FPS.check(args.fps, "--fps"))
    poses = load_pose_sequence(args.poses, frames=args.frames)
    out = frame_outputs(args.out, len(poses), overwrite=args.overwrite)
    gif_path = output_image(args.gif or out / "animation.gif", "--gif", args.overwrite)
    if gif_path.suffix.lower() != ".gif":
        raise ValueError(f"--gif {gif_path} must end in .gif")
    if args.mp4:
        output_file(args.mp4, "--mp4", args.overwrite, suffixes=(".mp4",))
    pipe, kwargs, generator = load_sampling(args)
    print_source_notes(pipe, args.source)
    frames = animate(pipe, args.source, poses, generator=generator,
                     on_step=step_progress(f"animate {len(poses)} frames"), **kwargs)
    paths = save_frames(frames, out)
    remove_stale_frames(out, len(paths))  # an earlier, longer sequence (--overwrite)
    gif = save_gif(frames, gif_path, fps=fps)
    msg = f"wrote {len(paths)} frames ({paths[0]} ... {paths[-1].name}) and {gif}"
    if args.mp4:
        msg += f" and {save_video(frames, args.mp4, fps=fps)}"
    print(msg)
    return 0


EXAMPLES = (
    "cfld animate --source me.jpg --poses standing_front,walking,arms_raised --out frames",
    "cfld animate --source me.jpg --poses poses/ --out frames --gif me.gif --fps 6",
    "cfld animate --source me.jpg --poses sequence.json --out frames --mp4 me.mp4",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld animate`."""
    from cfld.commands._help import add_command

    p = add_command(
        subparsers, "animate", EXAMPLES,
        description="Generate the --source person in every pose of --poses with the same "
                    "initial noise (temporal\nconsistency); writes frame PNGs and a GIF (and an "
                    "MP4 with --mp4).")
    p.add_argument("--source", required=True, help="source photo")
    p.add_argument("--poses", required=True, metavar="DIR|JSON|NAMES",
                   help="folder of keypoint JSON files (sorted by name), one JSON with "
                        "{\"frames\": [{\"frame\": [H, W], \"keypoints\": [...]}, ...]} or a "
                        "list of such objects, or example pose names joined by commas "
                        "(walking,side: the poses in between are interpolated, see --frames)")
    p.add_argument("--frames", type=FRAMES.arg(), default=None,
                   help="with pose names: frames in all (default: 4 per step between two "
                        "poses)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for frame_0000.png, ...")
    p.add_argument("--gif", default=None, help="GIF path (default: OUT/animation.gif)")
    p.add_argument("--fps", type=FPS.arg(), default=8.0, help="frames per second (default 8)")
    p.add_argument("--mp4", default=None,
                   help="also write an MP4 here (OpenCV, mp4v codec)")
    add_sampling_arguments(p)
    add_overwrite_argument(p)
    p.set_defaults(func=run)
