"""cfld.training: the objective, the LR schedule, checkpoints and the training loop.

``config`` (TrainConfig), ``build`` (model, autoencoder, optimiser), ``batches`` (data order),
``objective`` (the loss), ``lr_schedule``, ``state`` (checkpoints), ``samples`` (sample grids),
``loop`` (:func:`train`).
"""

from cfld.training.batches import EpochBatchSampler
from cfld.training.build import NOISE_SCHEDULER_CONFIG, build_noise_scheduler
from cfld.training.config import TrainConfig
from cfld.training.loop import TrainingDivergedError, export_model, train
from cfld.training.lr_schedule import WarmupStepDecay, build_lr_scheduler, decay_boundaries, lr_at
from cfld.training.objective import (
    cubic_timesteps,
    training_conditions,
    training_step_loss,
    uniform_timesteps,
)
from cfld.training.state import list_checkpoints, load_checkpoint, resolve_resume

__all__ = [
    "NOISE_SCHEDULER_CONFIG",
    "EpochBatchSampler",
    "TrainConfig",
    "TrainingDivergedError",
    "WarmupStepDecay",
    "build_lr_scheduler",
    "build_noise_scheduler",
    "cubic_timesteps",
    "decay_boundaries",
    "export_model",
    "list_checkpoints",
    "load_checkpoint",
    "lr_at",
    "resolve_resume",
    "train",
    "training_conditions",
    "training_step_loss",
    "uniform_timesteps",
]
