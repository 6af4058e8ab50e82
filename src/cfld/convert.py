"""Convert the authors' checkpoints (accelerate ``save_state`` folders) to our format (fidelity §4).

The authors' folder holds ``pytorch_model.bin`` (their ``build_model``: Swin, appearance encoder,
pose encoder, decoder, learnable vector) and ``pytorch_model_1.bin`` (the full SD UNet with a
``model.`` prefix); newer accelerate writes ``model.safetensors`` / ``model_1.safetensors``.
Multi-GPU saves may prefix every key with ``module.``.  Every key is mapped and loaded STRICTLY:
unlike the official loader (``strict=False``, fidelity §12.7) a mismatch is an error that lists the
missing and unexpected keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from cfld.checkpoint import CheckpointMismatchError, atomic_save_dir, load_state_strict
from cfld.models.cfld import CFLDModel
from cfld.presets import get_preset, model_kwargs_from_official

#: official top-level prefix → our attribute
PREFIX_MAP: dict[str, str] = {
    "backbone.": "source_encoder.",
    "appearance_encoder.": "appearance_encoder.",
    "pose_encoder.": "pose_adapter.",
    "decoder.": "decoder.",
}
#: Swin buffers that we recompute from the window geometry (deterministic, fidelity §4.4).
RECOMPUTED_BUFFER_SUFFIXES = (".relative_position_index", ".attn_mask", ".relative_coords_table")

_CONTAINER_NAMES = ("pytorch_model.bin", "model.safetensors")
_UNET_NAMES = ("pytorch_model_1.bin", "model_1.safetensors")


def load_tensor_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """Load a .bin/.pt (safely, ``weights_only=True``) or .safetensors file of tensors."""
    from cfld.checks.models import load_weights

    path = Path(path)
    obj = load_weights(path, "checkpoint file")
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, expected a state dict")
    return dict(obj)


def _find(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"none of {', '.join(names)} found in {folder}; give the authors' checkpoint folder "
        "(the `checkpoints` folder written by their training script)"
    )


def _strip_module(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def map_official_state_dict(container: Mapping[str, Tensor], unet: Mapping[str, Tensor],
                            ) -> dict[str, Tensor]:
    """Rename official keys to ours; unknown prefixes are kept (so strict loading reports them)."""
    out: dict[str, Tensor] = {}
    for key, value in _strip_module(dict(container)).items():
        if key.endswith(RECOMPUTED_BUFFER_SUFFIXES):
            continue
        if key == "learnable_vector":
            out["uncond_prompt"] = value
            continue
        for old, new in PREFIX_MAP.items():
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            out[f"<container>.{key}"] = value
    for key, value in _strip_module(dict(unet)).items():
        out["unet." + key[len("model."):] if key.startswith("model.") else f"<unet>.{key}"] = value
    return out


def read_official_config(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Read a JSON holding the authors' yacs configuration under ``cfg`` and the UNet's under
    ``unet_config`` (as in the fixture's config.json)."""
    from cfld.checks.files import read_json

    path = Path(path)
    data = read_json(path, "configuration file")
    if not isinstance(data, dict) or "cfg" not in data:
        raise ValueError(f"{path} must be a JSON object with the authors' configuration under "
                         "'cfg' (and optionally the UNet config under 'unet_config')")
    return data["cfg"], data.get("unet_config")


def convert_official(official_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                     config: str | os.PathLike | dict[str, Any] | None = None) -> CFLDModel:
    """Convert an authors' checkpoint folder into a :class:`CFLDModel` (and save it).

    Args:
        official_dir: Folder with ``pytorch_model.bin`` + ``pytorch_model_1.bin`` (or the
            ``model*.safetensors`` names).
        out_dir: Where to write our format (safetensors + config.json); ``None`` = don't save.
        config: Path of a JSON with ``cfg``/``unet_config``, such a dict, or ``None`` for the
            authors' full-size defaults.

    Raises:
        FileNotFoundError: a file is missing.
        CheckpointMismatchError: the weights do not fit the configured architecture.
    """
    folder = Path(official_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"official checkpoint folder not found: {folder}")
    if config is None:
        kwargs = dict(get_preset("fashion_256").model)
    else:
        cfg, unet_cfg = (read_official_config(config) if not isinstance(config, dict)
                         else (config["cfg"], config.get("unet_config")))
        kwargs = model_kwargs_from_official(cfg, unet_cfg)
    container = load_tensor_file(_find(folder, _CONTAINER_NAMES))
    unet = load_tensor_file(_find(folder, _UNET_NAMES))
    # Built on the meta device and filled by assignment: no 1-B-parameter random init to throw
    # away, and a mismatch is reported before any memory is spent.
    with torch.device("meta"):
        model = CFLDModel(**kwargs)
    load_state_strict(model, map_official_state_dict(container, unet), assign=True,
                      hint="pass the authors' configuration with --config if the model is not "
                           "the full-size default")
    model.source_encoder.reset_buffers()  # recomputed, never stored (fidelity §4.4)
    model.eval()
    if out_dir is not None:
        save_atomic(model, out_dir)
    return model


def convert_official_pipeline(official_dir: str | os.PathLike, out_dir: str | os.PathLike | None,
                              pretrained_sd: str | os.PathLike,
                              config: str | os.PathLike | dict[str, Any] | None = None):
    """The authors' checkpoint as a complete pipeline folder: the converted model, the SD-1.5
    VAE of ``pretrained_sd`` and the authors' DDPM scheduler (fidelity §6.2), which
    ``CFLDPipeline.from_pretrained(out_dir)`` loads with no other argument.

    Args:
        official_dir: The authors' checkpoint folder (see :func:`convert_official`).
        out_dir: The pipeline folder to write (``None``: return the pipeline only).
        pretrained_sd: Stable Diffusion 1.5: a local folder (with ``vae/``) or a hub id such as
            ``stable-diffusion-v1-5/stable-diffusion-v1-5`` (fetched when online).
        config: As in :func:`convert_official`.

    Returns:
        The :class:`~cfld.CFLDPipeline`.
    """
    from cfld.models.pretrained import load_vae
    from cfld.pipelines.pipeline_cfld import CFLDPipeline
    from cfld.pipelines.schedulers import official_scheduler

    folder = Path(official_dir)
    if not folder.is_dir():  # before fetching SD-1.5
        raise FileNotFoundError(f"official checkpoint folder not found: {folder}")
    vae = load_vae(pretrained_sd).eval()  # first: a wrong SD path fails before the big load
    model = convert_official(folder, None, config)
    pipe = CFLDPipeline(model=model, scheduler=official_scheduler(), vae=vae)
    if out_dir is not None:
        atomic_save_dir(out_dir, lambda tmp: pipe.save_pretrained(tmp, safe_serialization=True))
    return pipe


def save_atomic(model: CFLDModel, out_dir: str | os.PathLike) -> Path:
    """``save_pretrained`` atomically (see :func:`cfld.checkpoint.atomic_save_dir`)."""
    return atomic_save_dir(out_dir, lambda tmp: model.save_pretrained(tmp, safe_serialization=True))


__all__ = ["CheckpointMismatchError", "convert_official", "convert_official_pipeline",
           "load_tensor_file",
           "map_official_state_dict", "read_official_config", "save_atomic"]
