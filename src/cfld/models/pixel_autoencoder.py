"""A parameter-free, exactly invertible "autoencoder" for pixel-space diffusion.

The paper runs diffusion in the latent space of the SD-1.5 VAE.  Our small shipped model is
trained on procedural people where a learned VAE would cost extra CPU training and add
reconstruction error, so it diffuses in *pixel space*: an image (B, 3, H, W) in [-1, 1] is
pixel-unshuffled into a (B, 3·f², H/f, W/f) "latent".  The interface mimics diffusers'
``AutoencoderKL`` (``encode(x).latent_dist.sample()``, ``decode(z).sample``,
``config.scaling_factor``) so the pipeline and trainer treat both the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn


@dataclass
class _Deterministic:
    """Stands in for a diagonal Gaussian with zero variance."""

    mean: Tensor

    def sample(self, generator: torch.Generator | None = None) -> Tensor:  # noqa: ARG002
        return self.mean

    def mode(self) -> Tensor:
        return self.mean


@dataclass
class EncoderOutput:
    """``encode`` result, shaped like diffusers' ``AutoencoderKLOutput``."""

    latent_dist: _Deterministic


@dataclass
class DecoderOutput:
    """``decode`` result, shaped like diffusers' ``DecoderOutput``."""

    sample: Tensor


class PixelUnshuffleAutoencoder(ModelMixin, ConfigMixin):
    """Space-to-depth "VAE": exact reconstruction, no weights.

    Args:
        factor: Spatial reduction f (the latent is (3·f², H/f, W/f)).
        in_channels: Image channels.
        scaling_factor: The pipeline multiplies latents by it after encoding, as for SD's VAE
            (1.0: pixels in [-1, 1] already have a suitable scale).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, factor: int = 4, in_channels: int = 3, scaling_factor: float = 1.0) -> None:
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(factor)
        self.shuffle = nn.PixelShuffle(factor)
        # ModelMixin needs at least one tensor to report a device/dtype.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike,
                        subfolder: str | None = None, **_: Any) -> PixelUnshuffleAutoencoder:
        """Rebuild from config.json alone (there are no weights to load)."""
        return cls.from_config(cls.load_config(pretrained_model_name_or_path, subfolder=subfolder))

    @property
    def latent_channels(self) -> int:
        """Channels of the latent."""
        return self.config.in_channels * self.config.factor**2

    def encode(self, x: Tensor, return_dict: bool = True) -> EncoderOutput | tuple:
        """(B, C, H, W) → (B, C·f², H/f, W/f); H, W must be divisible by f."""
        f = self.config.factor
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not divisible by {f}")
        out = EncoderOutput(_Deterministic(self.unshuffle(x)))
        return out if return_dict else (out.latent_dist,)

    def decode(self, z: Tensor, return_dict: bool = True) -> DecoderOutput | tuple:
        """Inverse of :meth:`encode`."""
        out = DecoderOutput(self.shuffle(z))
        return out if return_dict else (out.sample,)
