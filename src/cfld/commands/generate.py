"""`cfld generate`: a photo + a target pose → an image; or a whole pairs csv in batch mode."""

from __future__ import annotations

import argparse
from pathlib import Path

from cfld.checks.numbers import BATCH_SIZE, LIMIT, Number
from cfld.commands._common import add_sampling_arguments, apply_precision, require_files

#: ``--threads``: torch CPU threads per process.
THREADS = Number("threads", integer=True, lo=1, hi=1024, example="1")


def run(args: argparse.Namespace) -> int:
    """Single or batch generation."""
    from cfld.checks.files import input_dir
    from cfld.checks.generation import batch_pairs, single_inputs, single_output
    from cfld.checks.numbers import MAX_OUTPUT_SIDE
    from cfld.checks.sampling import check_output_size
    from cfld.commands._common import resolve_args
    from cfld.data.formats import read_pairs
    from cfld.generation import generate_one, generate_pairs
    from cfld.shipped import load_pipeline
    from cfld.sizes import parse_size

    single = args.source is not None or args.pose is not None
    if args.threads is not None:  # before any torch work (README "Scaling out": thread count)
        import torch

        torch.set_num_threads(args.threads)
    if single == (args.pairs is not None):
        raise ValueError("give either --source and --pose (one image) or --pairs CSV --data ROOT "
                         "(batch mode)")
    if single and (args.source is None or args.pose is None):
        raise ValueError("single-image mode needs both --source IMG and --pose (kp.json | pose "
                         "image | photo)")
    if args.pairs is not None and args.data is None:
        raise ValueError("batch mode needs --data ROOT (the folder with test_highres/ and the "
                         "annotation csv)")
    # Everything the run needs is checked before the model is loaded: sizes, inputs, outputs.
    size = check_output_size(parse_size(args.size, max_side=MAX_OUTPUT_SIDE) if args.size
                             else None, args.keep_square)
    if single:
        # A pose without an extension may name an example pose, left to the pipeline.
        pose_file = args.pose if Path(args.pose).suffix or Path(args.pose).exists() else None
        require_files(source=args.source, pose=pose_file)
        single_output(args.out, args.source, args.pose, args.overwrite, args.grid)
        single_inputs(args.source, args.pose)
    else:
        input_dir(args.data, "--data")
        pairs = read_pairs(args.pairs)
        pairs = pairs[: args.limit] if args.limit is not None else pairs
        batch_pairs(pairs, args.out, args.data)
    procs = None
    if not single:  # batch mode shares the pairs between launched processes
        from cfld.distributed import processes

        procs = processes(args.device)
    device = args.device if procs is None or procs.world == 1 else str(procs.device)
    if procs is not None and args.threads is None and args.batch_invariant and _on_cpu(device):
        # One thread per process by default, as torchrun gives each: CPU kernels round
        # differently with another thread count, so only then are the PNGs the same for any
        # process count (README "Scaling out").  On CPUs, scale out with processes.
        import torch

        torch.set_num_threads(1)
    pipe = load_pipeline(args.model, args.vae, None, device)
    apply_precision(pipe, args.precision)
    common = dict(resolve_args(pipe, args).call_kwargs(), output_size=size,
                  keep_square=args.keep_square)
    if single:
        from cfld.commands._common import print_source_notes

        print_source_notes(pipe, args.source)
        pipe.set_progress_bar_config(disable=False)
        out = generate_one(pipe, args.source, args.pose, args.out, seed=args.seed,
                           grid=args.grid, overwrite=args.overwrite, **common)
        print(f"wrote {out}")
        if args.grid:
            print(f"wrote {out.with_name(out.stem + '_grid.png')} (source | target pose | "
                  "generated)")
        return 0
    pipe.set_progress_bar_config(disable=True)
    say = print if procs.is_main else (lambda _line: None)
    summary = generate_pairs(pipe, args.data, pairs, args.out, batch_size=args.batch_size,
                             seed=args.seed, overwrite=args.overwrite, log=say, procs=procs,
                             batch_invariant=args.batch_invariant, **common)
    for name, reason in sorted(summary.failed.items()):
        say(f"failed: {name}: {reason}")
    say(f"done: {summary.describe()} -> {args.out}")
    return 1 if summary.failed else 0


EXAMPLES = (
    "cfld generate --source me.jpg --pose walking --out me_walking.png --grid",
    "cfld generate --model cfld-fashion --source me.jpg --pose kp.json --out out.png "
    "--size 256x176",
    "cfld generate --model cfld-fashion --pairs fashion/fasion-resize-pairs-test.csv "
    "--data fashion --out gen256 --size 256x176",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld generate`."""
    from cfld.commands._help import add_command

    p = add_command(subparsers, "generate", EXAMPLES, description=(
        "Generate the person of --source in the pose of --pose, or every pair of a pairs csv "
        "(--pairs).\nThe default model (cfld-synthetic) is a small model of procedural people, "
        "for trying the tool\noffline; real photos need the authors' weights (cfld convert, "
        "README: Real weights)."))
    p.add_argument("--source", default=None, metavar="IMG", help="source photo")
    p.add_argument("--pose", default=None, metavar="POSE",
                   help="target pose: an example pose name (cfld pose --list), a keypoint JSON, "
                        "a skeleton image, or a photo of a person")
    p.add_argument("--pairs", default=None, metavar="CSV",
                   help="batch mode: pairs csv (from,to) e.g. ROOT/fasion-resize-pairs-test.csv "
                        "or ROOT/market-pairs-test.csv")
    p.add_argument("--data", default=None, metavar="ROOT",
                   help="batch mode: data root (DeepFashion or Market-1501 layout)")
    p.add_argument("--out", required=True,
                   help="output .png (single), or a folder (<source>___<target>.png names)")
    p.add_argument("--size", default=None, metavar="HxW",
                   help="output size, e.g. 256x176, 512x352 or 128x64 (default: the model's)")
    p.add_argument("--keep-square", action="store_true",
                   help="keep the generated square image (no resize to the evaluation size)")
    p.add_argument("--batch-size", type=BATCH_SIZE.arg(), default=4,
                   help="batch mode: pairs per unit of work (shared between processes); "
                        "with --no-batch-invariant, images per pipeline call")
    p.add_argument("--batch-invariant", action=argparse.BooleanOptionalAction, default=True,
                   help="batch mode: compute every image on its own (its guidance branches in "
                        "one UNet call), so the PNGs are bit-identical for any --batch-size, "
                        "process count, --limit or resume point (default); "
                        "--no-batch-invariant runs --batch-size images per call, and another "
                        "--batch-size can then move a few pixel values by one level")
    p.add_argument("--threads", type=THREADS.arg(), default=None, metavar="N",
                   help="torch CPU threads per process (default: 1 in batch mode on a CPU, "
                        "as torchrun gives each process, so that the PNGs are the same for any "
                        "process count; torch's own count in single mode and with "
                        "--no-batch-invariant). CPU kernels round differently with another "
                        "thread count: images are bit-identical only at the same thread count "
                        "(README: Scaling out)")
    p.add_argument("--limit", type=LIMIT.arg(), default=None,
                   help="batch mode: first N pairs only")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out image (single mode) or regenerate images "
                        "that already exist (batch mode); default: refuse / skip them")
    p.add_argument("--grid", action="store_true",
                   help="single mode: also write <out>_grid.png (source | pose | generated)")
    add_sampling_arguments(p)
    p.set_defaults(func=run)


def _on_cpu(device: str | None) -> bool:
    """Whether the pipeline will run on the CPU (``--device`` or the default)."""
    if device is not None:
        return str(device).startswith("cpu")
    import torch

    return not torch.cuda.is_available()
