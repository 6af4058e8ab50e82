"""The CFLD training loop (fidelity §6) on :class:`accelerate.Accelerator`.

:func:`train` takes a :class:`~cfld.training.config.TrainConfig` and runs four phases:

1. **setup** — builds the model from the preset (optionally from SD-1.5 / Swin-B parts), the
   autoencoder, the official DDPM noise schedule, the data order and the optimiser
   (:mod:`cfld.training.build`, :mod:`cfld.training.batches`);
2. **resume** — restores weights, optimiser, LR schedule, RNG streams and the data position of
   a checkpoint, so the run continues bit for bit;
3. **loop** — per micro-batch encodes ``[img_src; img_tgt]`` (SD VAE: posterior sample),
   draws the noise, timestep and dropout uniforms from each pair's own streams
   (:mod:`cfld.training.draws`), accumulates the gradient of
   :func:`~cfld.training.objective.training_step_loss`; then an Adam and an LR-schedule step,
   logs (tqdm, TensorBoard, ``metrics.jsonl``), atomic checkpoints and sample grids
   (:mod:`cfld.training.samples`); :class:`TrainingDivergedError` on a non-finite loss;
4. **finish** — a last checkpoint and grid, and the exported model folder.

Phases 2–4 (:func:`run_phases`) are shared with ``cfld distill`` (:mod:`cfld.training.distill`).
Works on CPU, one GPU, many GPUs (``accelerate launch --multi_gpu``) and several CPU processes
(``torchrun``; :mod:`cfld.distributed`); any split of the same total batch between processes
and accumulation steps (:class:`~cfld.training.batches.BatchPlan`) gives the same step.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from cfld.checkpoint import write_text_atomic
from cfld.data.datasets import DeepFashionTrain
from cfld.distributed import make_accelerator
from cfld.presets import Preset, get_preset
from cfld.seeding import sample_generators
from cfld.training.batches import BatchPlan, EpochBatchSampler, device_batch
from cfld.training.build import (
    build_autoencoder,
    build_model,
    build_noise_scheduler,
    build_optimizer,
    build_training_data,
    encode_latents,
    place_autoencoder,
)
from cfld.training.config import TrainConfig
from cfld.training.draws import SampleDraws
from cfld.training.export import export_model
from cfld.training.lr_schedule import build_lr_scheduler, decay_boundaries
from cfld.training.objective import training_step_loss
from cfld.training.part_weights import batch_loss_weight
from cfld.training.samples import grid_pairs, write_sample_grid
from cfld.training.state import (
    TrainPosition,
    capture_rng_state,
    checkpoint_dir,
    frozen_fingerprint,
    list_checkpoints,
    load_checkpoint,
    load_trainable_into,
    resolve_resume,
    restore_rng_state,
    save_checkpoint,
)


class TrainingDivergedError(ValueError):
    """The loss became NaN or infinite; the message names the step and what to try."""


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
                pose_tgt: Tensor, timestep_u: Tensor, drop_u: Tensor,
                loss_weight: Tensor | None = None) -> Tensor:
        out = training_step_loss(self.model, self.noise_scheduler, latents, noise, img_cond,
                                 pose_src, pose_tgt, timestep_u, drop_u, **self.objective,
                                 loss_weight=loss_weight)
        return out.loss


@dataclass
class _Run:
    """Everything one invocation of :func:`train` holds (built by :func:`_setup`)."""

    config: TrainConfig  # resolved for this process count (TrainConfig.resolve)
    plan: BatchPlan
    preset: Preset
    accelerator: Any
    run_dir: Path
    model: Any  # the unwrapped CFLDModel
    loss_module: nn.Module
    vae: nn.Module
    vae_dtype: torch.dtype
    noise_scheduler: Any
    dataset: DeepFashionTrain
    sampler: EpochBatchSampler
    optimizer: torch.optim.Optimizer
    lr_scheduler: Any
    fingerprint: list[float]
    total_steps: int
    ckpt_path: Path | None
    position: TrainPosition = field(default_factory=TrainPosition)
    writer: Any = None
    metrics_fh: TextIO | None = None
    grid_batch: dict[str, Tensor] | None = None
    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    window: list[float] = field(default_factory=list)
    last_ckpt: Path | None = None
    last_ckpt_step: int | None = None
    start_step: int = 0
    export_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. a student's defaults

    @property
    def is_main(self) -> bool:
        return bool(self.accelerator.is_main_process)

    @property
    def iters_per_epoch(self) -> int:
        return self.sampler.batches_per_epoch

    @property
    def device(self) -> torch.device:
        return self.accelerator.device


# ==================================================================================== phases
def _setup(config: TrainConfig) -> _Run:
    """Validate, decide what to resume, build model, data and optimiser (seeded)."""
    from accelerate.utils import set_seed

    config.validate()
    if config.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ValueError("mixed precision fp16 needs a CUDA GPU; use --mixed-precision bf16 or "
                         "no on CPU")
    preset = get_preset(config.preset)
    run_dir = Path(config.output_dir)
    accelerator = make_accelerator(mixed_precision=config.mixed_precision)
    rank, world = accelerator.process_index, accelerator.num_processes
    config, plan = config.resolve(world)
    if accelerator.is_main_process:
        print(f"cfld train: {plan.describe()}", flush=True)
    device = accelerator.device
    if device.type == "cuda":  # the official run allows TF32 matmuls (fidelity §6.3)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    # What to resume from is decided before any RNG is consumed.
    ckpt_path = None
    if config.resume:
        ckpt_path = resolve_resume(config.resume, run_dir)
    elif list_checkpoints(run_dir):
        raise ValueError(f"{run_dir} already holds checkpoints of another run; continue it with "
                         "--resume latest or choose a new --out")
    set_seed(config.seed)  # frozen random weights are reproducible
    vae = build_autoencoder(config, preset)
    model = build_model(config, preset)
    if config.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    model.train()
    noise_scheduler = build_noise_scheduler(config.prediction_type)
    vae_dtype = place_autoencoder(vae, device, config.mixed_precision)
    dataset, sampler = build_training_data(config, preset, plan, rank, world)
    # Optimisation (fidelity §6.3).
    fingerprint = frozen_fingerprint(model)
    optimizer = build_optimizer(model.trainable_parameters(), config)
    lr_scheduler = build_lr_scheduler(
        optimizer, config.warmup_steps, config.warmup_rate,
        decay_boundaries(config.decay_epochs, sampler.batches_per_epoch), config.decay_rate)
    loss_module = _LossModule(
        model, noise_scheduler, drop_prob=config.drop_prob, dropout=config.dropout,
        timestep_sampling="cubic" if config.cubic_sampling else "uniform",
        snr_gamma=config.snr_gamma, low_noise_fraction=config.low_noise_fraction,
        low_noise_max_t=config.low_noise_max_t)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    return _Run(
        config=config, plan=plan, preset=preset, accelerator=accelerator, run_dir=run_dir,
        model=accelerator.unwrap_model(loss_module).model, loss_module=loss_module, vae=vae,
        vae_dtype=vae_dtype, noise_scheduler=noise_scheduler, dataset=dataset, sampler=sampler,
        optimizer=optimizer, lr_scheduler=lr_scheduler, fingerprint=fingerprint,
        total_steps=config.max_steps or config.epochs * sampler.batches_per_epoch,
        ckpt_path=ckpt_path)


def _resume(run: _Run) -> None:
    """Restore the checkpoint chosen in :func:`_setup` (if any), refusing a different setup."""
    if run.ckpt_path is None:
        return
    weights, state = load_checkpoint(run.ckpt_path)
    saved_world = len(state["rng"])  # another process count is fine at the same total batch
    run.plan.check_resume(state["config"].get("total_batch_size"), saved_world, run.ckpt_path,
                          note=run.is_main)
    run.config.check_resumable(state["config"])
    if state["frozen_fingerprint"] != run.fingerprint:
        raise ValueError(f"the frozen weights differ from those of the run in {run.ckpt_path} "
                         "(other pretrained files or model code); cannot resume exactly")
    load_trainable_into(run.model, weights)
    run.optimizer.load_state_dict(state["optimizer"])
    run.lr_scheduler.load_state_dict(state["scheduler"])
    rank = run.accelerator.process_index  # the global streams feed no draw (check_resume)
    restore_rng_state(state["rng"][rank % saved_world])
    run.position = TrainPosition(int(state["step"]), int(state["epoch"]),
                                 int(state["batch_in_epoch"]))
    run.last_ckpt, run.last_ckpt_step = run.ckpt_path, run.position.step


def _open_outputs(run: _Run) -> None:
    """The run folder (main process): config.json, metrics.jsonl, TensorBoard, grid pairs."""
    run.start_step = run.position.step
    if not run.is_main:
        return
    config, metrics_path = run.config, run.run_dir / "metrics.jsonl"
    run.run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run.run_dir / "config.json", num_processes=run.accelerator.num_processes)
    if run.ckpt_path is not None:
        _trim_metrics(metrics_path, run.position.step)
    elif metrics_path.exists():
        metrics_path.unlink()
    from cfld.checks.tensorboard import GuardedWriter

    # A full or read-only log folder: one warning, training goes on (metrics.jsonl has it all).
    run.writer = GuardedWriter(run.run_dir / "tensorboard", purge_step=run.position.step)
    if config.sample_every >= 0:  # held-out test pairs, else training pairs
        run.grid_batch = grid_pairs(config.data_root, run.preset, config.sample_count,
                                    fallback=run.dataset)
    run.metrics_fh = metrics_path.open("a", encoding="utf-8")


def _loop(run: _Run) -> None:
    """Optimiser steps until ``total_steps`` (epoch after epoch, from the resumed position)."""
    from tqdm.auto import tqdm

    config, position = run.config, run.position
    bar = tqdm(total=run.total_steps, initial=position.step, desc="train", unit="step",
               disable=not (config.progress and run.is_main), dynamic_ncols=True)
    try:
        while position.step < run.total_steps:
            run.sampler.set_epoch(position.epoch, start=position.batch_in_epoch)
            run.dataset.set_epoch(position.epoch)
            loader = DataLoader(run.dataset, batch_sampler=run.sampler,
                                num_workers=config.num_workers,
                                pin_memory=run.device.type == "cuda",
                                generator=torch.Generator().manual_seed(config.seed))
            micro: list[dict[str, Tensor]] = []
            for batch in loader:
                micro.append(device_batch(batch, run.device))
                if len(micro) < run.plan.accumulation:
                    continue
                value, lr = _step(run, micro)
                micro = []
                position.step += 1
                position.batch_in_epoch += 1
                if position.batch_in_epoch >= run.iters_per_epoch:
                    position.epoch += 1
                    position.batch_in_epoch = 0
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}", refresh=False)
                _after_step(run, value, lr)
                if position.step >= run.total_steps:
                    break
    finally:
        bar.close()


def _micro_loss(run: _Run, b: dict[str, Tensor], draws: SampleDraws) -> Tensor:
    """The loss of one micro-batch, every random draw from its pairs' streams."""
    device = run.device
    images = torch.cat([b["img_src"], b["img_tgt"]]).to(run.vae_dtype)
    latents = encode_latents(run.vae, images, draws=draws)
    noise = draws.normal(latents.shape[1:]).to(device)
    timestep_u, drop_u = draws.uniform().to(device), draws.uniform().to(device)
    # Part-balanced weights (cfld train only; a distillation's loss takes none).
    weight = batch_loss_weight(b, getattr(run.config, "part_balance", 0.0), latents)
    with run.accelerator.autocast(), sample_generators(draws.drop_path):
        return run.loss_module(latents, noise, b["img_cond"], b["pose_img_src"],
                               b["pose_img_tgt"], timestep_u, drop_u,
                               *(() if weight is None else (weight,)))


def _step(run: _Run, micro: list[dict[str, Tensor]]) -> tuple[float, float]:
    """One optimiser step over this process's micro-batches (gradients averaged over all
    processes and micro-batches); returns (loss over all processes, LR used)."""
    lr = float(run.lr_scheduler.get_last_lr()[0])
    accelerator, rank = run.accelerator, run.accelerator.process_index
    total = torch.zeros((), device=run.device)
    for a, b in enumerate(micro):
        draws = SampleDraws(run.config.seed, run.position.step, run.plan.sample_indices(a, rank))
        last = a == len(micro) - 1  # gradients are all-reduced once, after the last one
        with nullcontext() if last else accelerator.no_sync(run.loss_module):
            loss = _micro_loss(run, b, draws)
            accelerator.backward(loss / len(micro))
        total += loss.detach().float()
    value = float(accelerator.reduce(total / len(micro), reduction="mean"))
    if not math.isfinite(value):
        p = run.position
        where = f"; the last checkpoint is {run.last_ckpt}" if run.last_ckpt else ""
        raise TrainingDivergedError(
            f"the training loss is {value} at step {p.step + 1} (epoch {p.epoch}, lr {lr:.3g}): "
            f"the run diverged. Lower the learning rate (--lr) or train in full precision "
            f"(--mixed-precision no){where}")
    run.optimizer.step()
    run.lr_scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return value, lr


def _after_step(run: _Run, value: float, lr: float) -> None:
    """Log the step; checkpoint and draw a grid when they are due."""
    config, step = run.config, run.position.step
    run.losses.append(value)
    run.lrs.append(lr)
    run.window.append(value)
    if run.metrics_fh is not None:
        run.metrics_fh.write(json.dumps({"step": step, "epoch": run.position.epoch,
                                         "loss": value, "lr": lr}) + "\n")
        run.metrics_fh.flush()  # every step: a kill loses nothing that was logged
    if run.writer is not None and (step % config.log_every == 0 or step == run.total_steps):
        run.writer.add_scalar("train/loss", value, step)
        run.writer.add_scalar("train/loss_avg", sum(run.window) / len(run.window), step)
        run.writer.add_scalar("train/lr", lr, step)
        run.writer.flush()
        if run.metrics_fh is not None:
            run.metrics_fh.flush()
        run.window = []
    if config.checkpoint_every > 0 and step % config.checkpoint_every == 0:
        run.last_ckpt, run.last_ckpt_step = _checkpoint(run), step
    if config.sample_every > 0 and step % config.sample_every == 0:
        _grid(run)


def _finish(run: _Run) -> Path | None:
    """The last checkpoint and grid (unless just written) and the exported model folder."""
    config, step = run.config, run.position.step
    if config.checkpoint_every >= 0 and run.last_ckpt_step != step:
        run.last_ckpt = _checkpoint(run)
    if config.sample_every >= 0 and not (config.sample_every > 0
                                         and step % config.sample_every == 0):
        _grid(run)
    model_dir = None
    if config.export and run.is_main:
        model_dir = export_model(run.run_dir / "model", run.model, run.vae, run.noise_scheduler,
                                 run.preset.test_size, **run.export_kwargs)
    run.accelerator.wait_for_everyone()
    return model_dir


def train(config: TrainConfig) -> dict[str, Any]:
    """Train CFLD as configured; return a summary.

    Returns:
        ``{"output_dir", "steps", "start_step", "losses" (this invocation's, one per step, mean
        over processes), "lrs", "seconds", "seconds_per_step", "checkpoint", "model_dir",
        "iters_per_epoch", "num_processes", "batch_size" (per process), "total_batch_size", "lr"}``.

    Raises:
        ValueError: bad configuration (named), e.g. a full preset without ``pretrained_sd``.
        FileNotFoundError: missing data or pretrained files.
        TrainingDivergedError: the loss became NaN/inf.
    """
    return run_phases(_setup(config))


def run_phases(run: _Run) -> dict[str, Any]:  # resume, outputs, loop, finish → the summary
    _resume(run)
    _open_outputs(run)
    started = time.perf_counter()
    try:
        _loop(run)
        model_dir = _finish(run)
    finally:
        if run.metrics_fh is not None:
            run.metrics_fh.close()
        if run.writer is not None:
            run.writer.close()
    elapsed = time.perf_counter() - started
    done = run.position.step - run.start_step
    return {
        "output_dir": str(run.run_dir),
        "steps": run.position.step,
        "start_step": run.start_step,
        "losses": run.losses,
        "lrs": run.lrs,
        "seconds": elapsed,
        "seconds_per_step": elapsed / done if done else float("nan"),
        "checkpoint": str(run.last_ckpt) if run.last_ckpt else None,
        "model_dir": str(model_dir) if model_dir else None,
        "iters_per_epoch": run.iters_per_epoch,
        "num_processes": run.plan.processes,
        "batch_size": run.plan.per_process,
        "total_batch_size": run.plan.total,
        "lr": run.plan.lr,
    }


# ==================================================================================== helpers
def _grid(run: _Run) -> None:
    if run.is_main and run.grid_batch is not None:
        write_sample_grid(run.run_dir / "samples" / f"step_{run.position.step:08d}.png",
                          run.model, run.vae, run.grid_batch, run.config.sample_steps,
                          run.config.seed, run.config.prediction_type)


def _checkpoint(run: _Run) -> Path:
    states = [capture_rng_state()]
    if run.accelerator.num_processes > 1:
        from accelerate.utils import gather_object
        states = gather_object(states)
    path = None
    if run.is_main:
        path = save_checkpoint(run.run_dir, model=run.model, optimizer=run.optimizer,
                               scheduler=run.lr_scheduler, position=run.position,
                               rng_states=states, fingerprint=run.fingerprint,
                               config=run.config.to_dict(),
                               extra={"iters_per_epoch": run.iters_per_epoch,
                                      "total_steps": run.total_steps},
                               keep=run.config.keep_checkpoints)
    run.accelerator.wait_for_everyone()
    return path or checkpoint_dir(run.run_dir, run.position.step)


def _trim_metrics(path: Path, step: int) -> None:
    """Drop metric lines after ``step`` (written after the checkpoint we resume from)."""
    if not path.is_file():
        return
    keep = []
    for ln in path.read_text(encoding="utf-8").splitlines():
        try:
            keep += [ln] if json.loads(ln).get("step", 0) <= step else []
        except json.JSONDecodeError:  # the unfinished last line of a killed run
            continue
    write_text_atomic(path, "".join(ln + "\n" for ln in keep))


__all__ = ["TrainingDivergedError", "export_model", "run_phases", "train"]
