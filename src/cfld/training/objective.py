"""The training objective of CFLD (paper §3.4, Eq. 5–6; official code fidelity §6.1).

Each batch of B pairs becomes 2B UNet samples ``[reconstruction; transfer]``: the first half
denoises the source image under the source pose (L_rec), the second half the target image under
the target pose (L_mse).  Both halves share the prompt and biases computed from the source.
The official loss is the mean squared ε error over all 2B samples, i.e. (L_rec + L_mse)/2.

Classifier-free dropout (η = 20 %):

* ``official`` (default): only the prompt is replaced by the learnable unconditional prompt,
  independently per sample; pose maps and biases are never dropped (fidelity §6.1, §12.1).
* ``paper``: the paper's joint dropout — dropped samples lose the source (learnable prompt AND
  zero biases) and the target pose (zero pose maps), the states the sampler's unconditional
  branch actually uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from cfld.models.cfld import CFLDConditions, CFLDModel

DROPOUT_MODES = ("official", "paper")


def cubic_timesteps(u: Tensor, num_train_timesteps: int = 1000) -> Tensor:
    """Cubic timestep sampling t = ⌊T·(1 − u³)⌋ ∈ [0, T−1], u ~ U[0, 1) (fidelity §6.1 step 3).

    Heavily biased toward high noise: P(t ≥ 900) ≈ 0.46 for T = 1000.
    """
    t = ((1 - u**3) * num_train_timesteps).long()
    return t.clamp(0, num_train_timesteps - 1)


def uniform_timesteps(u: Tensor, num_train_timesteps: int = 1000) -> Tensor:
    """Uniform integer timesteps t = ⌊T·u⌋ ∈ [0, T−1] (CUBIC_SAMPLING=False)."""
    return (u * num_train_timesteps).long().clamp(0, num_train_timesteps - 1)


TIMESTEP_SAMPLERS = {"cubic": cubic_timesteps, "uniform": uniform_timesteps}


def sample_timesteps(u: Tensor, num_train_timesteps: int = 1000, sampling: str = "cubic",
                     low_noise_fraction: float = 0.0, low_noise_max_t: int = 100) -> Tensor:
    """Timesteps from uniform draws ``u``: the base sampler, optionally mixed with low noise.

    A draw u < f (f = ``low_noise_fraction``) becomes t = ⌊u/f · t_max⌋, uniform on
    [0, t_max); the others are rescaled to [0, 1) and go through the base sampler.  Each t stays
    a deterministic function of its own draw, so exact resume is unaffected, and f = 0 is the
    base sampler bit for bit.  Why: a small model trained from scratch learns the low-noise
    steps (which draw the edges) last; its x0 error at t ≈ 1 stays far above the noise it is
    given (README, "The shipped small model").
    """
    if sampling not in TIMESTEP_SAMPLERS:
        raise ValueError(f"timestep_sampling must be one of {sorted(TIMESTEP_SAMPLERS)}, "
                         f"got {sampling!r}")
    base = TIMESTEP_SAMPLERS[sampling]
    f = float(low_noise_fraction)
    if f <= 0:
        return base(u, num_train_timesteps)
    if not (f < 1 and 1 <= low_noise_max_t <= num_train_timesteps):
        raise ValueError(f"need 0 <= low_noise_fraction < 1 and 1 <= low_noise_max_t <= "
                         f"{num_train_timesteps}, got {f} and {low_noise_max_t}")
    low = (u / f * low_noise_max_t).long().clamp(0, low_noise_max_t - 1)
    high = base(((u - f) / (1 - f)).clamp(0, 1), num_train_timesteps)
    return torch.where(u < f, low, high)


@dataclass
class TrainingOutput:
    """Result of one training forward pass."""

    loss: Tensor
    noise_pred: Tensor
    noisy_latents: Tensor
    timesteps: Tensor
    conditions: CFLDConditions


def training_conditions(model: CFLDModel, img_cond: Tensor, pose_src: Tensor, pose_tgt: Tensor,
                        drop_mask: Tensor, dropout: str = "official") -> CFLDConditions:
    """Conditions of the 2B samples [reconstruction; transfer] with classifier-free dropout.

    Args:
        model: The CFLD network.
        img_cond: Source images (B, 3, S, S) in [-1, 1] (possibly flipped).
        pose_src: Source pose maps (B, 21, H, W) — the reconstruction half.
        pose_tgt: Target pose maps (B, 21, H, W) — the transfer half.
        drop_mask: (2B,) booleans, True = drop the condition of that sample.
        dropout: ``official`` or ``paper`` (see module docstring).
    """
    if dropout not in DROPOUT_MODES:
        raise ValueError(f"dropout must be one of {DROPOUT_MODES}, got {dropout!r}")
    prompt, biases = model.encode_source(img_cond)
    # The source conditions are computed once for B sources and shared by both halves.
    prompt = torch.cat([prompt, prompt])
    biases = {k: torch.cat([v, v]) for k, v in biases.items()}
    pose = model.encode_pose(torch.cat([pose_src, pose_tgt]))
    keep = (~drop_mask).to(prompt.dtype)
    # Official mixing formula: learnable · mask + c · (1 − mask) (fp-exact for 0/1 masks).
    mask3 = (1 - keep).view(-1, 1, 1)
    prompt = model.uncond_prompt.to(prompt.dtype) * mask3 + prompt * (1 - mask3)
    if dropout == "paper":
        keep4 = keep.view(-1, 1, 1, 1)
        pose = tuple(p * keep4.to(p.dtype) for p in pose)
        biases = {k: v * keep.view(-1, 1, 1).to(v.dtype) for k, v in biases.items()}
    return CFLDConditions(prompt, pose, biases)


def training_step_loss(
    model: CFLDModel,
    noise_scheduler,
    latents: Tensor,
    noise: Tensor,
    img_cond: Tensor,
    pose_src: Tensor,
    pose_tgt: Tensor,
    timestep_u: Tensor,
    drop_u: Tensor,
    drop_prob: float = 0.2,
    dropout: str = "official",
    timestep_sampling: str = "cubic",
    snr_gamma: float | None = None,
    low_noise_fraction: float = 0.0,
    low_noise_max_t: int = 100,
    loss_weight: Tensor | None = None,
) -> TrainingOutput:
    """ε-MSE loss of one batch (fidelity §6.1), with every random draw passed in.

    Args:
        model: The CFLD network (in train mode).
        noise_scheduler: A diffusers scheduler with ``add_noise`` (DDPM, official betas).
        latents: Clean latents (2B, 4, h, w) = [source images; target images].
        noise: ε (2B, 4, h, w).
        img_cond, pose_src, pose_tgt: See :func:`training_conditions`.
        timestep_u: (2B,) uniform draws for :func:`cubic_timesteps`.
        drop_u: (2B,) uniform draws; a sample's condition is dropped when < ``drop_prob``.
        drop_prob: η (0.2).
        dropout: ``official`` or ``paper``.
        timestep_sampling: ``cubic`` (official) or ``uniform``.
        snr_gamma: Min-SNR-γ loss weighting (Hang et al., 2023) instead of equal weights: each
            sample's MSE is scaled so that its weight in x0 space is min(SNR_t, γ) (official:
            ``None``, equal ε weights).
        low_noise_fraction, low_noise_max_t: share of samples whose t is drawn uniformly from
            [0, low_noise_max_t) instead (:func:`sample_timesteps`; official: 0).
        loss_weight: (2B, 1, h, w) per-cell weights of the squared error, e.g. part-balanced
            (:func:`cfld.training.part_weights.part_balance_weights`); None = equal (official).
    """
    num_train = noise_scheduler.config.num_train_timesteps
    timesteps = sample_timesteps(timestep_u, num_train, timestep_sampling, low_noise_fraction,
                                 low_noise_max_t).to(latents.device)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)  # Eq. (1)
    cond = training_conditions(model, img_cond, pose_src, pose_tgt,
                               drop_u.flatten() < drop_prob, dropout)
    pred = model.predict_noise(noisy, timesteps, cond)
    # The regression target follows the scheduler's parameterisation: ε (official, Eq. 5–6), the
    # clean latent ("sample") or v — the latter two for models trained from scratch.
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        target = noise
    elif kind == "sample":
        target = latents
    elif kind == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(f"unsupported prediction_type {kind!r}: use epsilon, sample or "
                         "v_prediction")
    sq = (target.float() - pred.float()) ** 2
    if loss_weight is not None:
        sq = sq * loss_weight.to(sq.dtype)  # broadcast over the latent channels
    if snr_gamma is None:
        loss = torch.mean(sq)  # Eq. (5)+(6), equal weights / 2
    else:
        from diffusers.training_utils import compute_snr

        # An MSE on ε weighs the x0 error by SNR, on v by SNR+1, on x0 by 1; min-SNR-γ caps the
        # x0-space weight at γ so no noise level dominates the gradient.
        snr = compute_snr(noise_scheduler, timesteps)  # (2B,)
        x0_weight = {"epsilon": snr, "sample": torch.ones_like(snr), "v_prediction": snr + 1}[kind]
        weight = snr.clamp(max=snr_gamma) / x0_weight  # (2B,)
        per_sample = sq.flatten(1).mean(1)
        loss = torch.mean(weight * per_sample)
    return TrainingOutput(loss, pred, noisy, timesteps, cond)
