"""`cfld pose`: the keypoints of a photo (estimated offline), drawn over it; the example poses.

    cfld pose photo.jpg --out kp.json --overlay photo_pose.png
    cfld pose --list
    cfld pose walking --skeleton walking.png
"""

from __future__ import annotations

import argparse
import json

from cfld.commands._help import add_command

EXAMPLES = (
    "cfld pose photo.jpg --out kp.json --overlay photo_pose.png   # estimate, draw over the photo",
    "cfld pose --list                                            # the example poses by name",
    "cfld pose walking --skeleton walking.png                    # draw an example pose",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `pose` command to the CLI."""
    p = add_command(subparsers, "pose", EXAMPLES, description=(
        "Estimate the COCO-18 keypoints of the person in a photo (MediaPipe, offline), or take "
        "an example pose by name.\nWrites the keypoint JSON (--out; printed when no output is "
        "given), the skeleton on black\n(--skeleton) and the skeleton over the photo with every "
        "joint numbered (--overlay)."))
    p.add_argument("image", nargs="?", default=None, metavar="IMAGE|POSE_NAME",
                   help="photo of one person, or the name of an example pose (see --list)")
    p.add_argument("--list", action="store_true", help="list the example poses and exit")
    p.add_argument("--out", default=None, metavar="KP.json", help="keypoint JSON to write")
    p.add_argument("--overlay", default=None, metavar="OUT.png",
                   help="also draw the skeleton over the photo, joints numbered and missing "
                        "joints listed")
    p.add_argument("--skeleton", default=None, metavar="OUT.png",
                   help="also save the skeleton on black (what the model is given)")
    p.add_argument("--frame", default=None, metavar="HxW",
                   help="express the keypoints in this frame, e.g. 256x176 (default: the "
                        "photo's size)")
    p.add_argument("--backend", default="mediapipe", choices=("mediapipe",),
                   help="pose estimator")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out / --skeleton / --overlay if they exist (default: refuse)")
    p.set_defaults(func=run)


def list_poses() -> int:
    """Print the example poses: name, joints present, where the file is."""
    from cfld.pose.gallery import example_pose_files, gallery_poses

    files = example_pose_files()
    for name, kp in gallery_poses().items():
        print(f"{name:<16} {int(kp.present.sum()):>2}/18 joints  {files[name]}")
    print("use a name wherever a pose is accepted: cfld generate --pose walking, "
          "pipe(source, \"walking\"), the app's pose panel")
    return 0


def run(args: argparse.Namespace) -> int:
    """Estimate (or look up) the keypoints and write what was asked; name every file written."""
    from cfld.checks.numbers import MAX_OUTPUT_SIDE
    from cfld.checks.outputs import output_file, output_image
    from cfld.pose.gallery import example_pose, is_example_pose
    from cfld.pose.keypoints import JOINT_NAMES
    from cfld.sizes import parse_size

    if args.list:
        return list_poses()
    if args.image is None:
        raise ValueError("give a photo (or an example pose name), or --list for the example "
                         "poses")
    frame = parse_size(args.frame, max_side=MAX_OUTPUT_SIDE) if args.frame else None
    if args.out:
        output_file(args.out, "--out", args.overwrite, suffixes=(".json",))
    for flag, path in (("--skeleton", args.skeleton), ("--overlay", args.overlay)):
        if path:
            output_image(path, flag, args.overwrite)
    photo = None
    if is_example_pose(args.image):
        if args.overlay:
            raise ValueError(f"--overlay draws over a photo; {args.image!r} is an example pose "
                             "(use --skeleton)")
        kp = example_pose(args.image)
        kp = kp.rescale(frame) if frame else kp
        where = f"example pose {args.image}"
    else:
        kp, photo = _estimate(args.image, frame, args.backend)
        where = args.image
    written = _write(kp, photo, args)
    missing = [f"{j} {JOINT_NAMES[j]}" for j in range(18) if not kp.present[j]]
    h, w = kp.frame
    print(f"{int(kp.present.sum())}/18 joints of {where}, in frame {h}x{w}"
          + (f"; missing: {', '.join(missing)}" if missing else ""))
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(json.dumps(kp.to_dict()))
    return 0


def _estimate(image_path: str, frame, backend: str):
    """(keypoints, photo) of a photo file; a photo without a person is a one-line error."""
    from cfld.checks.files import input_file
    from cfld.data.images import open_image
    from cfld.pose.estimate import estimate_keypoints, get_estimator

    input_file(image_path, "photo")
    photo = open_image(image_path, what="photo")
    return estimate_keypoints(photo, frame=frame, estimator=get_estimator(backend)), photo


def _write(kp, photo, args: argparse.Namespace) -> list:
    """Write the asked files; return their paths in order."""
    from cfld.pose.render import draw_overlay, render_skeleton_image
    from cfld.visualize import save_image_atomic

    written = []
    if args.out:
        written.append(kp.to_json(args.out))
    if args.skeleton:
        written.append(save_image_atomic(render_skeleton_image(kp), args.skeleton))
    if args.overlay:
        on_photo = kp.rescale((photo.height, photo.width))
        written.append(save_image_atomic(draw_overlay(photo, on_photo), args.overlay))
    return written
