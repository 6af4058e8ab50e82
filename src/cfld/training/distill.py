"""``cfld distill``: a few-step, one-branch student of a guided CFLD teacher.

:func:`distill` builds the run (teacher pipeline, student, data order, optimiser, the
:class:`~cfld.training.distill_objective.DistillLoss`) and hands it to the trainer's own phases
(:func:`cfld.training.loop.run_phases`): the same micro-batch draws (seed, step, pair index),
accumulation, multi-process gradients, progress bar, TensorBoard, ``metrics.jsonl``, atomic
checkpoints with exact resume (``--resume latest``), sample grids and the exported folder.

The exported ``model/`` is a :class:`~cfld.CFLDPipeline` folder: the student (the teacher's
network + the guidance embedding), the teacher's autoencoder, diffusers' ``LCMScheduler`` on
the teacher's noise schedule, and ``sampling_defaults`` (steps, one branch, scales) in
``model_index.json`` (:mod:`cfld.pipelines.distilled`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cfld.distributed import make_accelerator
from cfld.models.guidance_embedding import is_guidance_distilled, make_student
from cfld.pipelines.distilled import lcm_scheduler
from cfld.presets import Preset
from cfld.training.build import build_optimizer, build_training_data, place_autoencoder
from cfld.training.distill_config import DistillConfig
from cfld.training.distill_objective import DistillLoss
from cfld.training.ema_target import EMATarget
from cfld.training.loop import _Run, run_phases
from cfld.training.lr_schedule import build_lr_scheduler
from cfld.training.state import frozen_fingerprint, list_checkpoints, resolve_resume


def load_teacher(name_or_path: str) -> Any:
    """The teacher pipeline (float32, CPU): a pipeline folder or a shipped model's name.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: the folder has no autoencoder, or holds a student already.
    """
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

    pipe = CFLDPipeline.from_pretrained(name_or_path)
    if pipe.vae is None:
        raise ValueError(f"--teacher {name_or_path}: the folder has no autoencoder (vae/); "
                         "distil a complete pipeline folder (cfld train's model/)")
    if is_guidance_distilled(pipe.model):
        raise ValueError(f"--teacher {name_or_path} is already a distilled student; give the "
                         "guided (50-step) model")
    pipe.model.float().eval().requires_grad_(False)
    return pipe


def build_student(config: DistillConfig, teacher: Any) -> Any:
    """The student: ``init_student``'s network, else the teacher + a zero guidance embedding;
    its UNet trains, its conditioning stack stays the teacher's."""
    if config.init_student:
        from cfld.pipelines.pipeline_cfld import CFLDPipeline

        student = CFLDPipeline.from_pretrained(config.init_student).model.float()
        if not is_guidance_distilled(student):
            raise ValueError(f"--init-student {config.init_student} is not a distilled student "
                             "(its UNet takes no guidance embedding)")
    else:
        student = make_student(teacher.model, config.guidance_embedding_dim)
    student.requires_grad_(False)
    student.unet.requires_grad_(True)
    return student.train()


def _setup(config: DistillConfig) -> _Run:
    """Validate, load the teacher, build student, data, optimiser (as the trainer's setup)."""
    from accelerate.utils import set_seed

    config.validate()
    if config.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ValueError("mixed precision fp16 needs a CUDA GPU; use --mixed-precision bf16 or no")
    teacher = load_teacher(config.teacher)
    run_dir = Path(config.output_dir)
    accelerator = make_accelerator(mixed_precision=config.mixed_precision)
    rank, world = accelerator.process_index, accelerator.num_processes
    config, plan = config.resolve(world, teacher.scheduler.config.prediction_type)
    if accelerator.is_main_process:
        print(f"cfld distill ({config.objective}): {plan.describe()}", flush=True)
    ckpt_path = None
    if config.resume:
        ckpt_path = resolve_resume(config.resume, run_dir)
    elif list_checkpoints(run_dir):
        raise ValueError(f"{run_dir} already holds checkpoints of another run; continue it with "
                         "--resume latest or choose a new --out")
    set_seed(config.seed)
    student = build_student(config, teacher)
    # LCMScheduler on the teacher's noise schedule: the training grid and the sampler agree.
    lcm = lcm_scheduler(teacher.scheduler.config, config.solver_steps)
    vae_dtype = place_autoencoder(teacher.vae, accelerator.device, config.mixed_precision)
    preset = Preset("teacher", dict(teacher.model.config), image_size=teacher.image_size,
                    test_size=teacher.default_output_size, pose_size=teacher.pose_size)
    dataset, sampler = build_training_data(config, preset, plan, rank, world)
    # The teacher's weights must not change between an interruption and its resumption.
    fingerprint = frozen_fingerprint(student) + frozen_fingerprint(teacher.model)
    optimizer = build_optimizer(student.trainable_parameters(), config)
    lr_scheduler = build_lr_scheduler(optimizer, config.warmup_steps, config.warmup_rate, (), 1.0)
    loss_module = DistillLoss(student, teacher.model, lcm, config.objective, config.solver_steps,
                              config.scale_pose_range, config.scale_app_range, config.loss,
                              config.huber_c)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    if config.objective == "lcd" and config.ema_decay > 0:  # θ⁻ on the student's device
        unwrapped = accelerator.unwrap_model(loss_module)
        unwrapped.ema = EMATarget(unwrapped.model.unet, config.ema_decay)
        unwrapped.ema.attach(optimizer)  # updated per step, saved with the optimiser state
    return _Run(
        config=config, plan=plan, preset=preset, accelerator=accelerator, run_dir=run_dir,
        model=accelerator.unwrap_model(loss_module).model, loss_module=loss_module,
        vae=teacher.vae, vae_dtype=vae_dtype, noise_scheduler=lcm, dataset=dataset,
        sampler=sampler, optimizer=optimizer, lr_scheduler=lr_scheduler, fingerprint=fingerprint,
        total_steps=config.max_steps, ckpt_path=ckpt_path,
        export_kwargs={"sampling_defaults": config.sampling_defaults()})


def distill(config: DistillConfig) -> dict[str, Any]:
    """Distil as configured; return the trainer's summary (see :func:`cfld.training.train`).

    Raises:
        ValueError: bad configuration (named), a teacher that cannot be distilled, or a
            resumption with another setup.
        FileNotFoundError: missing teacher or data.
        TrainingDivergedError: the loss became NaN/inf.
    """
    return run_phases(_setup(config))


__all__ = ["build_student", "distill", "load_teacher"]
