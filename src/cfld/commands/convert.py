"""`cfld convert`: the authors' checkpoint folder → a pipeline folder (with ``--pretrained-sd``)
or a model folder (safetensors + config.json)."""

from __future__ import annotations

import argparse
import time

from cfld.commands._help import add_command

EXAMPLES = (
    "cfld convert --official CFLD/checkpoints --pretrained-sd stable-diffusion-v1-5/"
    "stable-diffusion-v1-5 --out cfld-fashion",
    "cfld convert --official CFLD/checkpoints --pretrained-sd ~/models/sd-v1-5 --out "
    "cfld-fashion   # offline",
    "cfld generate --model cfld-fashion --source me.jpg --pose walking --out me.png",
)


def run(args: argparse.Namespace) -> int:
    """Convert, load strictly, save atomically; name what was written and how to load it."""
    from cfld.checks.models import WEIGHTS_NAME
    from cfld.checks.outputs import output_dir
    from cfld.convert import convert_official, convert_official_pipeline

    pipeline = args.pretrained_sd is not None
    names = ["model_index.json", "model"] if pipeline else ["config.json", WEIGHTS_NAME]
    out = output_dir(args.out, "--out", names, overwrite=args.overwrite)
    t0 = time.perf_counter()
    if pipeline:
        model = convert_official_pipeline(args.official, out, args.pretrained_sd,
                                          args.config).model
    else:
        model = convert_official(args.official, out, args.config)
    n = sum(p.numel() for p in model.parameters())
    print(f"converted {args.official} ({n:,} parameters, all keys matched, "
          f"{time.perf_counter() - t0:.1f} s)")
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
    print(f"wrote {out}/ ({', '.join(entries)})")
    if pipeline:
        print(f"load it with: CFLDPipeline.from_pretrained({str(args.out)!r}) or "
              f"cfld generate --model {args.out} ...")
    else:
        print(f"load it with: CFLDModel.from_pretrained({str(args.out)!r}); for a complete "
              "pipeline (VAE and scheduler included) convert with --pretrained-sd")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld convert`."""
    p = add_command(subparsers, "convert", EXAMPLES, description=(
        "Convert the authors' checkpoint (pytorch_model.bin + pytorch_model_1.bin, from the "
        "authors'\nrepository) into our format. With --pretrained-sd the output is a complete "
        "pipeline folder\n(model, SD-1.5 VAE, the authors' DDPM scheduler) that --model and "
        "CFLDPipeline.from_pretrained\nload with no other flag."))
    p.add_argument("--official", required=True, metavar="DIR",
                   help="authors' checkpoint folder (pytorch_model.bin, pytorch_model_1.bin)")
    p.add_argument("--pretrained-sd", default=None, metavar="ID|DIR",
                   help="Stable Diffusion 1.5, for the VAE: a hub id (fetched when online, e.g. "
                        "stable-diffusion-v1-5/stable-diffusion-v1-5) or a local folder; "
                        "without it only the model folder is written")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="JSON with the authors' yacs config under 'cfg' and the UNet config "
                        "under 'unet_config' (default: the full-size official configuration)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a model already in --out (default: refuse)")
    p.set_defaults(func=run)
