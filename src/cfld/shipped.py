"""The small CFLD model we train on procedural people and ship inside the package.

Reproduce it with ``python benchmarks/train_synthetic.py`` (see the README).  It is a complete
:class:`~cfld.CFLDPipeline` folder (model, pixel autoencoder, scheduler) under
``cfld/assets/cfld-synthetic``.
"""

from __future__ import annotations

import os
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent / "assets" / "cfld-synthetic"
#: The few-step student of the shipped model (issue 20; `cfld distill --teacher cfld-synthetic`
#: then :func:`package_pipeline`).  Not shipped yet: naming it is a clear error until it is.
FAST_DIR = SHIPPED_DIR.parent / "cfld-synthetic-fast"
#: Models that ship inside the package, by the name ``from_pretrained`` and ``--model`` take.
SHIPPED_MODELS: dict[str, Path] = {"cfld-synthetic": SHIPPED_DIR, "cfld-synthetic-fast": FAST_DIR}
#: Scheduler classes a shipped folder may record (its ``model_index.json``).
SHIPPED_SCHEDULERS = ("DDPMScheduler", "LCMScheduler")

#: Sampler used by `cfld demo` (chosen by benchmarks/bench_sampler_quality.py: the fastest
#: setting whose quality is within the DDPM-50 seed-to-seed spread).
DEMO_SETTINGS = {"scheduler": "ddpm", "steps": 20}


def shipped_name(model: object) -> str | None:
    """``model`` if it names a shipped model and is not a local folder of that name, else None."""
    if isinstance(model, (str, os.PathLike)):
        name = os.fspath(model)
        if name in SHIPPED_MODELS and not os.path.exists(name):
            return name
    return None


def is_shipped(pipe: object) -> bool:
    """Whether ``pipe`` was loaded from a shipped model (see :func:`load_shipped_pipeline`)."""
    return bool(getattr(pipe, "_cfld_shipped", False))


def shipped_model_dir(name: str = "cfld-synthetic") -> Path:
    """Folder of the shipped pipeline ``name``; a clear error if this installation lacks it."""
    folder = SHIPPED_MODELS[name]
    if (folder / "model_index.json").is_file():
        return folder
    if folder == FAST_DIR:
        raise FileNotFoundError(
            f"the fast model {name} is not shipped yet ({FAST_DIR} is absent); make one with "
            "`cfld distill --teacher cfld-synthetic --data ROOT --out RUN` and give "
            "--model RUN/model")
    raise FileNotFoundError(
        f"the shipped small model is missing from this installation ({folder}); "
        "reinstall cfld, or train it with `python benchmarks/train_synthetic.py`")


def load_shipped_pipeline(torch_dtype=None, name: str = "cfld-synthetic"):
    """Load the shipped pipeline ``name`` (CPU; float32 unless ``torch_dtype`` says otherwise)
    with the scheduler class and ``sampling_defaults`` its folder records."""
    import json

    import diffusers
    import torch

    from cfld.models.cfld import CFLDModel
    from cfld.models.pixel_autoencoder import PixelUnshuffleAutoencoder
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

    folder = shipped_model_dir(name)
    # Stored in float16 to keep the wheel small; computed in float32.
    model = CFLDModel.from_pretrained(folder / "model", torch_dtype=torch_dtype or torch.float32)
    index = json.loads((folder / "model_index.json").read_text())
    scheduler_class = (index.get("scheduler") or [None, "DDPMScheduler"])[1]
    if scheduler_class not in SHIPPED_SCHEDULERS:  # an allow-list: never a class named by a file
        raise ValueError(f"{folder}/model_index.json names scheduler {scheduler_class!r}; a "
                         f"shipped model uses one of {SHIPPED_SCHEDULERS}")
    scheduler = getattr(diffusers, scheduler_class).from_pretrained(folder / "scheduler")
    pipe = CFLDPipeline(model=model, scheduler=scheduler,
                        vae=PixelUnshuffleAutoencoder.from_pretrained(folder / "vae"),
                        output_size=index.get("output_size"),
                        sampling_defaults=index.get("sampling_defaults"))
    pipe._cfld_shipped = True  # the CLI and the app say what this model is for (cfld.scope)
    return pipe


def load_pipeline(model: str | None = None, vae: str | None = None,
                  scheduler: str | None = None, device: str | None = None):
    """Load ``model`` (a shipped model's name, a folder or a hub id; default: the shipped
    model), optionally with another VAE and a scheduler by name
    (:data:`cfld.pipelines.schedulers.SCHEDULERS`; None: the folder's own, e.g. a distilled
    folder's ``LCMScheduler``; :func:`cfld.pipelines.distilled.resolve_sampling` picks it)."""
    from cfld.checks.device import check_device
    from cfld.pipelines.pipeline_cfld import CFLDPipeline
    from cfld.pipelines.schedulers import make_scheduler

    if device is not None:
        check_device(device)  # before loading anything
    if vae is not None:  # never ignored: refused where it cannot apply, checked where it can
        if model is None or shipped_name(model):
            raise ValueError("--vae applies to a --model folder without its own autoencoder (e.g. "
                             "`cfld convert` output); the shipped model has its own")
        v = os.fspath(vae)
        if (os.path.isabs(v) or v.startswith(".") or v.count("/") != 1) and not Path(v).is_dir():
            raise FileNotFoundError(f"--vae folder not found: {v} (give a Stable Diffusion 1.5 "
                                    "VAE folder or a hub id)")
    if model is None or shipped_name(model):
        pipe = load_shipped_pipeline(name=shipped_name(model) or "cfld-synthetic")
    else:
        looks_local = os.path.isabs(model) or model.startswith(".") or model.count("/") != 1
        if Path(model).is_file():
            raise ValueError(f"model {model} is a file; give the pipeline folder that holds "
                             "model_index.json (the folder `cfld convert --pretrained-sd`, "
                             "`cfld train` or save_pretrained wrote)")
        if looks_local and not Path(model).is_dir():
            raise FileNotFoundError(
                f"model folder not found: {model} (give {', '.join(SHIPPED_MODELS)}, a folder "
                "written by `cfld convert --pretrained-sd`, `cfld train` or save_pretrained, or "
                "a hub id such as org/name)")
        from diffusers.utils import logging as diffusers_logging

        kwargs = {"vae": vae} if vae is not None else {}
        diffusers_logging.disable_progress_bar()  # no "Loading pipeline components" bar
        try:
            pipe = CFLDPipeline.from_pretrained(model, **kwargs)
        finally:
            diffusers_logging.enable_progress_bar()
    if scheduler is not None:
        pipe.scheduler = make_scheduler(scheduler, pipe.scheduler)
    if device is not None:
        pipe.to(device)
    return pipe


def package_pipeline(src: str | os.PathLike, dst: str | os.PathLike = SHIPPED_DIR) -> Path:
    """Copy a trained pipeline folder into the package, weights stored in float16 (≈ half the
    size; :func:`load_shipped_pipeline` computes in float32)."""
    import torch

    from cfld.checkpoint import atomic_save_dir
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

    pipe = CFLDPipeline.from_pretrained(src)
    # nn.Module.to, not diffusers' override: the latter warns about fp32-kept modules (there are
    # none here) on every packaging.
    torch.nn.Module.to(pipe.model, torch.float16)
    return atomic_save_dir(dst, lambda tmp: pipe.save_pretrained(tmp, safe_serialization=True))
