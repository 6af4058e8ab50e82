"""The denoising UNet H_N: stock diffusers SD-1.5 UNet, the CFLD freezing policy (fidelity §2.5).

Nothing here subclasses the UNet: pose maps enter through diffusers' T2I-adapter path
(``down_intrablock_additional_residuals``) and appearance biases through an attention processor
on the nine up-block cross-attentions (:mod:`cfld.models.hybrid_attention`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from diffusers import UNet2DConditionModel
from torch import nn

from cfld.models.hybrid_attention import DEFAULT_BLOCK_IDX, unet_bias_layers

#: SD-1.5 UNet configuration (the authors' pretrained_models/unet/config.json).
SD15_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "CrossAttnDownBlock2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"],
    "only_cross_attention": False,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "use_linear_projection": False,
    "upcast_attention": False,
    "resnet_time_scale_shift": "default",
}

#: Keys of a UNet config that diffusers' constructor accepts (others, e.g. "_class_name", dropped).
_INTERNAL_KEYS = ("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values")

TRAINABLE_SETS = ("official", "all", "none")


def clean_unet_config(config: dict[str, Any]) -> dict[str, Any]:
    """Drop bookkeeping entries (``_class_name`` …) from a diffusers UNet config."""
    return {k: v for k, v in config.items() if k not in _INTERNAL_KEYS}


def build_unet(config: dict[str, Any] | None = None) -> UNet2DConditionModel:
    """Build a randomly initialised UNet from a config (default: SD-1.5)."""
    return UNet2DConditionModel(**clean_unet_config(config or SD15_UNET_CONFIG))


def load_sd_component(cls: type, path_or_id: str | os.PathLike, name: str,
                      subfolder: str | None = None):
    """Load one Stable Diffusion component (``cls.from_pretrained``) from a local folder or hub
    id; a full SD pipeline folder's ``name/`` subfolder is used automatically."""
    path = os.fspath(path_or_id)
    local = os.path.isdir(path)
    if not local:
        check_hub_id(path, "Stable Diffusion 1.5")
    if subfolder is None and (os.path.isdir(os.path.join(path, name)) or not local):
        subfolder = name  # a full SD folder or hub repo: its component folder
    try:
        return cls.from_pretrained(path, subfolder=subfolder)
    except OSError as err:
        if not local and subfolder == name:  # a hub repo of the component alone
            try:
                return cls.from_pretrained(path)
            except OSError:
                pass
        raise FileNotFoundError(
            f"could not load a diffusers {cls.__name__} from {path!r} ({err}); give a local "
            f"Stable Diffusion 1.5 folder (with {name}/config.json and weights) or a hub id "
            "while online"
        ) from err


def check_hub_id(name: str, what: str) -> None:
    """``name``, not a local folder, must look like a hub id (``org/name``) and the hub must be
    reachable in principle: with ``HF_HUB_OFFLINE=1`` a name not in the local cache fails at
    once, with the fix, instead of after the hub's retries.

    Raises:
        FileNotFoundError: Not a folder and not a hub id; or offline and not cached.
    """
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"{what} folder not found: {name} (give a local folder or a "
                                "hub id such as stable-diffusion-v1-5/stable-diffusion-v1-5)")
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    if constants.HF_HUB_OFFLINE or flag:
        from huggingface_hub import snapshot_download

        try:
            snapshot_download(name, local_files_only=True)
        except Exception:  # noqa: BLE001 - any cache miss is the same answer
            raise FileNotFoundError(
                f"{what}: {name!r} is not a local folder, and hub downloads are off "
                "(HF_HUB_OFFLINE=1) with nothing cached for it; download it once while online "
                f"(unset HF_HUB_OFFLINE), or give a local folder") from None


def load_pretrained_unet(path_or_id: str | os.PathLike, subfolder: str | None = None,
                         ) -> UNet2DConditionModel:
    """Load the SD-1.5 UNet from a local diffusers folder or a hub id (to train from scratch)."""
    return load_sd_component(UNet2DConditionModel, path_or_id, "unet", subfolder)


def trainable_unet_parameters(
    unet: nn.Module, block_idx: Sequence[int] = DEFAULT_BLOCK_IDX
) -> Iterator[tuple[str, nn.Parameter]]:
    """Yield (name, parameter) of the official trainable set: attn2 W_k, W_v of the up blocks."""
    names = {id(m): n for n, m in unet.named_modules()}
    for attn in unet_bias_layers(unet, block_idx).values():
        prefix = names[id(attn)]
        yield f"{prefix}.to_k.weight", attn.to_k.weight
        yield f"{prefix}.to_v.weight", attn.to_v.weight


def apply_trainable_set(unet: nn.Module, trainable: str,
                        block_idx: Sequence[int] = DEFAULT_BLOCK_IDX) -> None:
    """Set ``requires_grad`` by policy: ``official`` (18 K/V tensors), ``all`` or ``none``."""
    if trainable not in TRAINABLE_SETS:
        raise ValueError(f"unknown UNet trainable set {trainable!r}; choose one of "
                         f"{TRAINABLE_SETS}")
    unet.requires_grad_(trainable == "all")
    if trainable == "official":
        for _, param in trainable_unet_parameters(unet, block_idx):
            param.requires_grad_(True)
