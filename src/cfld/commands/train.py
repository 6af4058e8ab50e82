"""`cfld train`: train CFLD on a DeepFashion-layout root (real or procedural).

    cfld train --data ROOT --out RUN [--FIELD VALUE ...]
    cfld train --config RUN/config.json [--set key=value ...] [--dry-run]

Every field of :class:`cfld.training.TrainConfig` is a flag (``--batch-size``, ``--snr-gamma``,
...; booleans as ``--x/--no-x``), made from the dataclass itself, with its help from the field's
documentation.  ``--config FILE`` starts from a saved configuration (a run's ``config.json``),
flags and ``--set key=value`` (JSON values) override it, ``--dry-run`` prints the resolved
configuration and exits.  The command then calls :func:`cfld.training.train`.  Several
processes: ``accelerate launch --multi_gpu --num_processes N -m cfld.cli train ...`` on GPUs,
``torchrun --nproc_per_node N -m cfld.cli train ...`` on CPU machines (:mod:`cfld.distributed`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import types
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cfld.training.config import TrainConfig

#: Fields whose flag is not ``--field-name`` (kept from earlier versions of the command).
FLAG_NAMES = {"data_root": "--data", "output_dir": "--out"}
#: Fields only reachable through ``--set`` (structured values).
SET_ONLY = ("model_overrides",)


def field_help(cls: type | None = None) -> dict[str, str]:
    """Field name → its one-line documentation, from the ``Attributes:`` section of the
    docstring of ``cls`` (default :class:`TrainConfig`; grouped entries ``a, b: text`` give
    both the text)."""
    from cfld.training.config import TrainConfig

    doc = ((cls or TrainConfig).__doc__ or "").split("Attributes:", 1)[-1]
    out: dict[str, str] = {}
    names: list[str] = []
    for line in doc.splitlines():
        m = re.match(r"^ {8}([a-z_][a-z0-9_, ]*):\s*(.*)$", line)
        if m:
            names = [n.strip() for n in m.group(1).split(",")]
            for n in names:
                out[n] = m.group(2).strip()
        elif line.startswith(" " * 12) and names:
            for n in names:
                out[n] += " " + line.strip()
    return out


def _flag_kwargs(name: str, hint: Any, default: Any, rules: dict[str, Any] | None = None,
                 choices: dict[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """argparse options for one field from its type annotation (``rules``/``choices``: the
    numeric rules and the choices of the fields; default: :class:`TrainConfig`'s)."""
    base = hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None → X
        base = next(a for a in typing.get_args(hint) if a is not type(None))
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    from cfld.training.rules import TRAIN_RULES  # the same rules as TrainConfig.validate

    rule = (TRAIN_RULES if rules is None else rules).get(name)
    if typing.get_origin(base) is tuple:
        inner = typing.get_args(base)
        count: int | str = "*" if (len(inner) == 2 and inner[1] is Ellipsis) else len(inner)
        return {"type": rule.arg() if rule else float, "nargs": count, "metavar": "X"}
    from cfld.pipelines.schedulers import PREDICTION_TYPES
    from cfld.training.config import MIXED_PRECISION_MODES, TRAINABLE_CHOICES
    from cfld.training.objective import DROPOUT_MODES

    if choices is None:
        choices = {"mixed_precision": MIXED_PRECISION_MODES, "trainable": TRAINABLE_CHOICES,
                   "dropout": DROPOUT_MODES, "prediction_type": PREDICTION_TYPES}
    valid = choices.get(name)
    kwargs: dict[str, Any] = {"type": str}
    if base in (int, float):
        kwargs["type"] = rule.arg() if rule else base
    if valid:
        kwargs["choices"] = valid
    return kwargs


def add_config_flags(p: argparse.ArgumentParser, cls: type | None = None,
                     rules: dict[str, Any] | None = None,
                     choices: dict[str, Sequence[str]] | None = None,
                     flag_names: dict[str, str] | None = None,
                     skip: Sequence[str] = SET_ONLY) -> None:
    """One flag per field of the configuration dataclass ``cls`` (default :class:`TrainConfig`,
    with its rules, choices and flag names); unset flags leave the field alone."""
    from cfld.training.config import TrainConfig

    cls = cls or TrainConfig
    flag_names = FLAG_NAMES if flag_names is None else flag_names
    hints = typing.get_type_hints(cls)
    docs = field_help(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = getattr(defaults, f.name)
        shown = list(default) if isinstance(default, tuple) else default
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", docs.get(f.name, "")).replace("``", "")
        help_text = text.replace("%", "%%") + f" (default: {shown})"
        flag = flag_names.get(f.name, "--" + f.name.replace("_", "-"))
        kwargs = _flag_kwargs(f.name, hints[f.name], default, rules, choices)
        if "action" not in kwargs and "choices" not in kwargs:
            kwargs.setdefault("metavar", flag[2:].replace("-", "_").upper())
        p.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, help=help_text, **kwargs)


EXAMPLES = (
    "cfld data synth --out synth --people 40 && cfld train --preset synthetic --data synth "
    "--out runs/s1 --max-steps 200",
    "cfld train --preset fashion_256 --data fashion --out runs/f1 --pretrained-sd SD15_DIR "
    "--pretrained-swin swin_base_patch4_window12_384_22kto1k.pth",
    "cfld train --config runs/s1/config.json --set lr=5e-5 --dry-run",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` parser."""
    from cfld.commands._help import add_command

    p = add_command(
        subparsers, "train", EXAMPLES,
        description="Train CFLD (official recipe: Adam 1e-4, warm-up 1000 steps from 0.1x, "
                    "x0.1 at epoch 50, 100 epochs,\ncubic timesteps, 20% prompt dropout). "
                    "Writes config.json, checkpoints/, samples/, tensorboard/\nand the final "
                    "model/ folder into --out.")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="start from this configuration (JSON, e.g. a run's config.json); the "
                        "flags below and --set override it")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="set any configuration field; VALUE is JSON (numbers, true/false, null, "
                        "lists, objects such as model_overrides={...}) or a plain string")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved configuration as JSON (per-process and total batch, "
                        "accumulation, LR, process count, preset sizes, data pair count) and "
                        "exit without training")
    p.add_argument("--num-processes", type=int, default=None, metavar="N",
                   help="with --dry-run: resolve for N processes (default: the launcher's "
                        "WORLD_SIZE, else 1); to train on N, launch with torchrun / accelerate")
    add_config_flags(p)
    p.add_argument("--uniform-timesteps", dest="cubic_sampling", action="store_false",
                   default=argparse.SUPPRESS,
                   help="uniform instead of the official cubic timestep sampling "
                        "(= --no-cubic-sampling)")
    p.set_defaults(func=run)


def _parse_set(item: str, names: set[str]) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or key not in names:
        raise ValueError(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(names)}")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError:
        return key, text
    except RecursionError:
        raise ValueError(f"--set {key}: the value is nested too deeply") from None


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` described by ``--config``, the flags and ``--set``."""
    from cfld.training.config import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    data: dict[str, Any] = {}
    if args.config:
        data = TrainConfig.load(args.config).to_dict()
    data.update({n: getattr(args, n) for n in names if hasattr(args, n)})
    data.update(_parse_set(item, names) for item in args.overrides)
    for field, flag in FLAG_NAMES.items():
        if data.get(field) is None:
            raise ValueError(f"{flag} is required (or {field} in --config / --set)")
    return TrainConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    """Train (or, with ``--dry-run``, print the configuration); print a one-line JSON summary."""
    config = config_from_args(args)
    procs = getattr(args, "num_processes", None)
    if procs is not None and (not args.dry_run or procs < 1):
        raise ValueError("--num-processes N (N >= 1) only goes with --dry-run; to train on N "
                         "processes launch with `torchrun --nproc_per_node N -m cfld.cli train`")
    if args.dry_run:
        from cfld.distributed import launched_processes, launched_rank
        from cfld.training.resolved import resolved_run

        resolved = resolved_run(config, procs or launched_processes())
        if launched_rank() == 0:  # one print per launch
            print(json.dumps(resolved, indent=2, sort_keys=True))
        return 0
    from cfld.checks.outputs import run_dir

    run_dir(config.output_dir, resume=config.resume is not None)  # before any work
    from cfld.distributed import launched_rank
    from cfld.training.loop import train

    result = train(config)
    losses = result["losses"]
    summary = {
        "output_dir": result["output_dir"],
        "steps": result["steps"],
        "final_loss": losses[-1] if losses else None,
        "seconds_per_step": round(result["seconds_per_step"], 4) if losses else None,
        "checkpoint": result["checkpoint"],
        "model_dir": result["model_dir"],
        "num_processes": result["num_processes"],
        "total_batch_size": result["total_batch_size"],
    }
    if launched_rank() == 0:  # one summary per run, not one per process
        print(json.dumps(summary))
    return 0
