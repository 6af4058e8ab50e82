"""A pipeline folder's own sampling defaults, and how a guidance-distilled student samples.

A distilled folder (``cfld distill``) records in ``model_index.json``::

    "sampling_defaults": {"num_inference_steps": 4, "guidance_type": "none",
                          "scale_pose": 2.0, "scale_app": 2.0}

and its ``scheduler/`` is diffusers' ``LCMScheduler``, so ``pipe(source, pose)`` samples as it
was distilled.  A student (:func:`~cfld.models.guidance_embedding.is_guidance_distilled`)
evaluates ONE branch per step, the full conditions ε(C, pose, A) (guidance type ``none``), and
receives (w_pose, w_app) of Eq. 7 through its guidance embedding instead of extra branches.
Without recorded defaults a teacher keeps the paper's: 50 steps, ``uc_down_full``, w = 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from cfld.checks.numbers import GUIDANCE_SCALE, STEPS
from cfld.models.guidance_embedding import is_guidance_distilled, student_condition
from cfld.pipelines.guidance import GuidanceScales, get_guidance

#: The keys a folder's ``sampling_defaults`` may hold.
DEFAULT_KEYS = ("num_inference_steps", "guidance_type", "scale_pose", "scale_app")
#: The paper's defaults (Eq. 7 with w_pose = w_app = 2, 50 DDPM steps).
PAPER_DEFAULTS: dict[str, Any] = {"num_inference_steps": 50, "guidance_type": "uc_down_full",
                                  "scale_pose": 2.0, "scale_app": 2.0}


def lcm_scheduler(base_config: Mapping[str, Any], solver_steps: int = 50) -> Any:
    """diffusers' ``LCMScheduler`` on the noise schedule of ``base_config`` (the teacher's
    DDPM config), its step grid the distillation's ``solver_steps``-step DDIM grid."""
    import inspect

    from diffusers import LCMScheduler

    accepted = set(inspect.signature(LCMScheduler.__init__).parameters)
    config = {k: v for k, v in dict(base_config).items() if k in accepted}
    return LCMScheduler(**{**config, "original_inference_steps": int(solver_steps)})


def check_sampling_defaults(defaults: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Validate a folder's recorded defaults (keys and values), or None."""
    if defaults is None:
        return None
    if not isinstance(defaults, Mapping):
        raise ValueError(f"sampling_defaults must be an object, got {defaults!r}")
    unknown = sorted(set(defaults) - set(DEFAULT_KEYS))
    if unknown:
        raise ValueError(f"unknown sampling_defaults key(s) {unknown}; valid: {list(DEFAULT_KEYS)}")
    out = dict(defaults)
    if "num_inference_steps" in out:
        out["num_inference_steps"] = STEPS.check(out["num_inference_steps"])
    if "guidance_type" in out:
        get_guidance(out["guidance_type"])
    for key in ("scale_pose", "scale_app"):
        if key in out:
            out[key] = GUIDANCE_SCALE.check(out[key], key)
    return out


def resolve_defaults(model: nn.Module, recorded: Mapping[str, Any] | None,
                     **given: Any) -> dict[str, Any]:
    """The ``__call__`` arguments in ``DEFAULT_KEYS``: given (not None) > recorded > the
    paper's (a student's guidance type: ``none``).

    Raises:
        ValueError: a student asked for a guidance type with several branches.
    """
    student = is_guidance_distilled(model)
    base = {**PAPER_DEFAULTS, "guidance_type": "none" if student else "uc_down_full",
            **(recorded or {})}
    out = {k: given[k] if given.get(k) is not None else base[k] for k in DEFAULT_KEYS}
    if student and len(get_guidance(out["guidance_type"]).branches) != 1:
        raise ValueError(f"this model is guidance-distilled: it takes scale_pose/scale_app as an "
                         f"input and needs one branch per step, so guidance_type "
                         f"{out['guidance_type']!r} does not apply; use guidance_type='none' "
                         "(its default)")
    return out


def student_inputs(model: nn.Module, scales: GuidanceScales, batch: int) -> dict[str, Any]:
    """``{"timestep_cond": embedding of (w_pose, w_app)}`` for a student, ``{}`` for a teacher
    (the keyword arguments of its ``predict_noise``)."""
    embed = student_condition(model, scales.down, scales.full, batch)
    return {} if embed is None else {"timestep_cond": embed}


__all__ = ["DEFAULT_KEYS", "PAPER_DEFAULTS", "check_sampling_defaults", "lcm_scheduler",
           "resolve_defaults", "student_inputs"]
