"""The authors' noise schedule (fidelity §6.2) and the scheduler names of the CLI and the app,
all built on it.  The one home of the schedule: training, sampling and export read it here.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

#: The authors' noise schedule (pretrained_models/scheduler, loaded as DDPM; fidelity §6.2).
OFFICIAL_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
    "steps_offset": 1,
}

PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "sample", "v_prediction")


def official_scheduler(prediction_type: str = "epsilon") -> DDPMScheduler:
    """DDPMScheduler with the authors' configuration (scaled-linear betas 0.00085–0.012, 1000
    steps, leading spacing, offset 1), predicting ``prediction_type`` (official: ε)."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got "
                         f"{prediction_type!r}")
    return DDPMScheduler(**{**OFFICIAL_SCHEDULER_CONFIG, "prediction_type": prediction_type})


#: name → (class, extra config).  ``ddpm`` is the paper's sampler (50 steps).
SCHEDULERS: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "ddpm": (DDPMScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "dpm": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "unipc": (UniPCMultistepScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
}


#: name → prediction types its diffusers class cannot step with (diffusers 0.42: Euler ancestral
#: has no x0 ("sample") branch and would fail at the first step).
UNSUPPORTED_PREDICTION: dict[str, tuple[str, ...]] = {"euler_a": ("sample",)}


def supports(name: str, prediction_type: str) -> bool:
    """Whether scheduler ``name`` can sample a model trained with ``prediction_type``."""
    return prediction_type not in UNSUPPORTED_PREDICTION.get(name, ())


def make_scheduler(name: str, base: SchedulerMixin | None = None) -> SchedulerMixin:
    """Build scheduler ``name`` from ``base``'s config (default: the authors' DDPM config).

    Raises ValueError for an unknown name, or for a scheduler that cannot handle the model's
    prediction type (e.g. Euler ancestral with an x0-prediction model such as the shipped one).
    """
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {sorted(SCHEDULERS)}")
    cls, extra = SCHEDULERS[name]
    config = dict((base or official_scheduler()).config)
    config.update(extra)
    prediction = config.get("prediction_type", "epsilon")
    if not supports(name, prediction):
        ok = sorted(n for n in SCHEDULERS if supports(n, prediction))
        raise ValueError(f"scheduler {name!r} cannot sample a model that predicts "
                         f"{prediction!r}; choose one of {ok}")
    return cls.from_config(config)


def scheduler_from_folder(folder: Path) -> DDPMScheduler:
    """A bare model folder's ``scheduler_config.json`` (or ``scheduler/``), loaded as DDPM as the
    authors do whatever class it names (fidelity §6.2); else the authors' configuration."""
    from cfld.checks.models import check_config_file

    for path in (folder / "scheduler_config.json", folder / "scheduler" / "scheduler_config.json"):
        if path.is_file():
            return DDPMScheduler.from_config(check_config_file(path, "scheduler config"))
    return official_scheduler()


def step_kwargs(scheduler: SchedulerMixin, generator: Any, eta: float) -> dict[str, Any]:
    """The ``generator`` / ``eta`` keywords that ``scheduler.step`` takes."""
    params = set(inspect.signature(scheduler.step).parameters)
    kwargs: dict[str, Any] = {}
    if "generator" in params:
        kwargs["generator"] = generator
    if "eta" in params:
        kwargs["eta"] = eta
    return kwargs
