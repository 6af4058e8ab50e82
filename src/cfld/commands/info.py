"""`cfld info`: version, environment and the parameter table of a preset (paper Table 1)."""

from __future__ import annotations

import argparse
import json
import platform
import time


def parameter_table(preset: str) -> dict[str, int]:
    """Parameter counts of a preset, built on the meta device (no weights allocated)."""
    import torch

    from cfld.models.cfld import CFLDModel
    from cfld.presets import get_preset

    with torch.device("meta"):
        model = CFLDModel(**get_preset(preset).model)
    return model.parameter_table()


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON)."""
    import torch

    import cfld

    t0 = time.perf_counter()
    table = parameter_table(args.preset)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print(f"cfld {cfld.__version__} | torch {torch.__version__} | python "
          f"{platform.python_version()} | cuda available: {torch.cuda.is_available()}")
    print(f"preset {args.preset}: parameters (built on meta in {time.perf_counter() - t0:.1f} s)")
    names = {
        "source_encoder": "H_S source encoder (Swin)",
        "appearance_encoder": "φ_A hybrid-granularity attention",
        "decoder": "H_D perception-refined decoder",
        "pose_adapter": "H_P pose adapter",
        "uncond_prompt": "learnable unconditional prompt",
        "unet_total": "H_N UNet (total)",
        "unet_trainable": "H_N UNet (trainable W_k, W_v)",
        "trainable_total": "trainable total",
    }
    for key, label in names.items():
        print(f"  {label:<36} {table[key]:>15,}  ({table[key] / 1e6:.1f}M)")
    return 0


EXAMPLES = (
    "cfld info                        # the paper's model: Table 1's parameter counts",
    "cfld info --preset synthetic     # the shipped small model",
    "cfld info --preset tiny --json",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cfld info`."""
    from cfld.commands._help import PRESET_NAMES, add_command

    p = add_command(subparsers, "info", EXAMPLES)
    p.add_argument("--preset", default="fashion_256", choices=PRESET_NAMES,
                   help="model preset")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=run)
