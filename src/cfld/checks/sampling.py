"""The arguments of a generation (a pipeline call, the CLI's sampling flags, the app's settings
panel), checked by one function before any work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cfld.checks.numbers import ETA, GUIDANCE_SCALE, MAX_OUTPUT_SIDE, STEPS


def check_output_size(output_size: Sequence[int] | None, keep_square: bool = False
                      ) -> tuple[int, int] | None:
    """``(H, W)`` of the returned images, or None for the default.

    Raises:
        ValueError: Not two positive integers, a side above :data:`MAX_OUTPUT_SIDE`, or given
            together with ``keep_square`` (which returns the generated size instead).
    """
    if output_size is None:
        return None
    from cfld.sizes import parse_size

    size = parse_size(output_size, max_side=MAX_OUTPUT_SIDE)
    if keep_square:
        raise ValueError(f"output_size {size[0]}x{size[1]} and keep_square contradict each other "
                         "(keep_square returns the generated square image); give one of them")
    return size


def check_sampling(num_inference_steps: Any = 50, scale_pose: Any = 2.0, scale_app: Any = 2.0,
                   guidance_scale: Any = None, guidance_scales: Any = None, eta: Any = 0.0,
                   output_size: Any = None, keep_square: bool = False,
                   generator: Any = None) -> dict[str, Any]:
    """Every numeric argument of :meth:`cfld.CFLDPipeline.__call__`, checked.

    Returns:
        The checked values by name (``num_inference_steps`` an int, scales floats, the output
        size a tuple or None).

    Raises:
        ValueError: The first bad argument, named, with its valid range.
    """
    out: dict[str, Any] = {
        "num_inference_steps": STEPS.check(num_inference_steps),
        "scale_pose": GUIDANCE_SCALE.check(scale_pose, "scale_pose"),
        "scale_app": GUIDANCE_SCALE.check(scale_app, "scale_app"),
        "guidance_scale": GUIDANCE_SCALE.check_optional(guidance_scale, "guidance_scale"),
        "eta": ETA.check(eta),
        "output_size": check_output_size(output_size, bool(keep_square)),
    }
    check_generator(generator)
    if isinstance(guidance_scales, Mapping):
        for name, value in guidance_scales.items():
            GUIDANCE_SCALE.check(value, f"guidance_scales[{name!r}]")
    elif guidance_scales is not None and hasattr(guidance_scales, "__dict__"):
        for name, value in vars(guidance_scales).items():
            GUIDANCE_SCALE.check(value, f"guidance_scales.{name}")
    return out


def check_generator(generator: Any) -> None:
    """None, a ``torch.Generator`` or a list of them (one per image); else a ValueError (a
    seed given as ``generator=7`` would otherwise fail deep inside the noise sampling)."""
    if generator is None:
        return
    import torch

    items = generator if isinstance(generator, (list, tuple)) else [generator]
    bad = [g for g in items if not isinstance(g, torch.Generator)]
    if bad or not items:
        got = "an empty list" if not items else f"{type(bad[0]).__name__} {bad[0]!r:.40}"
        raise ValueError(f"generator must be a torch.Generator or a list of them (one per "
                         f"image), got {got}; e.g. generator=torch.Generator().manual_seed(7)")


_SAMPLING_KEYS = ("scale_pose", "scale_app", "guidance_scale", "guidance_scales", "eta",
                  "output_size", "keep_square", "generator")


def check_call_kwargs(num_inference_steps: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`check_sampling` on the pipeline keyword arguments a helper (animate, interpolate,
    style transfer) passes through, before its first generation."""
    return check_sampling(num_inference_steps,
                          **{k: v for k, v in kwargs.items() if k in _SAMPLING_KEYS})


__all__ = ["check_call_kwargs", "check_generator", "check_output_size", "check_sampling"]
