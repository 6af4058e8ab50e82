"""`cfld evaluate`: score generated images with the authors' DeepFashion protocol (fidelity §8)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cfld.checks.device import device_arg
from cfld.checks.numbers import BATCH_SIZE

EXAMPLES = (
    "cfld evaluate --generated gen256 --data fashion --size 256x176",
    "cfld evaluate --generated gen512 --data fashion --size 512x352 --inception-weights "
    "inception_v3_google-0cc3c7bd.pth",
    "cfld evaluate --generated gen_market --data market --size 128x64",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command."""
    from cfld.commands._common import add_overwrite_argument
    from cfld.commands._help import add_command

    p = add_command(subparsers, "evaluate", EXAMPLES, description=(
        "Score a folder of generated images named <source stem>___<target stem>.png against a "
        "data root\n(DeepFashion or Market-1501 layout), with the CFLD authors' protocol. Two "
        "SSIMs are reported:\nssim (uniform 51x51 window, the paper's tables) and ssim_256 "
        "(11-tap Gaussian, the authors'\nsecond score); fid is the standard FID, fid_cfld the "
        "authors' extractor."))
    p.add_argument("--generated", required=True, type=Path, help="folder of generated images")
    p.add_argument("--data", required=True, type=Path,
                   help="data root (DeepFashion or Market-1501 layout)")
    p.add_argument("--size", default="256x176",
                   help="evaluation size HxW: 256x176 or 512x352 (DeepFashion), 128x64 (Market)")
    p.add_argument(
        "--out", type=Path, default=None, help="metrics JSON (default GENERATED/metrics.json)"
    )
    p.add_argument("--batch-size", type=BATCH_SIZE.arg(), default=16,
                   help="images per batch (default 16)")
    p.add_argument("--device", default="auto", type=device_arg,
                   help="compute device: auto (cuda, else mps, else cpu), cpu, cuda, cuda:N, mps")
    p.add_argument(
        "--inception-weights",
        type=Path,
        default=None,
        help="torchvision inception_v3_google-0cc3c7bd.pth for fid_cfld "
        "(or $CFLD_INCEPTION_WEIGHTS)",
    )
    p.add_argument(
        "--fid-stats-cache",
        type=Path,
        default=None,
        help="folder for cached FID reference statistics (default DATA/.cfld-cache)",
    )
    p.add_argument(
        "--fid-reference",
        default="train",
        choices=("train", "test-gt"),
        help="FID reference set: every training image (authors) or the pairs' ground truth "
             "(default: train)",
    )
    p.add_argument(
        "--allow-missing", action="store_true", help="score only pairs that have an image"
    )
    p.add_argument(
        "--lpips-weights", type=Path, default=None, help="LPIPS weights (default: shipped)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_overwrite_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation, print the checks and the table, write the JSON."""
    from cfld.checks.numbers import MAX_OUTPUT_SIDE
    from cfld.checks.outputs import output_file
    from cfld.distributed import processes
    from cfld.metrics.evaluate import evaluate_folder, format_table
    from cfld.sizes import parse_size

    out = args.out if args.out is not None else Path(args.generated) / "metrics.json"
    output_file(out, "--out", args.overwrite, suffixes=(".json",))  # before any work
    parse_size(args.size, max_side=MAX_OUTPUT_SIDE)  # 99999x99999 refused before any work
    procs = processes(args.device)  # several under torchrun / accelerate launch
    results = evaluate_folder(
        args.generated,
        args.data,
        args.size,
        batch_size=args.batch_size,
        device=procs.device,
        procs=procs,
        inception_weights=args.inception_weights,
        fid_stats_cache=args.fid_stats_cache,
        fid_reference=args.fid_reference,
        allow_missing=args.allow_missing,
        lpips_weights=args.lpips_weights,
        out=out,
        progress=not args.no_progress,
        log=print,
    )
    if not procs.is_main:
        return 0
    print(format_table(results))
    for note in results["notes"]:
        print(f"note: {note}")
    print(
        f"{results['num_pairs']} pairs in {results['seconds_total']:.1f} s; "
        f"metrics written to {out}"
    )
    return 0
