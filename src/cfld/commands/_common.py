"""Flags and small helpers shared by several sub-commands (generate, edit, animate, app)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from cfld.checks.device import device_arg
from cfld.checks.files import input_file
from cfld.checks.numbers import GUIDANCE_SCALE, SEED, STEPS
from cfld.commands._help import GUIDANCE_NAMES, SCHEDULER_NAMES

if TYPE_CHECKING:  # torch and the pipeline are imported when a command runs, not for --help
    from collections.abc import Callable

    import torch

    from cfld.pipelines.distilled import Sampling
    from cfld.pipelines.pipeline_cfld import CFLDPipeline


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Which pipeline to load and where to run it (generate, edit, animate, app)."""
    p.add_argument("--model", default=None, metavar="NAME|DIR|HUB_ID",
                   help="cfld-synthetic (the shipped small model, the default), "
                        "cfld-synthetic-fast (its few-step student, once shipped), a pipeline "
                        "folder (e.g. written by `cfld convert` or `cfld distill`: RUN/model), "
                        "or a hub id")
    p.add_argument("--vae", default=None, metavar="DIR|HUB_ID",
                   help="SD-1.5 VAE for a model folder without one (not needed for a folder "
                        "written by `cfld convert --pretrained-sd`)")
    p.add_argument("--device", default="auto", type=device_arg,
                   help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="the networks' precision: auto (the default: bf16 on a CPU with native "
                        "bf16, fp16 on CUDA, else fp32), fp32 (the authors' numerics), bf16 "
                        "or fp16 (CUDA only)")


#: ``--precision`` choices → the pipeline's ``autocast`` setting (None = fp32).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def apply_precision(pipe: CFLDPipeline, precision: str = "auto") -> CFLDPipeline:
    """Set ``pipe``'s precision from ``--precision`` (ValueError, named, e.g. fp16 on a CPU)."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return pipe.disable_autocast()
    try:
        return pipe.enable_autocast(precision)
    except ValueError as err:
        raise ValueError(f"--precision {precision}: {err}") from None


#: The sampling flags' shared default, in the help (cfld.pipelines.distilled.resolve_sampling).
MODEL_DEFAULT = ("default: the model's own: a distilled folder's recorded setting, else the "
                 "paper's")


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by generate/edit/animate: the model and how to sample it.  The sampling
    flags default to None, "the model's own" (:func:`cfld.pipelines.distilled.resolve_sampling`)."""
    add_model_arguments(p)
    p.add_argument("--steps", type=STEPS.arg(), default=None,
                   help=f"denoising steps ({MODEL_DEFAULT} 50; with --scheduler: 50 for ddpm "
                        "and euler_a, 20 otherwise)")
    p.add_argument("--scheduler", default=None, choices=SCHEDULER_NAMES,
                   help="diffusers sampler (default: the model's own: a distilled folder's "
                        "LCMScheduler, else the paper's ddpm)")
    p.add_argument("--guidance-type", default=None, choices=GUIDANCE_NAMES,
                   help=f"classifier-free guidance ({MODEL_DEFAULT} uc_down_full, Eq. 7; a "
                        "guidance-distilled model records none and refuses multi-branch types)")
    p.add_argument("--scale-pose", type=GUIDANCE_SCALE.arg(), default=None,
                   help=f"w_pose of Eq. (7) ({MODEL_DEFAULT} 2)")
    p.add_argument("--scale-app", type=GUIDANCE_SCALE.arg(), default=None,
                   help=f"w_app of Eq. (7) ({MODEL_DEFAULT} 2)")
    p.add_argument("--seed", type=SEED.arg(), default=0, help="random seed of the initial noise")


def add_overwrite_argument(p: argparse.ArgumentParser) -> None:
    """``--overwrite``: without it, a command refuses (before any work) to replace a file."""
    p.add_argument("--overwrite", action="store_true",
                   help="replace output files that already exist (default: refuse, before "
                        "doing any work)")


def check_sampling_args(args: argparse.Namespace) -> None:
    """The given sampling flags under the API's rules (for namespaces not made by argparse)."""
    if args.steps is not None:
        STEPS.check(args.steps, "--steps")
    for value, flag in ((args.scale_pose, "--scale-pose"), (args.scale_app, "--scale-app")):
        if value is not None:
            GUIDANCE_SCALE.check(value, flag)
    SEED.check(args.seed, "--seed")


def resolve_args(pipe: CFLDPipeline, args: argparse.Namespace) -> Sampling:
    """The sampling flags over the model's own defaults (one rule for every command and the
    app: :func:`cfld.pipelines.distilled.resolve_sampling`), applied to ``pipe``'s scheduler."""
    from cfld.pipelines.distilled import resolve_sampling

    sampling = resolve_sampling(pipe, scheduler=args.scheduler, num_inference_steps=args.steps,
                                guidance_type=args.guidance_type, scale_pose=args.scale_pose,
                                scale_app=args.scale_app)
    sampling.apply(pipe)
    return sampling


def load_sampling(args: argparse.Namespace) -> tuple[CFLDPipeline, dict[str, Any],
                                                     torch.Generator]:
    """The pipeline of ``--model``, the keyword arguments of every pipeline call, a generator
    seeded with ``--seed``."""
    import torch

    from cfld.shipped import load_pipeline

    check_sampling_args(args)
    pipe = load_pipeline(args.model, args.vae, None, args.device)
    pipe.set_progress_bar_config(disable=True)
    apply_precision(pipe, getattr(args, "precision", "auto"))
    kwargs = resolve_args(pipe, args).call_kwargs()
    generator = torch.Generator(device=pipe._execution_device).manual_seed(args.seed)
    return pipe, kwargs, generator


def step_progress(label: str) -> Callable[[int, int], None]:
    """A ``fn(done, total)`` callback drawing a tqdm bar (created at the first call)."""
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def on_step(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=label, unit="step")
        b = bar["bar"]
        b.update(done - b.n)
        if done >= total:
            b.close()

    return on_step


def print_source_notes(pipe: object, *sources: object) -> None:
    """Print :func:`cfld.scope.source_notes` for each source photo (the shipped model's note
    for a real photo, a warning for a photo without a person), each line once."""
    from cfld.data.images import open_image
    from cfld.scope import source_notes
    from cfld.shipped import is_shipped

    seen: list[str] = []
    for source in sources:
        image = source if hasattr(source, "convert") else open_image(source, what="source")
        for line in source_notes(image, is_shipped(pipe)):
            if line not in seen:
                seen.append(line)
                print(line)


def require_files(**paths: str | None) -> None:
    """Raise FileNotFoundError (ValueError for a folder) naming the flag of the first given path
    that is not a readable file (keyword ``source_a`` names ``--source-a``); a ``pose`` may
    also name an example pose (``walking``)."""
    from cfld.pose.gallery import is_example_pose

    for flag, path in paths.items():
        if path is not None and not (flag == "pose" and is_example_pose(path)):
            input_file(path, f"--{flag.replace('_', '-')} file")


__all__ = ["PRECISIONS", "add_model_arguments", "add_overwrite_argument",
           "add_sampling_arguments", "apply_precision",
           "check_sampling_args", "load_sampling", "print_source_notes", "require_files",
           "resolve_args", "step_progress"]
