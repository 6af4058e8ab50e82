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


def make_scheduler(name: str, base: Any = None) -> Any:
    """Build scheduler ``name`` from ``base``'s config (default: the authors' DDPM config)."""
    from cfld.pipelines.pipeline_cfld import official_scheduler

    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {sorted(SCHEDULERS)}")
    cls, extra = SCHEDULERS[name]
    config = dict((base or official_scheduler()).config)
    config.update(extra)
    return cls.from_config(config)
