"""The numeric rules of :class:`~cfld.training.TrainConfig`'s fields: used by
``TrainConfig.validate`` and as the ``type=`` of each ``cfld train`` flag, so a value is refused
with the same words from a flag, ``--set`` or a ``--config`` file."""

from __future__ import annotations

from cfld.checks.numbers import MAX_BATCH, SEED, STEPS, Number


def _int(name: str, lo: int, hi: int | None = None, example: str = "") -> Number:
    return Number(name, integer=True, lo=lo, hi=hi, example=example)


TRAIN_RULES: dict[str, Number] = {
    "batch_size": _int("batch_size", 1, MAX_BATCH, "8"),
    "total_batch_size": _int("total_batch_size", 1, 10**7, "224"),
    "gradient_accumulation_steps": _int("gradient_accumulation_steps", 1, 10**4, "1"),
    "epochs": _int("epochs", 1, 10**6, "100"),
    "max_steps": _int("max_steps", 1, 10**10, "1000"),
    "lr": Number("lr", lo=0, hi=1, lo_open=True, example="1e-4"),
    "adam_betas": Number("adam_betas", lo=0, hi=1, hi_open=True, example="0.9 0.999"),
    "adam_eps": Number("adam_eps", lo=0, hi=1, lo_open=True, example="1e-8"),
    "weight_decay": Number("weight_decay", lo=0, hi=1e3, example="0"),
    "warmup_steps": _int("warmup_steps", 0, 10**10, "1000"),
    "warmup_rate": Number("warmup_rate", lo=0, hi=1, lo_open=True, example="0.1"),
    "decay_epochs": Number("decay_epochs", lo=0, hi=1e6, lo_open=True, example="50"),
    "decay_rate": Number("decay_rate", lo=0, hi=1, lo_open=True, example="0.1"),
    "drop_prob": Number("drop_prob", lo=0, hi=1, example="0.2"),
    "snr_gamma": Number("snr_gamma", lo=0, hi=1e6, lo_open=True, example="5"),
    "low_noise_fraction": Number("low_noise_fraction", lo=0, hi=1, hi_open=True, example="0.8"),
    "low_noise_max_t": _int("low_noise_max_t", 1, 1000, "100"),
    "part_balance": Number("part_balance", lo=0, hi=1, example="0.5; 0 = off"),
    "flip_p": Number("flip_p", lo=0, hi=1, example="0.5"),
    "seed": SEED,
    "log_every": _int("log_every", 1, 10**9, "10"),
    "sample_every": _int("sample_every", -1, 10**9, "1000; 0 = at the end, -1 = never"),
    "sample_count": _int("sample_count", 1, 64, "4"),
    "sample_steps": STEPS.named("sample_steps"),
    "checkpoint_every": _int("checkpoint_every", -1, 10**9, "1000; 0 = at the end, -1 = never"),
    "keep_checkpoints": _int("keep_checkpoints", 1, 10**4, "3"),
    "num_workers": _int("num_workers", 0, 256, "0"),
}

__all__ = ["TRAIN_RULES"]
