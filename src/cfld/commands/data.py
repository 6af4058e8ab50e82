"""`cfld data synth|prepare|check`: build, convert and validate data roots."""

from __future__ import annotations

import argparse

from cfld.checks.numbers import COUNT, SEED, Number

SYNTH_EXAMPLES = (
    "cfld data synth --out synth --people 40 --poses 6",
    "cfld data synth --out synth_market --layout market1501 --size 128x64",
)
PREPARE_EXAMPLES = (
    "cfld data prepare --src In-shop/img_highres --out fashion   # DeepFashion In-Shop",
    "cfld data prepare --dataset market1501 --src Market-1501-v15.09.15 --annotations "
    "market_csvs --out market",
)
CHECK_EXAMPLES = ("cfld data check fashion", "cfld data check market --no-decode")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` command and its sub-commands to the CLI."""
    from cfld.commands._common import add_overwrite_argument
    from cfld.commands._help import add_command

    p = add_command(subparsers, "data", SYNTH_EXAMPLES[:1] + PREPARE_EXAMPLES + CHECK_EXAMPLES[:1])
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")

    s = add_command(sub, "synth", SYNTH_EXAMPLES,
                    help="write procedural people in the DeepFashion (or Market-1501) layout")
    s.add_argument("--out", required=True, help="output root folder")
    s.add_argument("--people", type=COUNT.named("people").arg(), default=100,
                   help="training people (default 100)")
    s.add_argument("--poses", type=Number("poses", integer=True, lo=2, hi=10_000).arg(),
                   default=6, help="poses per person, at least 2 (default 6)")
    s.add_argument("--size", default=None, metavar="HxW",
                   help="image size (default: 256x176, or 128x64 with --layout market1501)")
    s.add_argument("--layout", default="deepfashion", choices=("deepfashion", "market1501"),
                   help="file layout of the root")
    s.add_argument("--seed", type=SEED.arg(), default=0,
                   help="random seed (same seed, same bytes)")
    s.add_argument("--test-people", type=COUNT.named("test_people").arg(), default=None,
                   help="test people (default people//8)")
    s.add_argument("--max-pairs-per-person", type=COUNT.named("max_pairs").arg(), default=None,
                   help="sample at most this many ordered pairs per person")
    s.add_argument("--iou", action="store_true", help="also print the mean pair silhouette IoU")
    add_overwrite_argument(s)
    s.set_defaults(func=_synth)

    r = add_command(sub, "prepare", PREPARE_EXAMPLES,
                    help="DeepFashion In-Shop: rename/copy img_highres into train_highres/"
                         "test_highres; Market-1501: the PATN pairs and keypoints")
    r.add_argument("--dataset", default="deepfashion", choices=("deepfashion", "market1501"),
                   help="which data set --src holds")
    r.add_argument(
        "--src", required=True, help="DeepFashion: the folder holding MEN/ and WOMEN/ (unzipped "
        "img_highres); Market-1501: the unzipped Market-1501-v15.09.15 folder"
    )
    r.add_argument("--out", required=True, help="prepared root to write")
    r.add_argument("--train-lst", default=None,
                   help="DeepFashion: train.lst (default: in --src or --out)")
    r.add_argument("--test-lst", default=None,
                   help="DeepFashion: test.lst (default: in --src or --out)")
    r.add_argument("--annotations", default=None, metavar="DIR",
                   help="Market-1501: folder of PATN's market-pairs-*.csv and "
                        "market-annotation-*.csv (default: in --src or --out)")
    r.set_defaults(func=_prepare)

    c = add_command(sub, "check", CHECK_EXAMPLES,
                    help="validate a prepared root; exit 1 if there are problems")
    c.add_argument("root", help="prepared data root")
    c.add_argument("--no-decode", action="store_true", help="do not decode every image (faster)")
    c.add_argument("--layout", default=None, choices=("deepfashion", "market1501"),
                   help="the root's layout (default: detected from its files)")
    c.set_defaults(func=_check)

    p.set_defaults(func=run, _data_parser=p)


def run(args: argparse.Namespace) -> int:
    """Dispatch `cfld data ACTION`; without an action, print the help."""
    args._data_parser.print_help()
    return 2


def _synth(args: argparse.Namespace) -> int:
    from cfld.checks.numbers import MAX_OUTPUT_SIDE
    from cfld.checks.outputs import output_dir
    from cfld.checks.writes import replace_entries
    from cfld.data.synthetic_root import pair_silhouette_iou, root_entries, synthesize
    from cfld.sizes import parse_size

    size = parse_size(args.size or ("128x64" if args.layout == "market1501" else "256x176"),
                      min_side=16, why="people need room to be drawn", max_side=MAX_OUTPUT_SIDE)
    output_dir(args.out, "--out", root_entries(args.layout), overwrite=args.overwrite)
    # The root is written in a temporary folder and renamed into place: a failure or a kill
    # leaves the old csvs and images together, never a mix of two runs.
    stats = replace_entries(args.out, lambda tmp: synthesize(
        tmp, people=args.people, poses=args.poses, size=size, seed=args.seed,
        test_people=args.test_people, max_pairs_per_person=args.max_pairs_per_person,
        log=print, layout=args.layout))
    print(
        f"wrote {int(stats['images'])} images to {args.out} in {stats['seconds']:.1f} s "
        f"({stats['images_per_s']:.0f} images/s)"
    )
    if args.iou:
        print(f"mean pair silhouette IoU (train): {pair_silhouette_iou(args.out, 'train'):.3f}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    if args.dataset == "market1501":
        from cfld.data.prepare_market import prepare_market1501

        prepare_market1501(args.src, args.out, args.annotations, log=print)
    else:
        from cfld.data.deepfashion import prepare

        prepare(args.src, args.out, args.train_lst, args.test_lst, log=print)
    print(f"wrote {args.out}; check it with: cfld data check {args.out}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from cfld.data.deepfashion import check_root

    report = check_root(args.root, decode_images=not args.no_decode, layout=args.layout)
    for line in report.summary_lines():
        print(line)
    for line in report.problems:
        print(f"problem: {line}")
    if report.problems:
        print(f"{len(report.problems)} problem(s) found in {args.root}")
        return 1
    print(f"{args.root}: OK")
    return 0
