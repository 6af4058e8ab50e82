"""The exported model folder of a run: what ``CFLDPipeline.from_pretrained`` reads (design §4.6)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from diffusers.schedulers.scheduling_utils import SchedulerMixin
from torch import nn

from cfld.checkpoint import atomic_save_dir


def export_model(out_dir: str | os.PathLike, model: nn.Module, vae: nn.Module,
                 noise_scheduler: SchedulerMixin, output_size: tuple[int, int] | None = None,
                 sampling_defaults: dict[str, Any] | None = None) -> Path:
    """Write the inference folder atomically: the pipeline's ``save_pretrained`` (``model/``,
    ``vae/``, ``scheduler/``, ``model_index.json`` with ``sampling_defaults`` if given)."""
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

    def write(tmp: Path) -> None:
        CFLDPipeline(model=model, vae=vae, scheduler=noise_scheduler,
                     output_size=list(output_size) if output_size else None,
                     sampling_defaults=sampling_defaults).save_pretrained(tmp)

    return atomic_save_dir(out_dir, write)


__all__ = ["export_model"]
