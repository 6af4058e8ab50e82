"""`cfld convert`: the authors' checkpoint folder → our safetensors + config.json folder."""

from __future__ import annotations

import argparse
import time


def run(args: argparse.Namespace) -> int:
    """Convert, load strictly, save atomically."""
    from cfld.checks.models import WEIGHTS_NAME
    from cfld.checks.outputs import output_dir
    from cfld.convert import convert_official

    output_dir(args.out, "--out", ["config.json", WEIGHTS_NAME], overwrite=args.overwrite)
    t0 = time.perf_counter()
    model = convert_official(args.official, args.out, args.config)
    n = sum(p.numel() for p in model.parameters())
    print(f"converted {args.official} -> {args.out} ({n:,} parameters, all keys matched, "
          f"{time.perf_counter() - t0:.1f} s)")
    print(f"load it with: CFLDModel.from_pretrained({str(args.out)!r})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld convert`."""
    p = subparsers.add_parser(
        "convert", help="convert the authors' checkpoint (pytorch_model.bin + pytorch_model_1.bin)")
    p.add_argument("--official", required=True, metavar="DIR",
                   help="authors' checkpoint folder (pytorch_model.bin, pytorch_model_1.bin)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (our format)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="JSON with the authors' yacs config under 'cfg' and the UNet config "
                        "under 'unet_config' (default: the full-size official configuration)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a model already in --out (default: refuse)")
    p.set_defaults(func=run)
