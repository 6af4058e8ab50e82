"""What a training run will do, resolved without training: ``cfld train --dry-run``.

The arguments of a run (``--batch-size`` *or* ``--total-batch-size``, ``--scale-lr``, a preset
name, a data root) only become the numbers a run uses once the process count is known
(:meth:`cfld.training.config.TrainConfig.resolve`, fidelity §6.3).  :func:`resolved_run` gives
those numbers, the preset's sizes and the data root's pair count, so a launch can be checked
before it takes a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfld.training.batches import PAPER_LR_PER_PAIR
from cfld.training.config import TrainConfig


def _data_summary(root: str | None, total_batch: int, config: TrainConfig) -> dict[str, Any]:
    """The root's layout, training pair count and the steps they give (or why not known)."""
    from cfld.data.formats import read_pairs
    from cfld.data.layouts import detect_layout

    out: dict[str, Any] = {"root": root, "layout": None, "train_pairs": None,
                           "steps_per_epoch": None, "total_steps": config.max_steps}
    if root is None or not Path(root).is_dir():
        out["problem"] = f"data root {root} not found: the pair count is not known"
        return out
    layout = detect_layout(root)
    pairs_csv = layout.path(root, "train", "pairs")
    out["layout"] = layout.name
    try:
        count = len(read_pairs(pairs_csv, on_duplicate="ignore"))
    except (OSError, ValueError) as err:
        out["problem"] = f"{pairs_csv}: {err}"
        return out
    per_epoch = count // total_batch  # drop_last, as the sampler does
    out.update(train_pairs=count, steps_per_epoch=per_epoch,
               total_steps=config.max_steps or config.epochs * per_epoch)
    if per_epoch < 1:
        out["problem"] = (f"{count} training pairs cannot fill one total batch of {total_batch}; "
                          "lower --batch-size or --total-batch-size")
    return out


def resolved_run(config: TrainConfig, num_processes: int) -> dict[str, Any]:
    """The configuration as a run on ``num_processes`` processes uses it.

    Returns:
        Every :class:`TrainConfig` field, resolved (``batch_size`` per process,
        ``total_batch_size``, ``lr`` after ``scale_lr``), ``num_processes``, and ``resolved``:
        the batch division, the LR rule, the preset's sizes and the data root's pair count.

    Raises:
        ValueError: an invalid configuration, or a total batch that does not divide.
    """
    from cfld.presets import get_preset

    config.validate()
    preset = get_preset(config.preset)
    resolved, plan = config.resolve(num_processes)
    rule = (f"5e-7 x total batch {plan.total} (--scale-lr, the paper's rule)" if config.scale_lr
            else "--lr as given (the authors' code)")
    return {
        **resolved.to_dict(),
        "num_processes": plan.processes,
        "resolved": {
            "num_processes": plan.processes,
            "per_process_batch_size": plan.per_process,
            "gradient_accumulation_steps": plan.accumulation,
            "total_batch_size": plan.total,
            "lr": plan.lr,
            "lr_rule": rule,
            "paper_lr_per_pair": PAPER_LR_PER_PAIR,
            "summary": plan.describe(),
            "preset": {"name": preset.name, "image_size": list(preset.image_size),
                       "test_size": list(preset.test_size), "pose_size": list(preset.pose_size),
                       "source_size": preset.source_size,
                       "autoencoder": preset.autoencoder["type"],
                       "description": preset.description},
            "data": _data_summary(config.data_root, plan.total, config),
        },
    }


__all__ = ["resolved_run"]
