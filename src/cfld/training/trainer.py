"""The training entry points under their old module name.

The trainer is split by responsibility: :mod:`cfld.training.build` (model, autoencoder,
optimiser), :mod:`cfld.training.batches` (data order), :mod:`cfld.training.samples` (sample
grids) and :mod:`cfld.training.loop` (:func:`train`).
"""

from cfld.training.batches import EpochBatchSampler
from cfld.training.build import (
    NOISE_SCHEDULER_CONFIG,
    build_autoencoder,
    build_model,
    build_noise_scheduler,
    build_optimizer,
    encode_latents,
    init_from_model_folder,
)
from cfld.training.loop import TrainingDivergedError, export_model, train
from cfld.training.samples import write_sample_grid

__all__ = [
    "NOISE_SCHEDULER_CONFIG",
    "EpochBatchSampler",
    "TrainingDivergedError",
    "build_autoencoder",
    "build_model",
    "build_noise_scheduler",
    "build_optimizer",
    "encode_latents",
    "export_model",
    "init_from_model_folder",
    "train",
    "write_sample_grid",
]
