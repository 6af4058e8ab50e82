"""Pretrained parts for training from scratch: SD-1.5 UNet/VAE and Microsoft's Swin-B.

Real users have these weights locally (or reach the hub); our tests build small stand-ins in the
same layouts.  The official code initialises H_S from ``swin_base_patch4_window12_384_22kto1k.pth``
and H_N/VAE from Stable Diffusion 1.5 (fidelity §2.1, §2.5, §6.3).
"""

from __future__ import annotations

import os

from cfld.checkpoint import load_state_strict
from cfld.models.cfld import CFLDModel
from cfld.models.source_encoder import load_swin_pretrained
from cfld.models.unet import apply_trainable_set, load_pretrained_unet, load_sd_component


def init_from_pretrained_parts(model: CFLDModel, unet: str | os.PathLike | None = None,
                               swin: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Fill ``model`` in place with SD-1.5 UNet weights and/or Swin ImageNet weights.

    Args:
        model: A freshly built CFLDModel whose UNet config matches the pretrained UNet.
        unet: A diffusers folder (full SD pipeline or its ``unet/``) or hub id.
        swin: Microsoft Swin checkpoint (``.pth`` with key "model", or ``.safetensors``).

    Returns:
        The Swin loader's ``{"missing": [...], "unexpected": [...]}`` report (empty if no Swin).
    """
    report: dict[str, list[str]] = {"missing": [], "unexpected": []}
    if unet is not None:
        pretrained = load_pretrained_unet(unet)
        load_state_strict(model.unet, pretrained.state_dict(),
                          hint="the pretrained UNet's architecture differs from the preset's "
                               "unet_config")
        apply_trainable_set(model.unet, model.config.unet_trainable,
                            model.appearance_encoder.block_idx)
    if swin is not None:
        missing, unexpected = load_swin_pretrained(model.source_encoder, swin)
        report = {"missing": list(missing), "unexpected": list(unexpected)}
    return report


def load_vae(path_or_id: str | os.PathLike, subfolder: str | None = None):
    """Load the SD-1.5 AutoencoderKL from a diffusers folder (``vae/`` used if present)."""
    from diffusers import AutoencoderKL

    return load_sd_component(AutoencoderKL, path_or_id, "vae", subfolder)
