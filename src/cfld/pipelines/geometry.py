"""Output geometry of the authors' protocol: sizes, the resize back to the evaluation size and
the 8-bit quantisation (fidelity §7.5).  Used by the pipeline, the evaluation and the trainer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin
from torch import Tensor

#: DeepFashion's aspect (W/H) that the authors' 512² squashed outputs are resized back to.
DEEPFASHION_ASPECT = 176 / 256


def autoencoder_factor(vae: ConfigMixin | None) -> int:
    """Spatial reduction of an autoencoder: the pixel autoencoder's factor, 2^(levels−1) for a
    KL-VAE (8 for SD's), 8 when there is none."""
    if vae is None:
        return 8
    cfg = vae.config
    if "factor" in cfg:
        return int(cfg["factor"])
    return 2 ** (len(cfg["block_out_channels"]) - 1)


def default_output_size(image_size: Sequence[int]) -> tuple[int, int]:
    """The evaluation size of a square generation: half its height at DeepFashion's aspect
    (256×176 for the authors' 512²)."""
    h = int(image_size[0]) // 2
    return h, int(round(h * DEEPFASHION_ASPECT))


def resize_output(images: Tensor, size: Sequence[int]) -> Tensor:
    """Resize generated images in [0, 1] to the evaluation size as the authors do (fidelity
    §7.5): torch bicubic with antialias (a squashed square output gets back its aspect)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=tuple(size), mode="bicubic", antialias=True,
                         align_corners=False).clamp(0, 1)


def quantize(images: Tensor) -> Tensor:
    """×255, clamp, truncate to uint8 (the authors' quantisation, fidelity §7.5) → uint8."""
    return (images * 255).clamp(0, 255).to(torch.uint8)


def quantise_generated(img: Tensor, size: Sequence[int]) -> tuple[Tensor, bool]:
    """One generated image (3, h, w) in [0, 1] at the evaluation size, as the authors score it.

    Returns:
        ``((3, H, W) image, resized?)``.  A resized image goes through :func:`resize_output`
        and :func:`quantize` (truncation) and back to [0, 1]; an image already at ``size`` is
        returned unchanged (it is already 8-bit, and re-truncating ``u/255*255`` could drop a
        level to float rounding).
    """
    if tuple(img.shape[-2:]) == tuple(size):
        return img, False
    return quantize(resize_output(img[None].float(), size))[0].float() / 255, True


__all__ = ["DEEPFASHION_ASPECT", "autoencoder_factor", "default_output_size", "quantise_generated",
           "quantize", "resize_output"]
