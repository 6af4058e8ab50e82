"""`cfld distill`: a few-step, one-branch student of a guided CFLD model.

    cfld distill --teacher DIR --data ROOT --out RUN [--steps N --batch-size B ...]

Every field of :class:`cfld.training.distill_config.DistillConfig` is a flag, made from the
dataclass as ``cfld train`` makes its flags (:func:`cfld.commands.train.add_config_flags`);
``--set key=value`` (JSON values) sets any field; ``--dry-run`` prints the resolved
configuration.  The command calls :func:`cfld.training.distill.distill`; several processes run
as for ``cfld train`` (``accelerate launch --multi_gpu ... -m cfld.cli distill ...`` on GPUs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

#: Fields whose flag is not ``--field-name``.
FLAG_NAMES = {"data_root": "--data", "output_dir": "--out", "max_steps": "--steps"}

EXAMPLES = (
    "cfld distill --teacher cfld-synthetic --data synth --out runs/fast --steps 2000",
    "cfld distill --teacher runs/f1/model --data fashion --out runs/f1-fast --batch-size 8 "
    "--mixed-precision bf16 --num-inference-steps 4",
    "cfld distill --teacher runs/f1/model --data fashion --out runs/f1-fast --resume latest",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``distill`` parser."""
    from cfld.commands._help import add_command
    from cfld.commands.train import add_config_flags
    from cfld.training.config import MIXED_PRECISION_MODES
    from cfld.training.distill_config import DISTILL_RULES, LOSSES, OBJECTIVES, DistillConfig

    p = add_command(
        subparsers, "distill", EXAMPLES,
        description="Distil a guided CFLD model (Eq. 7, 3 UNet evaluations per step, 50 steps) "
                    "into a student that\nsamples in --num-inference-steps LCM steps of ONE "
                    "UNet evaluation. Writes config.json,\ncheckpoints/, samples/, tensorboard/ "
                    "and the distilled pipeline folder model/ into --out.")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="set any configuration field; VALUE is JSON or a plain string")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved configuration as JSON and exit")
    add_config_flags(p, DistillConfig, DISTILL_RULES,
                     {"objective": OBJECTIVES, "loss": LOSSES,
                      "mixed_precision": MIXED_PRECISION_MODES}, FLAG_NAMES,
                     skip=("prediction_type",))
    p.add_argument("--max-steps", dest="max_steps", type=DISTILL_RULES["max_steps"].arg(),
                   default=argparse.SUPPRESS, metavar="N", help="the same as --steps")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`DistillConfig` of the flags and ``--set``."""
    from cfld.commands.train import _parse_set
    from cfld.training.distill_config import DistillConfig

    names = {f.name for f in dataclasses.fields(DistillConfig)}
    data: dict[str, Any] = {n: getattr(args, n) for n in names if hasattr(args, n)}
    data.update(_parse_set(item, names) for item in args.overrides)
    for field, flag in {"teacher": "--teacher", **FLAG_NAMES}.items():
        if field != "max_steps" and data.get(field) is None:
            raise ValueError(f"{flag} is required")
    return DistillConfig(**data)


def run(args: argparse.Namespace) -> int:
    """Distil (or print the configuration); print a one-line JSON summary."""
    config = config_from_args(args)
    config.validate()
    if args.dry_run:
        print(json.dumps(config.to_dict(), indent=2, sort_keys=True))
        return 0
    from cfld.checks.outputs import run_dir

    run_dir(config.output_dir, resume=config.resume is not None)  # before any work, as train
    from cfld.distributed import launched_rank
    from cfld.training.distill import distill

    result = distill(config)
    losses = result["losses"]
    summary = {
        "output_dir": result["output_dir"],
        "steps": result["steps"],
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "seconds_per_step": round(result["seconds_per_step"], 4) if losses else None,
        "checkpoint": result["checkpoint"],
        "model_dir": result["model_dir"],
        "num_processes": result["num_processes"],
        "total_batch_size": result["total_batch_size"],
    }
    if launched_rank() == 0:
        print(json.dumps(summary))
    return 0
