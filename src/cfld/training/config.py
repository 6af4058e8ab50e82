"""Training configuration: one dataclass, every field defaulting to the authors' (fidelity §6).

The resolved configuration is written as ``config.json`` into the output folder at the start of
a run and stored in every checkpoint, so a run can be inspected and resumed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfld.training.batches import BatchPlan, resolve_batch_plan
from cfld.training.objective import DROPOUT_MODES

MIXED_PRECISION_MODES = ("no", "fp16", "bf16")
#: Fields that must agree between an interrupted run and its resumption (the model, the data
#: order or the random draws depend on them).  The per-process ``batch_size`` and
#: ``gradient_accumulation_steps`` may differ: a step is its total batch, however divided.
RESUME_MUST_MATCH = ("preset", "trainable", "model_overrides", "total_batch_size", "seed",
                     "init_unet", "init_from", "pretrained_sd", "pretrained_swin", "data_root")
#: Facts a run writes into its config.json beside the fields (ignored when it is read back).
RUN_RECORD_KEYS = ("num_processes",)
TRAINABLE_CHOICES = ("official", "all")


@dataclass
class TrainConfig:
    """Everything a training run needs.

    Optimisation (fidelity §6.3): Adam, ``lr`` 1e-4, betas (0.9, 0.999), eps 1e-8, no weight decay,
    no gradient clipping; linear warm-up from ``warmup_rate``·lr over ``warmup_steps`` optimiser
    steps, then ×``decay_rate`` at each epoch of ``decay_epochs`` (per-iteration boundaries).

    Attributes:
        preset: Model preset (:func:`cfld.presets.get_preset`).
        data_root: Prepared DeepFashion-layout root (real or ``cfld data synth``).
        output_dir: Run folder: config.json, checkpoints/, samples/, tensorboard/, model/.
        pretrained_sd: Stable Diffusion 1.5 folder (UNet init + VAE); required for ``sd_vae``
            presets.
        pretrained_swin: Microsoft Swin-B checkpoint for H_S (full presets).
        init_unet: Initialise the UNet from ``pretrained_sd`` (official); off = random UNet.
        init_from: Fine-tune: start from the weights of this CFLD model folder (a ``model/``
            folder or the pipeline folder holding it) with a fresh optimiser and LR schedule.
            The architecture must equal the preset's (+ overrides); a mismatch is an error.
        trainable: ``official`` (all but the UNet, + up-block attn2 W_k/W_v), ``all``, or
            ``None`` = the preset's choice.
        model_overrides: Extra CFLDModel keyword arguments merged over the preset's (advanced).
        batch_size: Pairs per micro-batch and process (2× UNet samples); ``None`` = 8, or
            ``total_batch_size`` / (processes × ``gradient_accumulation_steps``) when that is set.
        total_batch_size: Pairs per optimiser step over all processes and accumulation steps
            (the authors' INPUT.BATCH_SIZE, 224 on 8 GPUs), split by processes ×
            ``gradient_accumulation_steps`` (fidelity §6.3); a run records the resolved value.
        gradient_accumulation_steps: Micro-batches per optimiser step and process.
        scale_lr: The paper's rule: learning rate 5e-7 × total batch instead of ``lr`` (the
            authors' code uses 1e-4 as is).
        epochs: Epochs (100); ignored when ``max_steps`` is set.
        max_steps: Total optimiser steps (overrides ``epochs``).
        lr, adam_betas, adam_eps, weight_decay: Adam settings.
        fused_adam: Use torch's fused Adam kernel when the device supports it (same rule).
        warmup_steps, warmup_rate, decay_epochs, decay_rate: LR schedule (fidelity §6.3).
        drop_prob: Classifier-free dropout η (0.2).
        dropout: ``official`` (prompt only) or ``paper`` (prompt, biases and pose).
        cubic_sampling: Cubic timestep sampling (official) instead of uniform.
        prediction_type: What the network predicts: ``epsilon`` (official), ``sample`` (the
            clean latent) or ``v_prediction``; stored in the exported scheduler config.
        snr_gamma: Min-SNR-γ loss weighting (x0-space weight min(SNR, γ)); ``None`` = the
            official equal weights.
        low_noise_fraction: Share of samples whose timestep is drawn uniformly from
            [0, ``low_noise_max_t``) instead of by the sampler above (0 = official). Fine-tunes
            the low-noise steps that draw the edges (the shipped model's last stage).
        low_noise_max_t: Upper end (exclusive) of that low-noise range.
        part_balance: β of the part-balanced loss (0 = official equal weights): a latent
            cell's squared error is weighted by its pixels' ``area(part)^-β``
            (:mod:`cfld.training.part_weights`); needs a root with ``train_parts/`` label maps.
        flip_p: Probability of flipping the source fed to H_S.
        mixed_precision: ``no``, ``fp16`` (CUDA only) or ``bf16``.
        gradient_checkpointing: Checkpoint the UNet blocks (saves memory, costs compute).
        seed: Seed of the model init, the data order and the trainer's generator (3407).
        log_every: Steps between TensorBoard scalars / progress-bar updates.
        sample_every: Steps between sample grids (0 = only at the end; <0 = never).
        sample_count: Pairs in a sample grid.
        sample_steps: Denoising steps for sample grids.
        checkpoint_every: Steps between checkpoints (0 = only at the end; -1 = never).
        keep_checkpoints: Checkpoints kept (the newest).
        num_workers: DataLoader workers.
        resume: A checkpoint folder, a run folder, ``"latest"`` (in ``output_dir``) or None.
            Another process count may resume it at the same ``total_batch_size``.
        export: Write the final model folder (``output_dir/model``).
        progress: Show a tqdm progress bar.
    """

    preset: str = "synthetic"
    data_root: str | None = None
    output_dir: str = "outputs/cfld-train"
    pretrained_sd: str | None = None
    pretrained_swin: str | None = None
    init_unet: bool = True
    init_from: str | None = None
    trainable: str | None = None
    model_overrides: dict[str, Any] = field(default_factory=dict)

    batch_size: int | None = None
    total_batch_size: int | None = None
    gradient_accumulation_steps: int = 1
    scale_lr: bool = False
    epochs: int = 100
    max_steps: int | None = None
    lr: float = 1e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    fused_adam: bool = True
    warmup_steps: int = 1000
    warmup_rate: float = 0.1
    decay_epochs: tuple[float, ...] = (50,)
    decay_rate: float = 0.1

    drop_prob: float = 0.2
    dropout: str = "official"
    cubic_sampling: bool = True
    prediction_type: str = "epsilon"
    snr_gamma: float | None = None
    low_noise_fraction: float = 0.0
    low_noise_max_t: int = 100
    part_balance: float = 0.0
    flip_p: float = 0.5

    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    seed: int = 3407

    log_every: int = 10
    sample_every: int = 1000
    sample_count: int = 4
    sample_steps: int = 25
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    num_workers: int = 0
    resume: str | None = None
    export: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        # Normalise numbers only; anything else is left for validate() to name (never coerced).
        def real(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        if isinstance(self.adam_betas, (list, tuple)):
            self.adam_betas = tuple(float(b) if real(b) else b for b in self.adam_betas)
        if isinstance(self.decay_epochs, (list, tuple)):
            self.decay_epochs = tuple((int(e) if float(e).is_integer() else float(e))
                                      if real(e) else e for e in self.decay_epochs)
        if self.model_overrides is None:
            self.model_overrides = {}

    def validate(self) -> None:
        """Raise ValueError naming the first bad field (types and numeric ranges by
        :data:`cfld.training.rules.TRAIN_RULES`, then the choices)."""
        from cfld.checks.fields import check_fields
        from cfld.presets import PRESETS
        from cfld.training.rules import TRAIN_RULES

        check_fields(self, TRAIN_RULES)

        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        if self.data_root is None:
            raise ValueError("data_root is required (a DeepFashion-layout root, e.g. from "
                             "`cfld data synth`)")
        if self.trainable is not None and self.trainable not in TRAINABLE_CHOICES:
            raise ValueError(f"trainable must be one of {TRAINABLE_CHOICES}, "
                             f"got {self.trainable!r}")
        if self.snr_gamma is not None and not self.snr_gamma > 0:
            raise ValueError(f"snr_gamma must be positive (e.g. 5) or None, got {self.snr_gamma}")
        if not 0 <= self.low_noise_fraction < 1:
            raise ValueError("low_noise_fraction must be in [0, 1) (e.g. 0.8; 0 = off), got "
                             f"{self.low_noise_fraction}")
        if not 1 <= self.low_noise_max_t <= 1000:
            raise ValueError("low_noise_max_t must be in [1, 1000] (e.g. 100), got "
                             f"{self.low_noise_max_t}")
        if self.prediction_type not in ("epsilon", "sample", "v_prediction"):
            raise ValueError(f"prediction_type must be epsilon, sample or v_prediction, got "
                             f"{self.prediction_type!r}")
        if self.dropout not in DROPOUT_MODES:
            raise ValueError(f"dropout must be one of {DROPOUT_MODES}, got {self.dropout!r}")
        if self.mixed_precision not in MIXED_PRECISION_MODES:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION_MODES}, "
                             f"got {self.mixed_precision!r}")
        positive = {"epochs": self.epochs, "log_every": self.log_every,
                    "keep_checkpoints": self.keep_checkpoints, "sample_steps": self.sample_steps,
                    "sample_count": self.sample_count,
                    "gradient_accumulation_steps": self.gradient_accumulation_steps}
        for name in ("batch_size", "total_batch_size"):
            if getattr(self, name) is not None:
                positive[name] = getattr(self, name)
        for name, value in positive.items():
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0 or not 0 < self.warmup_rate <= 1:
            raise ValueError("warmup_steps must be >= 0 and warmup_rate in (0, 1]")
        if not 0.0 <= self.drop_prob <= 1.0:
            raise ValueError(f"drop_prob must be in [0, 1], got {self.drop_prob}")
        if not 0.0 <= self.flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {self.flip_p}")
        if self.checkpoint_every < -1:
            raise ValueError(f"checkpoint_every must be >= -1, got {self.checkpoint_every}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["adam_betas"] = list(self.adam_betas)
        out["decay_epochs"] = list(self.decay_epochs)
        return out

    def resolve(self, num_processes: int) -> tuple[TrainConfig, BatchPlan]:
        """This configuration for ``num_processes`` processes: ``batch_size``,
        ``total_batch_size`` and ``lr`` as the run uses them, and the batch plan."""
        plan = resolve_batch_plan(self.batch_size, self.total_batch_size,
                                  self.gradient_accumulation_steps, num_processes, self.lr,
                                  self.scale_lr)
        return dataclasses.replace(self, batch_size=plan.per_process,
                                   total_batch_size=plan.total, lr=plan.lr), plan

    def check_resumable(self, saved: dict[str, Any]) -> None:
        """Raise ValueError naming every field of :data:`RESUME_MUST_MATCH` on which this
        (resolved) configuration differs from a checkpoint's ``saved`` one."""
        current = self.to_dict()
        diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}"
                 for k in RESUME_MUST_MATCH if saved.get(k) != current.get(k)]
        if diffs:
            raise ValueError("cannot resume exactly with a different setup (" + "; ".join(diffs)
                             + "); use the interrupted run's settings")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (facts a run records beside
        its configuration, :data:`RUN_RECORD_KEYS`, are dropped)."""
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k not in RUN_RECORD_KEYS}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}")
        return cls(**data)

    def save(self, path: str | os.PathLike, **record: Any) -> Path:
        """Write the configuration as JSON (atomically), with the run facts ``record`` (keys of
        :data:`RUN_RECORD_KEYS`, e.g. ``num_processes``) beside the fields."""
        from cfld.checkpoint import write_text_atomic

        unknown = sorted(set(record) - set(RUN_RECORD_KEYS))
        if unknown:
            raise ValueError(f"not a run record key: {unknown}; use {RUN_RECORD_KEYS}")
        return write_text_atomic(
            path, json.dumps({**self.to_dict(), **record}, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a configuration written by :meth:`save`."""
        from cfld.checks.files import read_json

        data = read_json(path, "training configuration")
        if not isinstance(data, dict):
            raise ValueError(f"training configuration {path} must be a JSON object of fields")
        return cls.from_dict(data)
