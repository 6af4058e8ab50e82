"""A pipeline folder's own sampling defaults, and how a guidance-distilled student samples.

A distilled folder (``cfld distill``) records in ``model_index.json``::

    "sampling_defaults": {"num_inference_steps": 4, "guidance_type": "none",
                          "scale_pose": 2.0, "scale_app": 2.0}

and its ``scheduler/`` is diffusers' ``LCMScheduler``, so ``pipe(source, pose)`` samples as it
was distilled.  A student (:func:`~cfld.models.guidance_embedding.is_guidance_distilled`)
evaluates ONE branch per step, the full conditions ε(C, pose, A) (guidance type ``none``), and
receives (w_pose, w_app) of Eq. 7 through its guidance embedding instead of extra branches.
Without recorded defaults a teacher keeps the paper's: 50 steps, ``uc_down_full``, w = 2.
:func:`resolve_sampling` is the one rule by which every command and the app pick the scheduler
and these values (a flag given > the folder's own > the paper's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


def has_own_defaults(pipe: Any) -> bool:
    """Whether ``pipe`` samples with its folder's own scheduler and ``sampling_defaults`` (a
    distilled folder) rather than the paper's 50 DDPM steps."""
    return (pipe.config.get("sampling_defaults") is not None
            or is_guidance_distilled(pipe.model))


def scheduler_default_steps(name: str) -> int:
    """Steps when a scheduler is named and no step count: 50 for the stochastic samplers (the
    paper's DDPM), 20 for the deterministic/multistep solvers."""
    return 50 if name in ("ddpm", "euler_a") else 20


@dataclass(frozen=True)
class Sampling:
    """How a command or the app samples a pipeline (:func:`resolve_sampling`).

    Attributes:
        scheduler: A name of :data:`cfld.pipelines.schedulers.SCHEDULERS`, or None: keep the
            pipeline's own scheduler (a distilled folder's ``LCMScheduler``).
        scheduler_label: What the sampler is, for messages (``ddpm``, ``LCMScheduler``).
    """

    scheduler: str | None
    scheduler_label: str
    num_inference_steps: int
    guidance_type: str
    scale_pose: float
    scale_app: float

    def call_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of every pipeline call."""
        return {"num_inference_steps": self.num_inference_steps,
                "guidance_type": self.guidance_type, "scale_pose": self.scale_pose,
                "scale_app": self.scale_app}

    def apply(self, pipe: Any, base: Any = None) -> None:
        """Set ``pipe.scheduler`` to the named scheduler built on ``base``'s config (default:
        the pipeline's own), or back to ``base`` when no name was resolved."""
        from cfld.pipelines.schedulers import make_scheduler

        base = pipe.scheduler if base is None else base
        pipe.scheduler = base if self.scheduler is None else make_scheduler(self.scheduler, base)


def resolve_sampling(pipe: Any, scheduler: str | None = None,
                     num_inference_steps: int | None = None, guidance_type: str | None = None,
                     scale_pose: float | None = None, scale_app: float | None = None,
                     fallback: Mapping[str, Any] | None = None) -> Sampling:
    """The sampler of every command and the app: what is given (not None) > the folder's own
    (its scheduler and ``sampling_defaults``, :func:`has_own_defaults`) > ``fallback`` (default:
    the paper's ``{"scheduler": "ddpm", "steps": 50}``; `cfld demo` passes its own setting).

    A named scheduler without a step count gets ``fallback["steps"]`` if set, else
    :func:`scheduler_default_steps`: a folder's recorded steps belong to its recorded scheduler.

    Raises:
        ValueError: a guidance-distilled model given a guidance type with several branches, or
            an unknown scheduler/guidance name.
    """
    from cfld.pipelines.schedulers import SCHEDULERS

    if scheduler is not None and scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {sorted(SCHEDULERS)}")
    if (guidance_type is not None and is_guidance_distilled(pipe.model)
            and len(get_guidance(guidance_type).branches) != 1):
        raise ValueError(
            f"this model is guidance-distilled (one UNet evaluation per step, w_pose/w_app as "
            f"an input): guidance type {guidance_type!r} evaluates "
            f"{len(get_guidance(guidance_type).branches)} branches and does not apply; leave "
            "the guidance type at its default (none) for this model")
    own = has_own_defaults(pipe)
    fallback = {"scheduler": "ddpm", "steps": None, **(fallback or {})}
    d = resolve_defaults(pipe.model, pipe.config.get("sampling_defaults"),
                         guidance_type=guidance_type, scale_pose=scale_pose, scale_app=scale_app)
    name = scheduler if scheduler is not None else (None if own else fallback["scheduler"])
    if num_inference_steps is not None:
        steps = int(STEPS.check(num_inference_steps))
    elif scheduler is not None:  # the recorded steps belong to the recorded scheduler
        steps = int(fallback["steps"] or scheduler_default_steps(scheduler))
    elif own:
        steps = d["num_inference_steps"]
    else:
        steps = int(fallback["steps"] or scheduler_default_steps(name))
    label = name if name is not None else type(pipe.scheduler).__name__
    return Sampling(name, label, steps, d["guidance_type"], float(d["scale_pose"]),
                    float(d["scale_app"]))


__all__ = ["DEFAULT_KEYS", "PAPER_DEFAULTS", "Sampling", "check_sampling_defaults",
           "has_own_defaults", "lcm_scheduler", "resolve_defaults", "resolve_sampling",
           "scheduler_default_steps", "student_inputs"]
