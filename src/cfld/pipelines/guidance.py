"""Cumulative classifier-free guidance of CFLD (paper Eq. 7; fidelity §7.3).

A guidance type is a list of *branches* — which conditions one copy of z_t sees — and a
combination of their noise predictions.  All branches of a step run in ONE batched UNet call.

Notation: P = learnable unconditional prompt, C = coarse prompt from H_D, pose = pose-adapter
maps, A = appearance biases; an absent pose/bias is zeros.  The default ``uc_down_full`` is
Eq. (7) with w_pose = w_app = 2::

    ε = ε(P,∅,∅) + w_pose·(ε(P,pose,∅) − ε(P,∅,∅)) + w_app·(ε(C,pose,A) − ε(P,pose,∅))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor

from cfld.models.cfld import CFLDConditions


@dataclass(frozen=True)
class Branch:
    """One copy of z_t in the batched call."""

    conditional_prompt: bool  # C (True) or the learnable prompt P (False)
    pose: bool
    appearance: bool


@dataclass(frozen=True)
class GuidanceScales:
    """The official scale names (all 2.0 by default, fidelity §7.3).

    Attributes:
        full: s_full (``FULL_GUIDANCE_SCALE``) — w_app of Eq. (7) in ``uc_down_full``.
        down: s_down (``DOWN_BLOCK_GUIDANCE_SCALE``) — w_pose of Eq. (7).
        all: s_all (``ALL_BLOCK_GUIDANCE_SCALE``).
        cond: s_g (``GUIDANCE_SCALE``).
    """

    full: float = 2.0
    down: float = 2.0
    all: float = 2.0
    cond: float = 2.0


Combine = Callable[[Sequence[Tensor], GuidanceScales], Tensor]


@dataclass(frozen=True)
class GuidanceType:
    """Branches and how their predictions combine."""

    name: str
    branches: tuple[Branch, ...]
    combine: Combine
    description: str


_UC = Branch(False, False, False)  # (P, 0, 0)
_DOWN = Branch(False, True, False)  # (P, pose, 0)
_UPDOWN = Branch(False, True, True)  # (P, pose, A)
_CDOWN = Branch(True, True, False)  # (C, pose, 0)
_FULL = Branch(True, True, True)  # (C, pose, A)

# The operation order of each formula is the official one, so float results match bit-for-bit
# up to the UNet's own rounding.
GUIDANCE_TYPES: dict[str, GuidanceType] = {
    g.name: g
    for g in (
        GuidanceType("uc_full", (_UC, _FULL),
                     lambda e, s: e[0] + s.full * (e[1] - e[0]),
                     "ε_uc + s_full(ε_full − ε_uc)"),
        GuidanceType("updown_full", (_UPDOWN, _FULL),
                     lambda e, s: e[0] + s.full * (e[1] - e[0]),
                     "ε_ud + s_full(ε_full − ε_ud)"),
        GuidanceType("down_full", (_DOWN, _FULL),
                     lambda e, s: e[0] + s.full * (e[1] - e[0]),
                     "ε_down + s_full(ε_full − ε_down)"),
        GuidanceType("uc_down_full", (_UC, _DOWN, _FULL),
                     lambda e, s: e[0] + s.down * (e[1] - e[0]) + s.full * (e[2] - e[1]),
                     "Eq. (7): ε_uc + s_down(ε_down − ε_uc) + s_full(ε_full − ε_down)"),
        GuidanceType("uc_down_updown_cdown", (_UC, _DOWN, _UPDOWN, _CDOWN),
                     lambda e, s: (e[0] + s.down * (e[1] - e[0]) + s.all * (e[2] - e[1])
                                   + s.cond * (e[3] - e[1])),
                     "ε_uc + s_down(ε_down − ε_uc) + s_all(ε_ud − ε_down) + s_g(ε_cd − ε_down)"),
        GuidanceType("uc_down_updown_full", (_UC, _DOWN, _UPDOWN, _FULL),
                     lambda e, s: (e[0] + s.down * (e[1] - e[0]) + s.all * (e[2] - e[1])
                                   + s.full * (e[3] - e[2])),
                     "ε_uc + s_down(ε_down − ε_uc) + s_all(ε_ud − ε_down) + s_full(ε_full − ε_ud)"),
        GuidanceType("none", (_FULL,), lambda e, s: e[0],
                     "no guidance: ε(C, pose, A) only (one UNet sample per image)"),
    )
}


def get_guidance(name: str) -> GuidanceType:
    """Look up a guidance type by name."""
    if name not in GUIDANCE_TYPES:
        raise ValueError(f"unknown guidance type {name!r}; choose one of {sorted(GUIDANCE_TYPES)}")
    return GUIDANCE_TYPES[name]


def branch_conditions(guidance: GuidanceType, cond: CFLDConditions,
                      uncond_prompt: Tensor) -> CFLDConditions:
    """Batch the conditions of every branch: (n_branches·B, ...) in branch order."""
    batch = cond.batch_size
    prompt_p = uncond_prompt.to(cond.prompt.dtype).expand(batch, -1, -1)
    parts = []
    for br in guidance.branches:
        c = cond.with_prompt(cond.prompt if br.conditional_prompt else prompt_p)
        if not br.pose:
            c = c.without_pose()
        if not br.appearance:
            c = c.without_appearance()
        parts.append(c)
    return CFLDConditions.cat(parts)


def resolve_scales(scale_pose: float, scale_app: float, guidance_scale: float | None,
            guidance_scales: GuidanceScales | dict[str, float] | None) -> GuidanceScales:
    """The scales of a ``__call__`` (``guidance_scales`` > ``guidance_scale`` > pose/app)."""
    if isinstance(guidance_scales, GuidanceScales):
        return guidance_scales
    if guidance_scale is not None:
        base = GuidanceScales(guidance_scale, guidance_scale, guidance_scale, guidance_scale)
    else:
        base = GuidanceScales(full=scale_app, down=scale_pose)
    if guidance_scales:
        unknown = set(guidance_scales) - {"full", "down", "all", "cond"}
        if unknown:
            raise ValueError(f"unknown guidance scale(s) {sorted(unknown)}; use full, down, all, "
                             "cond")
        base = GuidanceScales(**{**base.__dict__, **guidance_scales})
    return base
