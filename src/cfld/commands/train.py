"""`cfld train`: train CFLD on a DeepFashion-layout root (real or procedural).

Parses the flags into a :class:`cfld.training.TrainConfig` and calls
:func:`cfld.training.train`.  Multi-GPU: ``accelerate launch -m cfld.cli train ...``.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cfld.training.config import TrainConfig


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` parser."""
    from cfld.training.config import MIXED_PRECISION_MODES, TRAINABLE_CHOICES, TrainConfig
    from cfld.training.objective import DROPOUT_MODES

    d = TrainConfig()
    p = subparsers.add_parser(
        "train", help="train a CFLD model",
        description="Train CFLD (official recipe: Adam 1e-4, warm-up 1000 steps from 0.1x, "
                    "x0.1 at epoch 50, 100 epochs, cubic timesteps, 20%% prompt dropout). "
                    "Writes config.json, checkpoints/, samples/, tensorboard/ and the final "
                    "model/ folder into --out.")
    p.add_argument("--preset", default=d.preset,
                   help=f"model preset (default {d.preset}; fashion_256/fashion_512 need "
                        "--pretrained-sd)")
    p.add_argument("--data", required=True, help="data root (DeepFashion layout, or "
                                                  "`cfld data synth` output)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--max-steps", type=_positive_int, default=None,
                   help="total optimiser steps (overrides --epochs)")
    p.add_argument("--epochs", type=_positive_int, default=d.epochs,
                   help=f"epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size,
                   help=f"pairs per step and process (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"base learning rate (default {d.lr})")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps,
                   help=f"linear warm-up steps from 0.1x (default {d.warmup_steps})")
    p.add_argument("--decay-epochs", type=float, nargs="*", default=list(d.decay_epochs),
                   help="epochs (fractions allowed) at which the LR is multiplied by 0.1 "
                        "(default 50)")
    p.add_argument("--mixed-precision", choices=MIXED_PRECISION_MODES, default=d.mixed_precision,
                   help="no (default), fp16 (CUDA) or bf16")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="checkpoint the UNet blocks (less memory, slower)")
    p.add_argument("--trainable", choices=TRAINABLE_CHOICES, default=None,
                   help="official: all but the UNet + its up-block W_k/W_v; all: everything "
                        "(default: the preset's)")
    p.add_argument("--dropout", choices=DROPOUT_MODES, default=d.dropout,
                   help="classifier-free dropout: official (prompt only) or paper (prompt, "
                        "appearance and pose)")
    p.add_argument("--drop-prob", type=float, default=d.drop_prob,
                   help=f"dropout probability (default {d.drop_prob})")
    p.add_argument("--prediction-type", default="epsilon",
                   choices=("epsilon", "sample", "v_prediction"),
                   help="network target: epsilon (official), sample (x0) or v_prediction — the "
                        "latter two for models trained from scratch")
    p.add_argument("--snr-gamma", type=float, default=None, metavar="GAMMA",
                   help="Min-SNR-γ loss weighting, e.g. 5 (default: the official equal weights)")
    p.add_argument("--low-noise-fraction", type=float, default=d.low_noise_fraction,
                   metavar="F",
                   help="share of samples whose timestep is drawn uniformly from [0, "
                        "--low-noise-max-t) instead, e.g. 0.8 to fine-tune the low-noise steps "
                        "that draw edges (default 0: off, official)")
    p.add_argument("--low-noise-max-t", type=int, default=d.low_noise_max_t, metavar="T",
                   help=f"upper end of that range (default {d.low_noise_max_t})")
    p.add_argument("--uniform-timesteps", action="store_true",
                   help="uniform instead of the official cubic timestep sampling")
    p.add_argument("--init-from", default=None, metavar="MODEL_DIR",
                   help="fine-tune: start from the weights of a finished run's model folder "
                        "(RUN/model) with a fresh optimiser and LR schedule")
    p.add_argument("--resume", default=None,
                   help="checkpoint folder, run folder, or 'latest' (newest in --out; starts "
                        "fresh when there is none)")
    p.add_argument("--log-every", type=_positive_int, default=d.log_every,
                   help=f"steps between logged scalars (default {d.log_every})")
    p.add_argument("--sample-every", type=int, default=d.sample_every,
                   help=f"steps between sample grids (default {d.sample_every}; 0: only at the "
                        "end; -1: never)")
    p.add_argument("--sample-steps", type=_positive_int, default=d.sample_steps,
                   help=f"denoising steps of sample grids (default {d.sample_steps})")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help=f"steps between checkpoints (default {d.checkpoint_every}; 0: only at "
                        "the end; -1: never)")
    p.add_argument("--keep-checkpoints", type=_positive_int, default=d.keep_checkpoints,
                   help=f"checkpoints kept (default {d.keep_checkpoints})")
    p.add_argument("--pretrained-sd", default=None,
                   help="Stable Diffusion 1.5 folder or hub id (UNet init + VAE)")
    p.add_argument("--pretrained-swin", default=None,
                   help="Swin-B ImageNet checkpoint (.pth/.safetensors) for the source encoder")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed (default {d.seed})")
    p.add_argument("--num-workers", type=int, default=d.num_workers,
                   help=f"data loader workers (default {d.num_workers})")
    p.add_argument("--no-export", action="store_true", help="do not write the model/ folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` described by the parsed flags."""
    from cfld.training.config import TrainConfig

    return TrainConfig(
        preset=args.preset, data_root=args.data, output_dir=args.out,
        pretrained_sd=args.pretrained_sd, pretrained_swin=args.pretrained_swin,
        init_from=args.init_from, trainable=args.trainable, batch_size=args.batch_size,
        epochs=args.epochs,
        max_steps=args.max_steps, lr=args.lr, warmup_steps=args.warmup_steps,
        decay_epochs=tuple(args.decay_epochs), drop_prob=args.drop_prob, dropout=args.dropout,
        cubic_sampling=not args.uniform_timesteps, snr_gamma=args.snr_gamma,
        low_noise_fraction=args.low_noise_fraction, low_noise_max_t=args.low_noise_max_t,
        mixed_precision=args.mixed_precision,
        prediction_type=args.prediction_type,
        gradient_checkpointing=args.gradient_checkpointing, seed=args.seed,
        log_every=args.log_every, sample_every=args.sample_every,
        sample_steps=args.sample_steps, checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints, num_workers=args.num_workers,
        resume=args.resume, export=not args.no_export, progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    """Train; print a one-line JSON summary."""
    from cfld.training.trainer import train

    result = train(config_from_args(args))
    losses = result["losses"]
    summary = {
        "output_dir": result["output_dir"],
        "steps": result["steps"],
        "final_loss": losses[-1] if losses else None,
        "seconds_per_step": round(result["seconds_per_step"], 4) if losses else None,
        "checkpoint": result["checkpoint"],
        "model_dir": result["model_dir"],
    }
    print(json.dumps(summary))
    return 0
