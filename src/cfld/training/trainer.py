"""The CFLD training loop (facts §6) on :class:`accelerate.Accelerator`.

One function, :func:`train`, takes a :class:`~cfld.training.config.TrainConfig` and

1. builds the model from the preset (optionally from SD-1.5 / Swin-B parts), the autoencoder
   and the official DDPM noise schedule;
2. iterates the training pairs in a seeded, per-epoch shuffled order (identical on resume);
3. per step encodes ``[img_src; img_tgt]`` (SD VAE: posterior sample × scaling factor), draws
   the noise, the timestep uniforms and the dropout uniforms from ONE trainer-owned
   ``torch.Generator``, computes :func:`~cfld.training.objective.training_step_loss`, and
   takes an Adam step and an LR-schedule step;
4. logs (tqdm, TensorBoard, ``metrics.jsonl``), draws sample grids, writes atomic checkpoints
   that resume bit-exactly, stops with :class:`TrainingDivergedError` on a non-finite loss, and
   finally exports the model folder.

Works on CPU, one GPU, and many GPUs via ``accelerate launch``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Sampler

from cfld.checkpoint import atomic_save_dir
from cfld.training.config import TrainConfig
from cfld.training.lr_schedule import build_lr_scheduler, decay_boundaries
from cfld.training.objective import training_step_loss
from cfld.training.state import (
    TrainPosition,
    list_checkpoints,
    capture_rng_state,
    frozen_fingerprint,
    load_checkpoint,
    load_trainable_into,
    resolve_resume,
    restore_rng_state,
    save_checkpoint,
)

#: Official noise schedule (facts §6.2).
NOISE_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "prediction_type": "epsilon",
}

# Fields that must agree between an interrupted run and its resumption (the model, the data
# order or the RNG streams depend on them).
_RESUME_MUST_MATCH = ("preset", "trainable", "model_overrides", "batch_size", "seed",
                      "init_unet", "init_from", "pretrained_sd", "pretrained_swin", "data_root")


class TrainingDivergedError(ValueError):
    """The loss became NaN or infinite; the message names the step and what to try."""


# ==================================================================================== building
def build_noise_scheduler(prediction_type: str = "epsilon"):
    """The official DDPMScheduler (scaled-linear 0.00085–0.012, 1000 steps, ε-prediction)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**{**NOISE_SCHEDULER_CONFIG, "prediction_type": prediction_type})


def build_autoencoder(config: TrainConfig, preset: Any | None = None) -> nn.Module:
    """The preset's autoencoder: the parameter-free pixel one, or the user's SD-1.5 VAE."""
    from cfld.presets import get_preset

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


def build_model(config: TrainConfig, preset: Any | None = None) -> nn.Module:
    """CFLDModel of the preset (+ overrides, trainable set), initialised from pretrained parts."""
    from cfld.models.cfld import CFLDModel
    from cfld.presets import get_preset

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
    Weights stored in float16 (the shipped model) are cast to the training model's dtype.
    """
    from cfld.checkpoint import load_state_strict
    from cfld.models.cfld import CFLDModel

    path = Path(folder)
    subfolder = "model" if (path / "model_index.json").is_file() else None
    try:
        saved = CFLDModel.from_pretrained(path, subfolder=subfolder,
                                          torch_dtype=next(model.parameters()).dtype)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"--init-from {folder}: {err}") from None
    load_state_strict(model, saved.state_dict(), hint=f"--init-from {folder} holds another "
                      "architecture than the preset; use the same --preset and model overrides")


def autoencoder_factor(vae: nn.Module) -> int:
    """Spatial reduction of the autoencoder (pixel: its factor; KL-VAE: 2^(levels−1))."""
    cfg = vae.config
    if "factor" in cfg:
        return int(cfg["factor"])
    return 2 ** (len(cfg["block_out_channels"]) - 1)


@torch.no_grad()
def encode_latents(vae: nn.Module, images: Tensor, generator: torch.Generator) -> Tensor:
    """Images in [-1, 1] → latents × scaling factor (fp32).

    A KL-VAE posterior is SAMPLED (mean + std·ε, ε from ``generator``; facts §6.1 step 1); the
    pixel autoencoder is exact.
    """
    dist = vae.encode(images).latent_dist
    mean = dist.mean
    std = getattr(dist, "std", None)
    if std is None:
        z = mean
    else:
        eps = torch.randn(mean.shape, generator=generator, dtype=torch.float32)
        z = mean + std * eps.to(device=mean.device, dtype=mean.dtype)
    return z.float() * float(vae.config.scaling_factor)


# ==================================================================================== data order
class EpochBatchSampler(Sampler[list[int]]):
    """Seeded per-epoch shuffle, drop_last, sharded over processes, resumable mid-epoch.

    The permutation of epoch ``e`` depends only on ``(seed, e)``; global batch ``b`` holds
    ``perm[b·B·W:(b+1)·B·W]`` and process ``r`` takes its ``r``-th slice of ``B`` indices.

    Args:
        num_items: Data set length.
        batch_size: Per-process batch size B.
        seed: Base seed.
        rank, world_size: This process and the number of processes W.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.num_items = int(num_items)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0
        self.start = 0

    @property
    def batches_per_epoch(self) -> int:
        """Optimiser steps per epoch."""
        return self.num_items // (self.batch_size * self.world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from its batch ``start`` (skipping consumed batches)."""
        self.epoch, self.start = int(epoch), int(start)

    def permutation(self, epoch: int) -> Tensor:
        """The item order of ``epoch``."""
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
        return torch.randperm(self.num_items, generator=g)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.permutation(self.epoch)
        step = self.batch_size * self.world_size
        for b in range(self.start, self.batches_per_epoch):
            chunk = perm[b * step:(b + 1) * step]
            yield chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size].tolist()


# ==================================================================================== loss module
class _LossModule(nn.Module):
    """Wraps the model so the whole objective runs inside ``forward`` (DDP/autocast friendly)."""

    def __init__(self, model: nn.Module, noise_scheduler: Any, **objective: Any) -> None:
        """``objective``: the keyword settings of :func:`training_step_loss` (dropout,
        timestep sampling, loss weighting), fixed for the run."""
        super().__init__()
        self.model = model
        self.noise_scheduler = noise_scheduler
        self.objective = objective

    def forward(self, latents: Tensor, noise: Tensor, img_cond: Tensor, pose_src: Tensor,
                pose_tgt: Tensor, timestep_u: Tensor, drop_u: Tensor) -> Tensor:
        out = training_step_loss(self.model, self.noise_scheduler, latents, noise, img_cond,
                                 pose_src, pose_tgt, timestep_u, drop_u, **self.objective)
        return out.loss


# ==================================================================================== sampling
def _to_unit(images: Tensor) -> Tensor:
    return ((images.float().clamp(-1, 1) + 1) / 2).cpu()


@torch.no_grad()
def sample_images(model: nn.Module, vae: nn.Module, source: Tensor, target_pose: Tensor,
                  image_size: tuple[int, int], num_inference_steps: int = 25,
                  seed: int = 0, prediction_type: str = "epsilon") -> Tensor:
    """Generate (B, 3, H, W) images in [0, 1] (conditional DDPM sampling, no guidance).

    Kept deliberately small and self-contained so that sample grids never depend on the
    inference pipeline (which offers guidance, PIL I/O, ...).
    """
    from diffusers import DDPMScheduler

    was_training = model.training
    model.eval()
    try:
        sched = DDPMScheduler(**{**NOISE_SCHEDULER_CONFIG, "prediction_type": prediction_type})
        sched.set_timesteps(num_inference_steps)
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        g = torch.Generator().manual_seed(int(seed))
        cond = model.encode(source.to(device, dtype), target_pose.to(device, dtype))
        f = autoencoder_factor(vae)
        shape = (source.shape[0], model.unet.config.in_channels,
                 image_size[0] // f, image_size[1] // f)
        latents = torch.randn(shape, generator=g).to(device, dtype)
        for t in sched.timesteps:
            eps = model.predict_noise(latents, t.to(device), cond)
            latents = sched.step(eps, t, latents, generator=g).prev_sample
        vae_dtype = next(iter(vae.parameters()), torch.zeros(())).dtype
        decoded = vae.decode((latents / float(vae.config.scaling_factor)).to(vae_dtype)).sample
        return _to_unit(decoded)
    finally:
        model.train(was_training)


def grid_image(columns: list[Tensor]) -> Any:
    """PIL grid: one row per sample, one column per (B, 3, H, W) tensor in [0, 1]."""
    from PIL import Image

    h = max(c.shape[-2] for c in columns)
    w = max(c.shape[-1] for c in columns)
    rows = columns[0].shape[0]
    canvas = Image.new("RGB", (w * len(columns), h * rows), (255, 255, 255))
    for j, col in enumerate(columns):
        for i in range(rows):
            arr = (col[i].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            tile = Image.fromarray(arr)
            if tile.size != (w, h):
                tile = tile.resize((w, h), Image.BICUBIC)
            canvas.paste(tile, (j * w, i * h))
    return canvas


def _pose_tiles(pose: Tensor) -> Tensor:
    from cfld.pose.render import pose_map_to_image

    tiles = [torch.from_numpy(np.asarray(pose_map_to_image(p), dtype=np.float32) / 255)
             .permute(2, 0, 1) for p in pose]
    return torch.stack(tiles)


def _spread(n: int, k: int) -> list[int]:
    """``k`` indices evenly spread over ``range(n)`` (different people in a grid)."""
    k = min(k, n)
    return sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(k)})


def _grid_batch(config: TrainConfig, preset: Any) -> dict[str, Tensor] | None:
    """The fixed pairs shown in sample grids: the first test pairs (held out) or train pairs."""
    from cfld.data.deepfashion import DeepFashionTest

    s = preset.source_size
    try:
        ds = DeepFashionTest(config.data_root, gen_size=preset.image_size, cond_size=(s, s),
                             pose_size=preset.pose_size, test_size=preset.image_size)
    except (FileNotFoundError, ValueError):
        return None
    items = [ds[i] for i in _spread(len(ds), config.sample_count)]
    return {
        "source": torch.stack([it["img_cond"] for it in items]),
        "source_view": torch.stack([_to_unit(it["img_src"]) for it in items]),
        "pose": torch.stack([it["pose_img_tgt"] for it in items]),
        "target": torch.stack([_to_unit(it["img_tgt"]) for it in items]),
    }


def _generate_for_grid(model: nn.Module, vae: nn.Module, batch: dict[str, Tensor],
                       image_size: tuple[int, int], steps: int, seed: int,
                       prediction_type: str = "epsilon") -> Tensor:
    """Generated images (B, 3, H, W) in [0, 1]: the inference pipeline (with its default
    guidance) when available, else :func:`sample_images`."""
    try:
        from cfld.pipelines.pipeline_cfld import CFLDPipeline
    except ImportError:
        return sample_images(model, vae, batch["source"], batch["pose"], image_size, steps, seed,
                             prediction_type)
    was_training = model.training
    try:
        pipe = CFLDPipeline(model=model, vae=vae,
                            scheduler=build_noise_scheduler(prediction_type))
        pipe.set_progress_bar_config(disable=True)
        device = next(model.parameters()).device
        images = pipe(source_image=batch["source"].to(device),
                      target_pose=batch["pose"].to(device), num_inference_steps=steps,
                      generator=torch.Generator().manual_seed(int(seed)), output_type="pt",
                      keep_square=True).images
        return images.float().clamp(0, 1).cpu()
    except Exception as err:  # noqa: BLE001 - a grid must never end a long training run
        warnings.warn(f"sample grid through CFLDPipeline failed ({type(err).__name__}: {err}); "
                      "using the trainer's plain sampler", stacklevel=2)
        return sample_images(model, vae, batch["source"], batch["pose"], image_size, steps, seed,
                             prediction_type)
    finally:
        model.train(was_training)


def write_sample_grid(path: Path, model: nn.Module, vae: nn.Module, batch: dict[str, Tensor],
                      image_size: tuple[int, int], steps: int, seed: int,
                      prediction_type: str = "epsilon") -> Path:
    """source | target pose | generated | target, one row per pair, as a PNG."""
    generated = _generate_for_grid(model, vae, batch, image_size, steps, seed, prediction_type)
    grid = grid_image([batch["source_view"], _pose_tiles(batch["pose"]), generated,
                       batch["target"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    grid.save(tmp)
    os.replace(tmp, path)
    return path


# ==================================================================================== export
def export_model(out_dir: str | os.PathLike, model: nn.Module, vae: nn.Module,
                 noise_scheduler: Any, output_size: tuple[int, int] | None = None) -> Path:
    """Write the inference folder atomically.

    With :class:`cfld.pipelines.pipeline_cfld.CFLDPipeline` available it is the pipeline's
    ``save_pretrained``; otherwise the same diffusers layout by hand: ``model/``, ``vae/``,
    ``scheduler/``.
    """
    try:
        from cfld.pipelines.pipeline_cfld import CFLDPipeline
    except ImportError:
        CFLDPipeline = None  # noqa: N806

    def write(tmp: Path) -> None:
        if CFLDPipeline is not None:
            CFLDPipeline(model=model, vae=vae, scheduler=noise_scheduler,
                         output_size=list(output_size) if output_size else None
                         ).save_pretrained(tmp)
            return
        model.save_pretrained(tmp / "model")
        vae.save_pretrained(tmp / "vae")
        noise_scheduler.save_pretrained(tmp / "scheduler")

    return atomic_save_dir(out_dir, write)


# ==================================================================================== helpers
def _check_resume_config(saved: dict[str, Any], config: TrainConfig) -> None:
    current = config.to_dict()
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}"
             for k in _RESUME_MUST_MATCH if saved.get(k) != current.get(k)]
    if diffs:
        raise ValueError("cannot resume exactly with a different setup (" + "; ".join(diffs)
                         + "); use the interrupted run's settings")


def _trim_metrics(path: Path, step: int) -> None:
    """Drop metric lines after ``step`` (written after the checkpoint we resume from)."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text(encoding="utf-8").splitlines()
            if ln.strip() and json.loads(ln).get("step", 0) <= step]
    path.write_text("".join(ln + "\n" for ln in keep), encoding="utf-8")


def _device_batch(batch: dict[str, Any], device: torch.device) -> dict[str, Tensor]:
    keys = ("img_src", "img_tgt", "img_cond", "pose_img_src", "pose_img_tgt")
    return {k: batch[k].to(device, non_blocking=True) for k in keys}


# ==================================================================================== train
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


def train(config: TrainConfig) -> dict[str, Any]:
    """Train CFLD as configured; return a summary.

    Returns:
        ``{"output_dir", "steps", "start_step", "losses" (this invocation's, one per step),
        "lrs", "seconds", "seconds_per_step", "checkpoint", "model_dir", "iters_per_epoch"}``.

    Raises:
        ValueError: bad configuration (named), e.g. a full preset without ``pretrained_sd``.
        FileNotFoundError: missing data or pretrained files.
        TrainingDivergedError: the loss became NaN/inf.
    """
    from accelerate import Accelerator
    from accelerate.utils import gather_object, set_seed

    from cfld.data.deepfashion import DeepFashionTrain
    from cfld.presets import get_preset

    config.validate()
    if config.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ValueError("mixed precision fp16 needs a CUDA GPU; use --mixed-precision bf16 or "
                         "no on CPU")
    preset = get_preset(config.preset)
    run_dir = Path(config.output_dir)

    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    is_main = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes
    device = accelerator.device
    if device.type == "cuda":  # the official run allows TF32 matmuls (facts §6.3)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # ---- what to resume from (decided before any RNG is consumed)
    ckpt_path = None
    if config.resume:
        ckpt_path = resolve_resume(config.resume, run_dir)
    elif list_checkpoints(run_dir):
        raise ValueError(f"{run_dir} already holds checkpoints of another run; continue it with "
                         "--resume latest or choose a new --out")

    # ---- model, autoencoder, noise schedule (seeded: frozen random weights are reproducible)
    set_seed(config.seed)
    vae = build_autoencoder(config, preset)
    model = build_model(config, preset)
    if config.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    model.train()
    noise_scheduler = build_noise_scheduler(config.prediction_type)
    vae.requires_grad_(False).eval()
    vae_dtype = torch.float32
    if device.type == "cuda" and config.mixed_precision != "no":
        vae_dtype = torch.float16 if config.mixed_precision == "fp16" else torch.bfloat16
    vae.to(device) if vae_dtype == torch.float32 else vae.to(device=device, dtype=vae_dtype)

    # ---- data
    s = preset.source_size
    dataset = DeepFashionTrain(config.data_root, gen_size=preset.image_size, cond_size=(s, s),
                               pose_size=preset.pose_size, flip_p=config.flip_p, seed=config.seed)
    sampler = EpochBatchSampler(len(dataset), config.batch_size, config.seed, rank, world)
    iters_per_epoch = sampler.batches_per_epoch
    if iters_per_epoch < 1:
        raise ValueError(f"{len(dataset)} training pairs cannot fill one batch of "
                         f"{config.batch_size} × {world} process(es); lower --batch-size")
    total_steps = config.max_steps or config.epochs * iters_per_epoch

    # ---- optimisation (facts §6.3)
    fingerprint = frozen_fingerprint(model)
    optimizer = build_optimizer(model.trainable_parameters(), config)
    lr_scheduler = build_lr_scheduler(
        optimizer, config.warmup_steps, config.warmup_rate,
        decay_boundaries(config.decay_epochs, iters_per_epoch), config.decay_rate)
    loss_module = _LossModule(
        model, noise_scheduler, drop_prob=config.drop_prob, dropout=config.dropout,
        timestep_sampling="cubic" if config.cubic_sampling else "uniform",
        snr_gamma=config.snr_gamma, low_noise_fraction=config.low_noise_fraction,
        low_noise_max_t=config.low_noise_max_t)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    raw_model = accelerator.unwrap_model(loss_module).model
    generator = torch.Generator().manual_seed(config.seed + 7919 * rank)

    position = TrainPosition()
    if ckpt_path is not None:
        weights, state = load_checkpoint(ckpt_path)
        _check_resume_config(state["config"], config)
        if state["frozen_fingerprint"] != fingerprint:
            raise ValueError(f"the frozen weights differ from those of the run in {ckpt_path} "
                             "(other pretrained files or model code); cannot resume exactly")
        load_trainable_into(raw_model, weights)
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["scheduler"])
        if len(state["rng"]) != world:
            raise ValueError(f"the checkpoint was written by {len(state['rng'])} process(es), "
                             f"this run has {world}; resume with the same number")
        restore_rng_state(state["rng"][rank], generator)
        position = TrainPosition(int(state["step"]), int(state["epoch"]),
                                 int(state["batch_in_epoch"]))

    # ---- output folder
    metrics_path = run_dir / "metrics.jsonl"
    writer = None
    grid_batch = None
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.json")
        if ckpt_path is not None:
            _trim_metrics(metrics_path, position.step)
        elif metrics_path.exists():
            metrics_path.unlink()
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=position.step)
        if config.sample_every >= 0:
            grid_batch = _grid_batch(config, preset)
            if grid_batch is None:  # no test split: show training pairs
                items = [dataset[i] for i in _spread(len(dataset), config.sample_count)]
                grid_batch = {
                    "source": torch.stack([it["img_cond"] for it in items]),
                    "source_view": torch.stack([_to_unit(it["img_src"]) for it in items]),
                    "pose": torch.stack([it["pose_img_tgt"] for it in items]),
                    "target": torch.stack([_to_unit(it["img_tgt"]) for it in items]),
                }

    def grid(step: int) -> None:
        if is_main and grid_batch is not None:
            write_sample_grid(run_dir / "samples" / f"step_{step:08d}.png", raw_model, vae,
                              grid_batch, preset.image_size, config.sample_steps, config.seed,
                              config.prediction_type)

    def checkpoint() -> Path:
        states = [capture_rng_state(generator)]
        if world > 1:
            states = gather_object(states)
        path = None
        if is_main:
            path = save_checkpoint(run_dir, model=raw_model, optimizer=optimizer,
                                   scheduler=lr_scheduler, position=position, rng_states=states,
                                   fingerprint=fingerprint, config=config.to_dict(),
                                   extra={"iters_per_epoch": iters_per_epoch,
                                          "total_steps": total_steps},
                                   keep=config.keep_checkpoints)
        accelerator.wait_for_everyone()
        return path or checkpoint_path_for(run_dir, position.step)

    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=position.step, desc="train", unit="step",
               disable=not (config.progress and is_main), dynamic_ncols=True)
    losses: list[float] = []
    lrs: list[float] = []
    window: list[float] = []
    start_step = position.step
    last_ckpt: Path | None = ckpt_path
    last_ckpt_step = position.step if ckpt_path is not None else None
    started = time.perf_counter()
    metrics_fh = metrics_path.open("a", encoding="utf-8") if is_main else None
    try:
        while position.step < total_steps:
            sampler.set_epoch(position.epoch, start=position.batch_in_epoch)
            dataset.set_epoch(position.epoch)
            loader = DataLoader(dataset, batch_sampler=sampler, num_workers=config.num_workers,
                                pin_memory=device.type == "cuda",
                                generator=torch.Generator().manual_seed(config.seed))
            for batch in loader:
                b = _device_batch(batch, device)
                bsz = b["img_src"].shape[0]
                images = torch.cat([b["img_src"], b["img_tgt"]]).to(vae_dtype)
                latents = encode_latents(vae, images, generator)
                noise = torch.randn(latents.shape, generator=generator).to(device)
                timestep_u = torch.rand(2 * bsz, generator=generator)
                drop_u = torch.rand(2 * bsz, generator=generator)
                lr = float(lr_scheduler.get_last_lr()[0])
                with accelerator.autocast():
                    loss = loss_module(latents, noise, b["img_cond"], b["pose_img_src"],
                                       b["pose_img_tgt"], timestep_u, drop_u)
                value = float(accelerator.reduce(loss.detach().float(), reduction="mean"))
                if not math.isfinite(value):
                    where = f"; the last checkpoint is {last_ckpt}" if last_ckpt else ""
                    raise TrainingDivergedError(
                        f"the training loss is {value} at step {position.step + 1} (epoch "
                        f"{position.epoch}, lr {lr:.3g}): the run diverged. Lower the learning "
                        f"rate (--lr) or train in full precision (--mixed-precision no){where}")
                accelerator.backward(loss)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)

                position.step += 1
                position.batch_in_epoch += 1
                if position.batch_in_epoch >= iters_per_epoch:
                    position.epoch += 1
                    position.batch_in_epoch = 0
                losses.append(value)
                lrs.append(lr)
                window.append(value)
                step = position.step
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}", refresh=False)
                if metrics_fh is not None:
                    metrics_fh.write(json.dumps({"step": step, "epoch": position.epoch,
                                                 "loss": value, "lr": lr}) + "\n")
                if writer is not None and (step % config.log_every == 0 or step == total_steps):
                    writer.add_scalar("train/loss", value, step)
                    writer.add_scalar("train/loss_avg", sum(window) / len(window), step)
                    writer.add_scalar("train/lr", lr, step)
                    writer.flush()
                    metrics_fh.flush()
                    window = []
                if config.checkpoint_every > 0 and step % config.checkpoint_every == 0:
                    last_ckpt, last_ckpt_step = checkpoint(), step
                if config.sample_every > 0 and step % config.sample_every == 0:
                    grid(step)
                if step >= total_steps:
                    break
        # ---- end of training
        if config.checkpoint_every >= 0 and last_ckpt_step != position.step:
            last_ckpt = checkpoint()
        if config.sample_every >= 0 and not (config.sample_every > 0
                                             and position.step % config.sample_every == 0):
            grid(position.step)
        model_dir = None
        if config.export and is_main:
            model_dir = export_model(run_dir / "model", raw_model, vae, noise_scheduler,
                                     preset.test_size)
        accelerator.wait_for_everyone()
    finally:
        bar.close()
        if metrics_fh is not None:
            metrics_fh.close()
        if writer is not None:
            writer.close()
    elapsed = time.perf_counter() - started
    done = position.step - start_step
    return {
        "output_dir": str(run_dir),
        "steps": position.step,
        "start_step": start_step,
        "losses": losses,
        "lrs": lrs,
        "seconds": elapsed,
        "seconds_per_step": elapsed / done if done else float("nan"),
        "checkpoint": str(last_ckpt) if last_ckpt else None,
        "model_dir": str(model_dir) if model_dir else None,
        "iters_per_epoch": iters_per_epoch,
    }


def checkpoint_path_for(run_dir: str | os.PathLike, step: int) -> Path:
    """Where the checkpoint of ``step`` lives."""
    from cfld.training.state import checkpoint_dir

    return checkpoint_dir(run_dir, step)
