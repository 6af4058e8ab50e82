"""What a training run is made of: the model, the autoencoder, the optimiser (fidelity §6)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from diffusers import DDPMScheduler
from torch import Tensor, nn

from cfld.checkpoint import load_state_strict
from cfld.data.datasets import DeepFashionTrain
from cfld.models.cfld import CFLDModel
from cfld.models.resize_positions import resize_position_tables
from cfld.pipelines.schedulers import OFFICIAL_SCHEDULER_CONFIG, official_scheduler
from cfld.presets import Preset, get_preset
from cfld.training.batches import BatchPlan, EpochBatchSampler
from cfld.training.config import TrainConfig
from cfld.training.draws import SampleDraws

if TYPE_CHECKING:
    from cfld.training.distill_config import DistillConfig

#: The authors' noise schedule (fidelity §6.2); its one home is :mod:`cfld.pipelines.schedulers`.
NOISE_SCHEDULER_CONFIG = OFFICIAL_SCHEDULER_CONFIG


def build_noise_scheduler(prediction_type: str = "epsilon") -> DDPMScheduler:
    """The official DDPMScheduler (scaled-linear 0.00085–0.012, 1000 steps) for the run's
    prediction type."""
    return official_scheduler(prediction_type)


def build_autoencoder(config: TrainConfig, preset: Preset | None = None) -> nn.Module:
    """The preset's autoencoder: the parameter-free pixel one, or the user's SD-1.5 VAE."""
    preset = preset or get_preset(config.preset)
    kind = preset.autoencoder.get("type")
    if kind == "pixel_unshuffle":
        from cfld.models.pixel_autoencoder import PixelUnshuffleAutoencoder

        return PixelUnshuffleAutoencoder(factor=int(preset.autoencoder.get("factor", 4)))
    if kind == "sd_vae":
        if not config.pretrained_sd:
            raise ValueError(
                f"preset {config.preset!r} diffuses in the latent space of the Stable Diffusion "
                "1.5 VAE: pass --pretrained-sd PATH (a local SD-1.5 diffusers folder with vae/ "
                "and unet/, or a hub id), or train preset 'synthetic' which needs no VAE")
        from cfld.models.pretrained import load_vae

        return load_vae(config.pretrained_sd)
    raise ValueError(f"preset {config.preset!r} has an unknown autoencoder type {kind!r}")


def build_model(config: TrainConfig, preset: Preset | None = None) -> CFLDModel:
    """CFLDModel of the preset (+ overrides, trainable set), initialised from pretrained parts."""
    preset = preset or get_preset(config.preset)
    kwargs = copy.deepcopy(preset.model)
    kwargs.update(copy.deepcopy(config.model_overrides))
    if config.trainable is not None:
        kwargs["unet_trainable"] = config.trainable
    model = CFLDModel(**kwargs)
    unet = config.pretrained_sd if (config.pretrained_sd and config.init_unet) else None
    if unet is not None or config.pretrained_swin:
        from cfld.models.pretrained import init_from_pretrained_parts

        init_from_pretrained_parts(model, unet=unet, swin=config.pretrained_swin)
    if config.init_from:
        init_from_model_folder(model, config.init_from)
    return model


def init_from_model_folder(model: nn.Module, folder: str | os.PathLike) -> None:
    """Copy every weight of a saved CFLD model (strictly) into ``model`` for fine-tuning.

    ``folder`` is a model folder (config.json + weights) or a pipeline folder with ``model/``.
    Weights stored in float16 (the shipped model) are cast to the training model's dtype.  A
    model saved for another source size (e.g. ``synthetic`` into ``synthetic_128``) has its
    size-dependent position tables interpolated (:mod:`cfld.models.resize_positions`).
    """
    path = Path(folder)
    subfolder = "model" if (path / "model_index.json").is_file() else None
    try:
        saved = CFLDModel.from_pretrained(path, subfolder=subfolder,
                                          torch_dtype=next(model.parameters()).dtype)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"--init-from {folder}: {err}") from None
    state = saved.state_dict()
    resized = resize_position_tables(state, model)
    if resized:
        print(f"--init-from {folder}: interpolated {len(resized)} position tables to this "
              "preset's source size", flush=True)
    load_state_strict(model, state, hint=f"--init-from {folder} holds another "
                      "architecture than the preset; use the same --preset and model overrides")


def place_autoencoder(vae: nn.Module, device: torch.device, mixed_precision: str) -> torch.dtype:
    """Freeze the autoencoder and move it to ``device``; on CUDA with mixed precision it is
    held in the half dtype, as the authors hold their VAE in fp16 (fidelity §6.3).  Returns
    the dtype its inputs must have."""
    vae.requires_grad_(False).eval()
    dtype = torch.float32
    if device.type == "cuda" and mixed_precision != "no":
        dtype = torch.float16 if mixed_precision == "fp16" else torch.bfloat16
    if dtype == torch.float32:
        vae.to(device)
    else:
        vae.to(device=device, dtype=dtype)
    return dtype


@torch.no_grad()
def encode_latents(vae: nn.Module, images: Tensor, generator: torch.Generator | None = None,
                   draws: SampleDraws | None = None) -> Tensor:
    """Images in [-1, 1] → latents × scaling factor (fp32).

    A KL-VAE posterior is SAMPLED (mean + std·ε, ε from ``draws`` — the pairs' own streams, the
    trainer's way — or else from ``generator``; fidelity §6.1 step 1); the pixel autoencoder is
    exact.
    """
    dist = vae.encode(images).latent_dist
    mean = dist.mean
    std = getattr(dist, "std", None)
    if std is None:
        z = mean
    else:
        eps = (draws.normal(mean.shape[1:]) if draws is not None
               else torch.randn(mean.shape, generator=generator, dtype=torch.float32))
        z = mean + std * eps.to(device=mean.device, dtype=mean.dtype)
    return z.float() * float(vae.config.scaling_factor)


def build_optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Adam:
    """Adam as in the official code (single group, no weight decay by default), using torch's
    fused kernel where available (same update rule; ~4× faster on CPU for many small tensors).
    """
    kwargs = dict(lr=config.lr, betas=config.adam_betas, eps=config.adam_eps,
                  weight_decay=config.weight_decay)
    if config.fused_adam:
        try:
            return torch.optim.Adam(params, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(params, **kwargs)


__all__ = ["NOISE_SCHEDULER_CONFIG", "build_autoencoder", "build_model", "build_noise_scheduler",
           "build_optimizer", "encode_latents", "init_from_model_folder", "place_autoencoder"]


def build_training_data(config: TrainConfig | DistillConfig, preset: Preset, plan: BatchPlan,
                        rank: int, world: int) -> tuple[DeepFashionTrain, EpochBatchSampler]:
    """The training pairs at the preset's sizes and this process's seeded, sharded batch order
    (shared by ``cfld train`` and ``cfld distill``)."""
    s = preset.source_size
    from cfld.data.synthetic import PARTS_DIRS

    parts = PARTS_DIRS["train"] if getattr(config, "part_balance", 0) else None
    dataset = DeepFashionTrain(config.data_root, gen_size=preset.image_size, cond_size=(s, s),
                               pose_size=preset.pose_size, flip_p=config.flip_p, seed=config.seed,
                               parts_dir=parts)
    sampler = EpochBatchSampler(len(dataset), plan.per_process, config.seed, rank, world,
                                plan.accumulation)
    if sampler.batches_per_epoch < 1:
        raise ValueError(f"{len(dataset)} training pairs cannot fill one total batch of "
                         f"{plan.total}; lower --batch-size or --total-batch-size")
    return dataset, sampler
