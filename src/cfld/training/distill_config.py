"""Configuration of ``cfld distill``: one dataclass, written as ``config.json`` into the run
folder and stored in every checkpoint (as :class:`~cfld.training.config.TrainConfig` is).

It offers the fields the shared training phases read (:func:`cfld.training.loop.run_phases`:
batch, optimiser, logging, checkpoints, resume), plus the distillation's own.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfld.checks.numbers import GUIDANCE_SCALE, Number
from cfld.training.batches import BatchPlan, resolve_batch_plan
from cfld.training.config import MIXED_PRECISION_MODES, RUN_RECORD_KEYS
from cfld.training.rules import TRAIN_RULES

OBJECTIVES = ("lcd", "guidance")
LOSSES = ("l2", "huber")
#: Fields that must agree between an interrupted distillation and its resumption.
RESUME_MUST_MATCH = ("teacher", "data_root", "objective", "solver_steps", "scale_pose_range",
                     "scale_app_range", "guidance_embedding_dim", "loss", "huber_c", "ema_decay",
                     "init_student", "batch_size", "total_batch_size",
                     "gradient_accumulation_steps", "seed", "flip_p")

_STEPS_RULE = Number("num_inference_steps", integer=True, lo=1, hi=8, example="4")
DISTILL_RULES: dict[str, Number] = {
    **{k: v for k, v in TRAIN_RULES.items() if k in (
        "batch_size", "total_batch_size", "gradient_accumulation_steps", "max_steps", "lr",
        "adam_betas", "adam_eps", "weight_decay", "warmup_steps", "warmup_rate", "flip_p", "seed",
        "log_every", "sample_every", "sample_count", "checkpoint_every", "keep_checkpoints",
        "num_workers")},
    "num_inference_steps": _STEPS_RULE,
    "solver_steps": Number("solver_steps", integer=True, lo=2, hi=1000, example="50"),
    "scale_pose_range": GUIDANCE_SCALE.named("scale_pose_range"),
    "scale_app_range": GUIDANCE_SCALE.named("scale_app_range"),
    "scale_pose": GUIDANCE_SCALE.named("scale_pose"),
    "scale_app": GUIDANCE_SCALE.named("scale_app"),
    "guidance_embedding_dim": Number("guidance_embedding_dim", integer=True, lo=4, hi=4096,
                                     example="64"),
    "huber_c": Number("huber_c", lo=0, hi=10, lo_open=True, example="0.001"),
    "ema_decay": Number("ema_decay", lo=0, hi=0.9999, example="0.95"),
}


@dataclass
class DistillConfig:
    """Everything a distillation run needs.

    Attributes:
        teacher: The guided model to distil: a pipeline folder (``cfld train``'s ``model/``) or
            a shipped model's name (cfld-synthetic).
        data_root: DeepFashion-layout root (real or ``cfld data synth``) whose pairs give the
            images, source photos and poses the student learns on.
        output_dir: Run folder: config.json, checkpoints/, samples/, tensorboard/, model/.
        objective: ``lcd`` (latent consistency distillation of Eq. 7 guidance and the sampler
            into few steps, Luo et al. 2023) or ``guidance`` (Meng et al. 2023 stage 1: the
            student's one-branch output matches the teacher's Eq. 7 prediction at the same t).
        num_inference_steps: LCM steps the student is made for; recorded as its default (<= 8).
        solver_steps: The teacher's DDIM grid of LCD (skip k = 1000 / solver_steps timesteps).
        scale_pose_range, scale_app_range: Ranges [lo, hi] the Eq. 7 scales w_pose, w_app are
            drawn from (uniformly, independently) for each sample.
        scale_pose, scale_app: The scales the exported student uses by default.
        guidance_embedding_dim: Size of the guidance embedding (UNet time_cond_proj_dim).
        loss: ``l2`` or ``huber`` (pseudo-Huber, LCM's choice) on the consistency outputs.
        huber_c: c of the pseudo-Huber loss sqrt(d² + c²) − c.
        ema_decay: μ of ``lcd``'s target network, an EMA of the student's UNet updated after
            every optimiser step (LCM: 0.95); 0 = the student itself under stop-gradient.
        init_student: Continue from a distilled folder (e.g. a ``guidance`` run's model/)
            instead of the teacher plus a zero guidance embedding.
        batch_size: Pairs per micro-batch and process (2 UNet samples each); None = 8.
        total_batch_size: Pairs per optimiser step over processes and accumulation steps.
        gradient_accumulation_steps: Micro-batches per optimiser step and process.
        max_steps: Optimiser steps of the distillation.
        lr, adam_betas, adam_eps, weight_decay: Adam settings (the student's UNet is trained).
        fused_adam: Use torch's fused Adam kernel where available.
        warmup_steps, warmup_rate: Linear LR warm-up from warmup_rate·lr (then constant).
        flip_p: Probability of flipping the source fed to the encoders.
        mixed_precision: ``no``, ``fp16`` (CUDA) or ``bf16``.
        seed: Seed of the data order and every random draw.
        log_every: Steps between TensorBoard scalars.
        sample_every: Steps between sample grids (0 = at the end; -1 = never).
        sample_count: Pairs in a sample grid.
        checkpoint_every: Steps between checkpoints (0 = at the end; -1 = never).
        keep_checkpoints: Checkpoints kept (the newest).
        num_workers: DataLoader workers.
        resume: A checkpoint folder, a run folder, ``latest`` (in output_dir) or None.
        export: Write the distilled pipeline folder (output_dir/model).
        progress: Show a progress bar.
        prediction_type: The teacher's parameterisation (None: read from the teacher; a run
            records it).
    """

    teacher: str | None = None
    data_root: str | None = None
    output_dir: str = "outputs/cfld-distill"
    objective: str = "lcd"
    num_inference_steps: int = 4
    solver_steps: int = 50
    scale_pose_range: tuple[float, float] = (1.0, 3.0)
    scale_app_range: tuple[float, float] = (1.0, 3.0)
    scale_pose: float = 2.0
    scale_app: float = 2.0
    guidance_embedding_dim: int = 64
    loss: str = "l2"
    huber_c: float = 0.001
    ema_decay: float = 0.95
    init_student: str | None = None
    batch_size: int | None = None
    total_batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    max_steps: int = 1000
    lr: float = 1e-5
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    fused_adam: bool = True
    warmup_steps: int = 100
    warmup_rate: float = 0.1
    flip_p: float = 0.5
    mixed_precision: str = "no"
    seed: int = 3407
    log_every: int = 10
    sample_every: int = 500
    sample_count: int = 4
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    num_workers: int = 0
    resume: str | None = None
    export: bool = True
    progress: bool = True
    prediction_type: str | None = None

    def __post_init__(self) -> None:
        for name in ("scale_pose_range", "scale_app_range", "adam_betas"):
            value = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, tuple(value))

    @property
    def sample_steps(self) -> int:
        """Steps of the sample grids: the student's own."""
        return self.num_inference_steps

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        from cfld.checks.fields import check_fields

        check_fields(self, DISTILL_RULES)
        for name, value in (("teacher", self.teacher), ("data_root", self.data_root)):
            if value is None:
                raise ValueError(f"{name} is required (--{name.split('_')[0]})")
        choices = {"objective": OBJECTIVES, "loss": LOSSES,
                   "mixed_precision": MIXED_PRECISION_MODES}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        for name in ("scale_pose_range", "scale_app_range"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name} must be (lo, hi) with lo <= hi, got ({lo}, {hi})")
        if self.guidance_embedding_dim % 4:
            raise ValueError("guidance_embedding_dim must be a multiple of 4 (sin and cos of "
                             f"two scales), got {self.guidance_embedding_dim}")
        if self.num_inference_steps > self.solver_steps:
            raise ValueError(f"num_inference_steps {self.num_inference_steps} must not exceed "
                             f"solver_steps {self.solver_steps} (LCM picks its steps on that grid)")

    # ------------------------------------------------------------------ what the phases call
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        for name in ("scale_pose_range", "scale_app_range", "adam_betas"):
            out[name] = list(out[name])
        return out

    def resolve(self, num_processes: int, prediction_type: str) -> tuple[DistillConfig,
                                                                           BatchPlan]:
        """This configuration for ``num_processes`` processes and the teacher's
        parameterisation, and its batch plan."""
        plan = resolve_batch_plan(self.batch_size, self.total_batch_size,
                                  self.gradient_accumulation_steps, num_processes, self.lr)
        return dataclasses.replace(self, batch_size=plan.per_process, total_batch_size=plan.total,
                                   prediction_type=prediction_type), plan

    def check_resumable(self, saved: dict[str, Any]) -> None:
        """Raise ValueError naming every field of :data:`RESUME_MUST_MATCH` that differs."""
        current = self.to_dict()
        diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}"
                 for k in RESUME_MUST_MATCH if saved.get(k) != current.get(k)]
        if diffs:
            raise ValueError("cannot resume exactly with a different setup (" + "; ".join(diffs)
                             + "); use the interrupted run's settings")

    def save(self, path: str | os.PathLike, **record: Any) -> Path:
        """Write the configuration as JSON (atomically) with the run facts ``record``."""
        from cfld.checkpoint import write_text_atomic

        unknown = sorted(set(record) - set(RUN_RECORD_KEYS))
        if unknown:
            raise ValueError(f"not a run record key: {unknown}; use {RUN_RECORD_KEYS}")
        return write_text_atomic(
            path, json.dumps({**self.to_dict(), **record}, indent=2, sort_keys=True) + "\n")

    def sampling_defaults(self) -> dict[str, Any]:
        """What the exported folder records (:mod:`cfld.pipelines.distilled`)."""
        return {"num_inference_steps": self.num_inference_steps, "guidance_type": "none",
                "scale_pose": self.scale_pose, "scale_app": self.scale_app}


__all__ = ["DISTILL_RULES", "LOSSES", "OBJECTIVES", "RESUME_MUST_MATCH", "DistillConfig"]
