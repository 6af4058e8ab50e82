"""Scheduler names for the CLI/app, all built on the authors' noise schedule (facts §6.2)."""

from __future__ import annotations

from typing import Any

from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)

#: name → (class, extra config).  ``ddpm`` is the paper's sampler (50 steps).
SCHEDULERS: dict[str, tuple[type, dict[str, Any]]] = {
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


def make_scheduler(name: str, base: Any = None) -> Any:
    """Build scheduler ``name`` from ``base``'s config (default: the authors' DDPM config).

    Raises ValueError for an unknown name, or for a scheduler that cannot handle the model's
    prediction type (e.g. Euler ancestral with an x0-prediction model such as the shipped one).
    """
    from cfld.pipelines.pipeline_cfld import official_scheduler

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
