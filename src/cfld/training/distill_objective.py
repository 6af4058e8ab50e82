"""The distillation objectives of ``cfld distill``: a one-branch student learns the teacher's
guided (paper Eq. 7) sampler.

* ``guidance`` — Meng et al., CVPR 2023 ("On distillation of guided diffusion models"), stage 1:
  at the same (z_t, t) the student's output with the full conditions and the scales as input,
  s_η(z_t, t, c, w), regresses onto the teacher's guided prediction of Eq. 7 (3 branches).
* ``lcd`` — latent consistency distillation (Luo et al., 2023, "Latent Consistency Models",
  Alg. 1, with guidance as in its Eq. 9): on the teacher's DDIM grid t_n = (n+1)·k − 1, the
  teacher's guided prediction takes one DDIM step z_{t_{n+1}} → ẑ_{t_n}; the student's
  consistency output f(z, t) = c_skip(t)·z + c_out(t)·x̂0(z, t) (diffusers' ``LCMScheduler``
  scalings, so training and sampling agree) must be equal at both points.  The target side
  is an EMA θ⁻ of the student's UNet (``ema``: :class:`~cfld.training.ema_target.EMATarget`,
  μ = 0.95 as in LCM), or with ``ema_decay`` 0 the student itself under stop-gradient (Song &
  Dhariwal 2023, §3.2), which drifted and collapsed on our models.

The teacher's guided prediction comes from the pipeline's own guidance code
(:func:`cfld.pipelines.guidance.branch_conditions` and the guidance type's ``combine``), so
it is the formula the 50-step sampler uses.  The student's conditions are the teacher's
(the encoders are not trained: the student is the teacher's conditioning stack + its UNet).

The module's forward takes the trainer's arguments (:func:`cfld.training.loop.run_phases`):
the 2B rows [reconstruction; transfer], their noise and two uniform draws per row — the
timestep draw picks t (``lcd``: the grid index n), the other draw's 24 random bits give the two
scales (the high 12 bits w_pose, the low 12 bits w_app; ``torch.rand`` makes a float32 from 24
random bits, so the two are independent and uniform on 4096 levels).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from cfld.models.cfld import CFLDConditions, CFLDModel
from cfld.models.guidance_embedding import guidance_embedding
from cfld.pipelines.guidance import GuidanceScales, branch_conditions, get_guidance
from cfld.training.ema_target import EMATarget


def split_uniform(u: Tensor) -> tuple[Tensor, Tensor]:
    """One U[0, 1) float32 draw → two independent uniforms on 4096 levels (+ half a level)."""
    bits = (u.double() * 2**24).long().clamp(0, 2**24 - 1)  # the draw's 24 random bits
    return ((bits >> 12).double() + 0.5) / 4096, ((bits & 4095).double() + 0.5) / 4096


def to_x0_eps(pred: Tensor, z: Tensor, alpha_bar: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    """(x̂0, ε̂) of a prediction of type ``kind`` at z_t with ᾱ_t (B, 1, 1, 1)."""
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    if kind == "epsilon":
        return (z - s * pred) / a, pred
    if kind == "sample":
        return pred, (z - a * pred) / s
    if kind == "v_prediction":
        x0 = a * z - s * pred
        return x0, s * z + a * pred
    raise ValueError(f"unsupported prediction_type {kind!r}: use epsilon, sample or v_prediction")


def teacher_guided(teacher: CFLDModel, z: Tensor, t: Tensor, cond: CFLDConditions,
                   w_pose: Tensor, w_app: Tensor, guidance_type: str = "uc_down_full") -> Tensor:
    """The teacher's Eq. 7 prediction at (z_t, t) with per-sample scales, all branches in one
    batched call (the sampler's code path: ``branch_conditions`` + ``combine``)."""
    guidance = get_guidance(guidance_type)
    n = len(guidance.branches)
    branched = branch_conditions(guidance, cond, teacher.uncond_prompt)
    out = teacher.predict_noise(torch.cat([z] * n), torch.cat([t] * n), branched)
    shape = (-1, 1, 1, 1)
    scales = GuidanceScales(full=w_app.view(shape), down=w_pose.view(shape),  # type: ignore[arg-type]
                            all=w_app.view(shape), cond=w_app.view(shape))  # type: ignore[arg-type]
    return guidance.combine(out.float().chunk(n), scales)


class DistillLoss(nn.Module):
    """Student + frozen teacher; ``forward`` returns the distillation loss of a micro-batch.

    Args:
        student: The CFLD student (its ``unet`` trains); the checkpointed ``model``.
        teacher: The guided teacher (frozen, eval mode).
        lcm: The student's ``LCMScheduler`` (noise schedule and boundary scalings).
        objective: ``lcd`` or ``guidance``.
        solver_steps: DDIM grid size of ``lcd``.
        scale_pose_range, scale_app_range: Where w_pose, w_app are drawn.
        loss: ``l2`` or ``huber``; huber_c: its c.
    """

    def __init__(self, student: CFLDModel, teacher: CFLDModel, lcm: Any, objective: str = "lcd",
                 solver_steps: int = 50, scale_pose_range: tuple[float, float] = (1.0, 3.0),
                 scale_app_range: tuple[float, float] = (1.0, 3.0), loss: str = "l2",
                 huber_c: float = 0.001) -> None:
        super().__init__()
        self.model = student
        self.teacher = teacher.eval().requires_grad_(False)
        self.lcm, self.objective, self.solver_steps = lcm, objective, int(solver_steps)
        self.ranges = (tuple(scale_pose_range), tuple(scale_app_range))
        self.loss_kind, self.huber_c = loss, float(huber_c)
        self.kind = lcm.config.prediction_type
        self.register_buffer("alphas", lcm.alphas_cumprod.clone().float(), persistent=False)
        self.ema: EMATarget | None = None  # set by cfld.training.distill after device placement
        self.train()

    def train(self, mode: bool = True) -> DistillLoss:
        super().train(mode)
        self.teacher.eval()  # the teacher never leaves eval mode
        for name, child in self.model.named_children():
            if name != "unet":  # the frozen conditioning stack: no dropout in the sample grids
                child.eval()
        return self

    def conditions(self, img_cond: Tensor, pose_src: Tensor, pose_tgt: Tensor) -> CFLDConditions:
        """Full conditions of the 2B rows, from the (frozen) teacher's encoders."""
        with torch.no_grad():
            prompt, biases = self.teacher.encode_source(img_cond)
            pose = self.teacher.encode_pose(torch.cat([pose_src, pose_tgt]))
        return CFLDConditions(torch.cat([prompt, prompt]), pose,
                              {k: torch.cat([v, v]) for k, v in biases.items()})

    def scales(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """(w_pose, w_app) of each row from its uniform draw."""
        a, b = split_uniform(u)
        (p0, p1), (a0, a1) = self.ranges
        return (p0 + (p1 - p0) * a).float(), (a0 + (a1 - a0) * b).float()

    def consistency(self, pred: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """f(z, t) = c_skip(t)·z + c_out(t)·x̂0 (LCMScheduler's boundary condition)."""
        c_skip, c_out = self.lcm.get_scalings_for_boundary_condition_discrete(t.float())
        x0, _ = to_x0_eps(pred.float(), z, self.alphas[t].view(-1, 1, 1, 1), self.kind)
        return c_skip.view(-1, 1, 1, 1) * z + c_out.view(-1, 1, 1, 1) * x0

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        """Mean l2 or pseudo-Huber distance."""
        d2 = (a.float() - b.float()) ** 2
        if self.loss_kind == "huber":
            return torch.mean(torch.sqrt(d2 + self.huber_c**2) - self.huber_c)
        return torch.mean(d2)

    def forward(self, latents: Tensor, noise: Tensor, img_cond: Tensor, pose_src: Tensor,
                pose_tgt: Tensor, timestep_u: Tensor, drop_u: Tensor) -> Tensor:
        cond = self.conditions(img_cond, pose_src, pose_tgt)
        w_pose, w_app = self.scales(drop_u.flatten().to(latents.device))
        embed = guidance_embedding(w_pose, w_app, self.model.unet.config.time_cond_proj_dim)
        embed = embed.to(latents.dtype)
        num_train = int(self.alphas.numel())
        if self.objective == "guidance":
            t = (timestep_u.flatten() * num_train).long().clamp(0, num_train - 1)
        else:  # the grid t_n = (n+1)·k − 1 of LCMScheduler (k = T / solver_steps)
            k = num_train // self.solver_steps
            n = (timestep_u.flatten() * self.solver_steps).long().clamp(0, self.solver_steps - 1)
            t = (n + 1) * k - 1
        t = t.to(latents.device)
        a_t = self.alphas[t].view(-1, 1, 1, 1)
        z_t = a_t.sqrt() * latents + (1 - a_t).sqrt() * noise  # Eq. (1)
        with torch.no_grad():
            guided = teacher_guided(self.teacher, z_t, t, cond, w_pose, w_app)
        pred = self.model.predict_noise(z_t, t, cond, timestep_cond=embed)
        if self.objective == "guidance":
            return self.distance(pred, guided)
        s = (t - k).clamp(min=0)
        target_net = self.ema.in_place_of(self.model) if self.ema else nullcontext(self.model)
        with torch.no_grad(), target_net as net:
            x0, eps = to_x0_eps(guided, z_t, a_t, self.kind)
            a_s = self.alphas[s].view(-1, 1, 1, 1)
            z_s = a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps  # one DDIM step of the guided teacher
            target = self.consistency(net.predict_noise(z_s, s, cond, embed), z_s, s)
        return self.distance(self.consistency(pred, z_t, t), target)


__all__ = ["DistillLoss", "split_uniform", "teacher_guided", "to_x0_eps"]
