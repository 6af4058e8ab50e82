"""The guidance-scale input of a guidance-distilled student (Meng et al., CVPR 2023, §3.1).

A distilled student predicts in ONE UNet evaluation what the teacher's cumulative guidance
(paper Eq. 7) makes of three: it sees the full conditions only and receives (w_pose, w_app) as
an embedding.  The embedding enters through diffusers' own door for it:
``UNet2DConditionModel(time_cond_proj_dim=D)`` adds ``cond_proj(timestep_cond)`` (a bias-free
linear layer) to the sinusoidal timestep features, so a zero ``cond_proj`` leaves the UNet
exactly the teacher's.  :func:`make_student` builds such a student from a teacher; a model is a
student iff its UNet config has ``time_cond_proj_dim`` (:func:`is_guidance_distilled`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from cfld.models.cfld import CFLDModel

#: Key of the new layer in a student's state dict (absent from the teacher's).
COND_PROJ_KEY = "unet.time_embedding.cond_proj.weight"


def is_guidance_distilled(model: nn.Module) -> bool:
    """Whether ``model`` (a CFLDModel) takes the guidance scales as an embedding."""
    unet = getattr(model, "unet", None)
    return getattr(getattr(unet, "config", None), "time_cond_proj_dim", None) is not None


def guidance_embedding(scale_pose: Tensor, scale_app: Tensor, dim: int) -> Tensor:
    """(B,) scales → (B, dim) features: sin/cos of each scale ×1000 at dim/4 frequencies
    (as timesteps are embedded; ×1000 puts the scale's useful range, ~0–10, on the frequencies
    a timestep uses), w_pose in the first half, w_app in the second.

    Raises:
        ValueError: ``dim`` is not a positive multiple of 4.
    """
    if dim < 4 or dim % 4:
        raise ValueError(f"the guidance embedding size must be a positive multiple of 4, got {dim}")
    quarter = dim // 4
    freqs = torch.exp(-math.log(10000.0) * torch.arange(quarter, dtype=torch.float32)
                      / max(quarter - 1, 1)).to(scale_pose.device)

    def features(w: Tensor) -> Tensor:
        angle = (w.float().reshape(-1, 1) * 1000.0) * freqs  # (B, dim/4)
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)  # (B, dim/2)

    return torch.cat([features(scale_pose), features(scale_app)], dim=1)  # (B, dim)


def student_condition(model: nn.Module, scale_pose: float | Tensor, scale_app: float | Tensor,
                      batch: int) -> Tensor | None:
    """The ``timestep_cond`` a student needs for a batch (None for a teacher)."""
    if not is_guidance_distilled(model):
        return None
    param = next(model.parameters())
    pose = torch.as_tensor(scale_pose, dtype=torch.float32).reshape(-1).expand(batch)
    app = torch.as_tensor(scale_app, dtype=torch.float32).reshape(-1).expand(batch)
    dim = int(model.unet.config.time_cond_proj_dim)
    return guidance_embedding(pose, app, dim).to(device=param.device, dtype=param.dtype)


def make_student(teacher: CFLDModel, embedding_dim: int = 64) -> CFLDModel:
    """A copy of ``teacher`` whose UNet also takes the guidance embedding, zero-initialised:
    at init the student's output is exactly the teacher's conditional branch ε(C, pose, A).

    Raises:
        ValueError: ``teacher`` is already a student, or ``embedding_dim`` is not valid.
    """
    if is_guidance_distilled(teacher):
        raise ValueError("the teacher is already guidance-distilled (its UNet has "
                         "time_cond_proj_dim); distil from the guided 50-step model")
    guidance_embedding(torch.zeros(1), torch.zeros(1), embedding_dim)  # validates the size
    config = {k: v for k, v in teacher.config.items() if not k.startswith("_")}
    config["unet_config"] = {**config["unet_config"], "time_cond_proj_dim": int(embedding_dim)}
    with torch.device("meta"):
        student = CFLDModel.from_config(config)
    # Cloned: the student trains, the teacher must not change with it.
    state = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
    missing, unexpected = student.load_state_dict(state, strict=False, assign=True)
    assert list(missing) == [COND_PROJ_KEY] and not unexpected, (missing, unexpected)
    proj = student.unet.time_embedding.cond_proj
    ref = next(teacher.parameters())
    proj.weight = nn.Parameter(torch.zeros(proj.weight.shape, dtype=ref.dtype, device=ref.device))
    student.source_encoder.reset_buffers()  # non-persistent buffers, as from_pretrained does
    return student.train(teacher.training)


__all__ = ["COND_PROJ_KEY", "guidance_embedding", "is_guidance_distilled", "make_student",
           "student_condition"]
