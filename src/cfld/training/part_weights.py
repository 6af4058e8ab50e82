"""Part-balanced loss weights: small body parts count more in the training loss.

Why (README, "The shipped small model"): with an area-weighted MSE the face, hands and shoes of
a procedural person are ~1–4 % of the pixels each, and the shipped model learned nothing about
their colour (its x0 error there equals painting them with the population's mean colour), while
the part-colour metric averages over parts with equal weight.  Weighting each pixel by
``area(part)^-β`` (β = ``part_balance``; 0 = the official equal weights, 1 = every present part
weighs the same in total) moves gradient towards the small parts.  The weights are normalised
to a mean of 1 per image, so the loss keeps its scale and β = 0 is bit for bit the official loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def part_balance_weights(labels: Tensor, beta: float, latent_hw: tuple[int, int]) -> Tensor:
    """Per-latent-cell loss weights from part-label maps.

    Args:
        labels: (N, H, W) integer part labels at the generation size (0 = background counts as
            a part too; any label set works).
        beta: exponent β in [0, 1]: a pixel of part l weighs ``area_l^-β``.
        latent_hw: (h, w) of the latents; H and W must be multiples of h and w.

    Returns:
        (N, 1, h, w) float32 weights with a mean of 1 per image (the pixel weights averaged over
        each latent cell's pixels).
    """
    if labels.dim() != 3 or labels.dtype.is_floating_point:
        raise ValueError(f"labels must be (N, H, W) integers, got {tuple(labels.shape)} "
                         f"{labels.dtype}")
    if not 0 <= beta <= 1:
        raise ValueError(f"part_balance must be in [0, 1] (e.g. 0.5; 0 = off), got {beta}")
    n, big_h, big_w = labels.shape
    h, w = latent_hw
    if big_h % h or big_w % w:
        raise ValueError(f"part maps {big_h}x{big_w} do not tile latents {h}x{w}")
    flat = labels.long().flatten(1)  # (N, H·W)
    num_labels = int(flat.max()) + 1
    counts = torch.zeros(n, num_labels, dtype=torch.float64, device=labels.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64))
    per_label = counts.clamp(min=1) ** -float(beta)  # (N, L); absent labels are never looked up
    pixel = per_label.gather(1, flat)  # (N, H·W)
    pixel = pixel / pixel.mean(1, keepdim=True)
    pixel = pixel.view(n, 1, big_h, big_w).float()
    return F.avg_pool2d(pixel, (big_h // h, big_w // w))  # (N, 1, h, w), mean still 1


def batch_loss_weight(batch: dict[str, Tensor], beta: float, latents: Tensor) -> Tensor | None:
    """The (2B, 1, h, w) weights of a training micro-batch, ordered like its latents
    ``[reconstruction; transfer]``; None when ``beta`` is 0 (the official equal weights)."""
    if not beta:
        return None
    labels = torch.cat([batch["parts_src"], batch["parts_tgt"]]).to(latents.device)
    return part_balance_weights(labels, beta, (latents.shape[-2], latents.shape[-1]))
