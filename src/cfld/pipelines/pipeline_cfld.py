"""CFLDPipeline: pose-guided person image synthesis with any diffusers scheduler.

One ``__call__`` with numbered steps (design §4.4).  Compared with the authors' sampler
(fidelity §7): the conditions are computed once per image and reused at every step, all guidance
branches of a step run in one batched UNet call, nothing is deep-copied per step, the initial
noise is scaled by the scheduler's ``init_noise_sigma`` (correct for Euler-type schedulers),
and every random draw comes from the caller's ``generator``.

Speed options (:mod:`cfld.pipelines.speed`): mixed precision by default (``autocast="auto"``;
``None`` or :meth:`CFLDPipeline.disable_autocast`: the authors' fp32 numerics); off by default:
:meth:`~CFLDPipeline.enable_channels_last`, :meth:`~CFLDPipeline.compile_unet`,
:meth:`~CFLDPipeline.enable_vae_slicing` / :meth:`~CFLDPipeline.enable_vae_tiling`;
:meth:`~CFLDPipeline.attention_report` checks that every attention runs PyTorch SDPA.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from torch import Tensor

from cfld.checks.models import check_pipeline_folder
from cfld.checks.sampling import check_sampling
from cfld.models.cfld import CFLDConditions, CFLDModel, _resolve_folder
from cfld.models.pixel_autoencoder import PixelUnshuffleAutoencoder
from cfld.pipelines import speed
from cfld.pipelines.distilled import check_sampling_defaults, resolve_defaults, student_inputs
from cfld.pipelines.fewer_evals import EvalPlan, check_reductions
from cfld.pipelines.geometry import (
    DEEPFASHION_ASPECT,
    autoencoder_factor,
    default_output_size,
    quantize,
    resize_output,
)
from cfld.pipelines.guidance import GuidanceScales, branch_conditions, get_guidance
from cfld.pipelines.guidance import resolve_scales as _scales
from cfld.pipelines.inputs import ImageLike, PoseLike, broadcast_batch, prepare_pose, prepare_source
from cfld.pipelines.schedulers import (
    OFFICIAL_SCHEDULER_CONFIG,
    official_scheduler,
    scheduler_from_folder,
    step_kwargs,
)

if TYPE_CHECKING:
    from cfld.pose.estimate import PoseEstimator

#: Default of ``__call__(autocast=...)``: use the setting of :meth:`CFLDPipeline.enable_autocast`.
_PIPELINE_SETTING: Any = "pipeline"

@dataclass
class CFLDPipelineOutput:
    """Result of :class:`CFLDPipeline`.

    Attributes:
        images: PIL images, an array (B, H, W, 3) in [0, 1], a tensor (B, 3, H, W) in [0, 1],
            or the final latents (``output_type="latent"``).
        pose_maps: The target pose maps used (B, 21, H, W), e.g. for visualisation.
        unet_evals_per_image: Full UNet samples evaluated per image (3 per step by default).
        shallow_unet_evals_per_image: Shallow ones (``deep_cache_interval``; else 0).
    """

    images: list[Image.Image] | np.ndarray | Tensor
    pose_maps: Tensor | None = None
    unet_evals_per_image: int | None = None
    shallow_unet_evals_per_image: int | None = None


class CFLDPipeline(DiffusionPipeline):
    """Source photo + target pose → the person in that pose (paper Fig. 2, Eq. 7).

    Args:
        model: The CFLD network ε_θ.
        scheduler: Any diffusers scheduler (default in :meth:`from_pretrained`: the authors'
            DDPM configuration).
        vae: The autoencoder (SD-1.5 ``AutoencoderKL`` or our pixel autoencoder); may be
            ``None`` when only latents are wanted.
        output_size: Default (H, W) of the returned images (``None``: DeepFashion's aspect at
            half the generated height, i.e. 256×176 for 512² generation).
        sampling_defaults: The folder's own ``__call__`` defaults (steps, guidance type, scales;
            a distilled folder's, :mod:`cfld.pipelines.distilled`); ``None``: the paper's.
    """

    model_cpu_offload_seq = "model->vae"
    _optional_components = ["vae"]

    def __init__(self, model: CFLDModel, scheduler: SchedulerMixin,
                 vae: AutoencoderKL | PixelUnshuffleAutoencoder | None = None,
                 output_size: list[int] | None = None,
                 sampling_defaults: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.register_modules(model=model, scheduler=scheduler, vae=vae)
        self.register_to_config(output_size=list(output_size) if output_size else None,
                                sampling_defaults=check_sampling_defaults(sampling_defaults))
        # Speed options (runtime state, not saved); mixed precision unless disable_autocast().
        self._autocast: str | torch.dtype | None = speed.DEFAULT_AUTOCAST
        self._channels_last = False

    # ------------------------------------------------------------------ speed options
    def enable_autocast(self, dtype: str | torch.dtype = "auto") -> CFLDPipeline:
        """Run the networks under ``torch.autocast`` (bf16 on CPU, fp16 on CUDA; ``auto`` picks).

        Latents, the guidance combination and the scheduler stay fp32.  Channels-last
        (:meth:`enable_channels_last`) did not speed bf16 up at full size on our CPU
        (``benchmarks/results/bench_sampling_channels_last_full.json``).
        Outputs differ from fp32 by bf16 rounding (≈1e-2 relative on latents after a few steps).
        """
        speed.resolve_autocast(dtype, self._execution_device)  # validate now
        self._autocast = dtype
        return self

    def disable_autocast(self) -> CFLDPipeline:
        """Full fp32 precision: the numerics that match the authors' code (docs/fidelity.md)."""
        self._autocast = None
        return self

    def enable_channels_last(self) -> CFLDPipeline:
        """Channels-last (NHWC) weights for the UNet, pose adapter and VAE (conv-heavy parts)."""
        speed.to_channels_last(self.model.unet, self.model.pose_adapter, self.vae)
        self._channels_last = True
        return self

    def disable_channels_last(self) -> CFLDPipeline:
        """Back to the default contiguous (NCHW) layout."""
        speed.to_contiguous_format(self.model.unet, self.model.pose_adapter, self.vae)
        self._channels_last = False
        return self

    def compile_unet(self, **compile_kwargs: Any) -> CFLDPipeline:
        """``torch.compile`` the UNet in place (compiles at the first call; see
        :func:`cfld.pipelines.speed.compile_unet`)."""
        speed.compile_unet(self.model.unet, **compile_kwargs)
        return self

    def enable_vae_slicing(self) -> CFLDPipeline:
        """Decode a batch one image at a time (diffusers' ``AutoencoderKL.enable_slicing``)."""
        speed.set_vae_memory_mode(self.vae, slicing=True)
        return self

    def disable_vae_slicing(self) -> CFLDPipeline:
        """Decode the whole batch at once (default)."""
        speed.set_vae_memory_mode(self.vae, slicing=False)
        return self

    def enable_vae_tiling(self) -> CFLDPipeline:
        """Decode in overlapping tiles (diffusers' ``AutoencoderKL.enable_tiling``; for large
        images, changes the output slightly at tile seams)."""
        speed.set_vae_memory_mode(self.vae, tiling=True)
        return self

    def disable_vae_tiling(self) -> CFLDPipeline:
        """Decode the whole image at once (default)."""
        speed.set_vae_memory_mode(self.vae, tiling=False)
        return self

    def attention_report(self) -> dict[str, Any]:
        """Attention processors in use: ``{"processors": {class: count}, "non_sdpa": [names]}``.

        ``non_sdpa`` is empty by construction (diffusers' ``AttnProcessor2_0`` and our
        query-bias processor both call ``F.scaled_dot_product_attention``; the Swin encoder
        calls it directly).
        """
        modules = [m for m in (self.model, self.vae) if isinstance(m, torch.nn.Module)]
        report: dict[str, Any] = {"processors": {}, "non_sdpa": []}
        for m in modules:
            for k, v in speed.attention_processors(m).items():
                report["processors"][k] = report["processors"].get(k, 0) + v
            report["non_sdpa"] += speed.non_sdpa_attention(m)
        return report

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike,
                        **kwargs: Any) -> CFLDPipeline:
        """Load a shipped model by name (``"cfld-synthetic"``), a pipeline folder or hub id, in
        float32 unless ``torch_dtype`` says otherwise (float16 weights are cast).  A bare model
        folder (config.json of a CFLDModel, no model_index.json) gets the scheduler from
        ``scheduler_config.json`` / ``scheduler/`` in it if present (loaded as DDPM, as the
        authors do whatever class name the file records, fidelity §6.2), else the authors' DDPM
        configuration; the VAE from ``vae/`` in it or the ``vae=`` argument."""
        from cfld.shipped import load_shipped_pipeline, shipped_name

        dtype = kwargs.pop("torch_dtype", None) or torch.float32
        if name := shipped_name(pretrained_model_name_or_path):
            return load_shipped_pipeline(dtype, name)
        # Every file is checked (and model_index.json's class names against an allow-list)
        # before diffusers imports anything it names; a hub id is fetched first.
        folder = check_pipeline_folder(_resolve_folder(pretrained_model_name_or_path, None))
        if (folder / "model_index.json").is_file():
            return super().from_pretrained(os.fspath(folder), dtype=dtype, **kwargs)
        model = CFLDModel.from_pretrained(folder, torch_dtype=dtype)
        scheduler = kwargs.pop("scheduler", None) or scheduler_from_folder(folder)
        vae = kwargs.pop("vae", None)
        if vae is None and (folder / "vae" / "config.json").is_file():
            from cfld.models.pretrained import load_vae

            vae = load_vae(folder / "vae")
        elif isinstance(vae, (str, os.PathLike)):
            from cfld.models.pretrained import load_vae

            vae = load_vae(vae)
        return cls(model=model, scheduler=scheduler, vae=vae,
                   output_size=kwargs.pop("output_size", None))

    # ------------------------------------------------------------------ geometry
    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the latent the UNet denoises."""
        cfg = self.model.unet.config
        size = cfg.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        return cfg.in_channels, h, w

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the generated (square, squashed) image."""
        _, h, w = self.latent_shape
        f = autoencoder_factor(self.vae)
        return h * f, w * f

    @property
    def pose_size(self) -> tuple[int, int]:
        """(H, W) of the pose map H_P expects (the latent size × its unshuffle factor)."""
        _, h, w = self.latent_shape
        f = self.model.pose_adapter.downscale_factor
        return h * f, w * f

    @property
    def default_output_size(self) -> tuple[int, int]:
        """(H, W) of returned images unless ``output_size``/``keep_square`` says otherwise."""
        if self.config.output_size:
            return tuple(self.config.output_size)
        return default_output_size(self.image_size)

    # ------------------------------------------------------------------ conditions
    @torch.no_grad()
    def encode_conditions(self, source_image: ImageLike | Sequence[ImageLike],
                          target_pose: PoseLike | Sequence[PoseLike],
                          pose_estimator: PoseEstimator | None = None
                          ) -> tuple[CFLDConditions, Tensor]:
        """Conditions (computed once per image) and the pose maps used."""
        device, dtype = self._execution_device, self.model.dtype
        source = prepare_source(source_image, self.model.source_size)
        pose = prepare_pose(target_pose, self.pose_size, self.model.pose_channels,
                            pose_estimator)
        source, pose = broadcast_batch(source, pose)
        cond = self.model.encode(source.to(device, dtype), pose.to(device, dtype))
        return cond, pose

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def __call__(
        self,
        source_image: ImageLike | Sequence[ImageLike] | None = None,
        target_pose: PoseLike | Sequence[PoseLike] | None = None,
        num_inference_steps: int | None = None,
        guidance_type: str | None = None,
        scale_pose: float | None = None,
        scale_app: float | None = None,
        guidance_scale: float | None = None,
        guidance_scales: GuidanceScales | dict[str, float] | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: Tensor | None = None,
        output_type: str = "pil",
        output_size: Sequence[int] | None = None,
        keep_square: bool = False,
        conditions: CFLDConditions | None = None,
        eta: float = 0.0,
        callback_on_step_end: Callable[..., dict[str, Tensor] | None] | None = None,
        pose_estimator: PoseEstimator | None = None,
        return_dict: bool = True,
        autocast: str | torch.dtype | None = _PIPELINE_SETTING,
        guidance_interval: Sequence[float] | None = None,
        reuse_eps_every: int | None = None,
        deep_cache_interval: int | None = None,
    ) -> CFLDPipelineOutput | tuple:
        """Generate the source person in the target pose.

        Args:
            source_image: PIL image / path / (H, W, 3) array / tensor (B, 3, h, w) in [-1, 1],
                or a list of them.
            target_pose: :class:`~cfld.pose.Keypoints`, a keypoint JSON path or dict, a pose
                map tensor (B, 21, H, W), a skeleton image, or a photo of a person (pose
                estimated offline), or a list of them.
            num_inference_steps: Denoising steps (paper: 50 DDPM steps).  This and the next three
                default to the folder's ``sampling_defaults``, else to the paper's values.
            guidance_type: One of :data:`~cfld.pipelines.guidance.GUIDANCE_TYPES`
                (default ``uc_down_full`` = Eq. 7; ``none`` for a guidance-distilled student).
            scale_pose: w_pose of Eq. (7) (official ``DOWN_BLOCK_GUIDANCE_SCALE``; 2).
            scale_app: w_app of Eq. (7) (official ``FULL_GUIDANCE_SCALE``; 2).
            guidance_scale: If given, sets every guidance scale to this value.
            guidance_scales: Full control by official name (``full``, ``down``, ``all``,
                ``cond``); overrides the above.
            generator: Seeds the initial noise and every stochastic scheduler step.
            latents: Initial latent z_T (used as given, like the authors' code).
            output_type: ``pil``, ``np``, ``pt`` (float in [0, 1]) or ``latent``.
            output_size: (H, W) of returned images (default :attr:`default_output_size`).
            keep_square: Return the generated square image without resizing.
            conditions: Precomputed conditions (skips the encoders; e.g. interpolated).
            eta: DDIM η (ignored by schedulers without it).
            callback_on_step_end: ``fn(pipe, step, t, {"latents": z})`` after each step; may
                return ``{"latents": new_z}`` (used by mask-based editing).
            pose_estimator: Backend for photos given as target pose (default MediaPipe).
            return_dict: Return a :class:`CFLDPipelineOutput` (else a tuple).
            autocast: Mixed precision for the networks: ``"auto"`` (the default unless
                :meth:`disable_autocast` or :meth:`enable_autocast` was called: bf16 on a CPU
                with native bf16, fp16 on CUDA, else fp32), ``None`` (fp32, the authors'
                numerics), ``"bf16"`` (CPU with AVX-512 bf16/AMX, or GPU) or ``"fp16"`` (GPU).
                Latents and scheduler stay fp32.
            guidance_interval: ``(t_lo, t_hi)``: guide only at timesteps t_lo ≤ t ≤ t_hi, else
                evaluate the full-condition branch alone, unguided (``None``: every step).
            reuse_eps_every: N: a fresh ε every N-th step, reused in between (``None``: off).
            deep_cache_interval: N: the full UNet every N-th step, between them only its
                shallow levels on the cached deep features (DeepCache; ``None``: off).
        """
        device = self._execution_device
        dtype = self.model.dtype
        amp = speed.resolve_autocast(self._autocast if autocast is _PIPELINE_SETTING
                                     else autocast, device)
        d = resolve_defaults(self.model, self.config.get("sampling_defaults"),
                             num_inference_steps=num_inference_steps, guidance_type=guidance_type,
                             scale_pose=scale_pose, scale_app=scale_app)
        num_inference_steps, scale_pose, scale_app = (d["num_inference_steps"], d["scale_pose"],
                                                      d["scale_app"])
        guidance = get_guidance(d["guidance_type"])
        checked = check_sampling(num_inference_steps, scale_pose, scale_app, guidance_scale,
                                 guidance_scales, eta, output_size, keep_square, generator)
        num_inference_steps, output_size = checked["num_inference_steps"], checked["output_size"]
        scales = _scales(scale_pose, scale_app, guidance_scale, guidance_scales)
        reductions = check_reductions(guidance_interval, reuse_eps_every, deep_cache_interval)
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ValueError(f"output_type must be pil, np, pt or latent, got {output_type!r}")
        if output_type != "latent" and self.vae is None:
            raise ValueError("this pipeline has no VAE, so it can only return latents: pass "
                             "vae=... to from_pretrained (SD-1.5 AutoencoderKL folder) or use "
                             "output_type='latent'")

        # 1. Conditions: once per image, reused at every step (they do not depend on t).
        pose_maps = None
        if conditions is None:
            if source_image is None or target_pose is None:
                raise ValueError("give source_image and target_pose (or precomputed conditions)")
            with speed.autocast_context(device, amp):
                conditions, pose_maps = self.encode_conditions(source_image, target_pose,
                                                               pose_estimator)
        batch = conditions.batch_size
        # All guidance branches of a step go through the UNet as one batch (fidelity §7.3).
        branched = branch_conditions(guidance, conditions, self.model.uncond_prompt)
        branched = branched.to(device=device, dtype=dtype)
        plan = EvalPlan(guidance, branched, conditions, self.model.uncond_prompt,
                        self.model.unet, *reductions)
        w_kw = student_inputs(self.model, scales, batch)  # a student's guidance embedding

        # 2. Timesteps.
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps

        # 3. Initial noise: z_T ~ N(0, I) scaled for the scheduler (σ_max for Euler-type).
        shape = (batch, *self.latent_shape)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
            latents = latents * self.scheduler.init_noise_sigma
        else:
            if tuple(latents.shape) != shape or not bool(torch.isfinite(latents).all()):
                raise ValueError(f"latents must have shape {shape} and finite values, got "
                                 f"{tuple(latents.shape)}")
            latents = latents.to(device=device, dtype=dtype)
        step_kw = step_kwargs(self.scheduler, generator, eta)

        # 4. Denoising loop.
        with self.progress_bar(total=len(timesteps)) as bar:
            for i, t in enumerate(timesteps):
                eps = plan.reused(i)
                if eps is None:
                    step_guidance, step_cond = plan.for_step(t)  # all branches, or one
                    n_branches = len(step_guidance.branches)
                    model_in = torch.cat([latents] * n_branches)
                    model_in = self.scheduler.scale_model_input(model_in, t)
                    if self._channels_last:
                        model_in = model_in.contiguous(memory_format=torch.channels_last)
                    with speed.autocast_context(device, amp), plan.unet_call(i, len(model_in)):
                        eps = self.model.predict_noise(model_in, t, step_cond, **w_kw)
                    eps = eps.to(latents.dtype)  # guidance and scheduler in full precision
                    eps = step_guidance.combine(eps.chunk(n_branches), scales)  # Eq. (7)
                    eps = plan.record(eps)
                latents = self.scheduler.step(eps, t, latents, **step_kw).prev_sample
                if callback_on_step_end is not None:
                    out = callback_on_step_end(self, i, t, {"latents": latents})
                    if out and "latents" in out:
                        latents = out["latents"]
                bar.update()

        # 5. Decode and resize to the evaluation size.
        if output_type == "latent":
            images: list[Image.Image] | np.ndarray | Tensor = latents
        else:
            with speed.autocast_context(device, amp):
                images = self.decode_latents(latents)
            if not keep_square:
                images = resize_output(images, output_size or self.default_output_size)
            images = self.postprocess(images, output_type)
        if not return_dict:
            return (images,)
        return CFLDPipelineOutput(images=images, pose_maps=pose_maps,
                                  unet_evals_per_image=plan.evals_per_image,
                                  shallow_unet_evals_per_image=plan.shallow_evals_per_image)

    # ------------------------------------------------------------------ helpers
    def decode_latents(self, latents: Tensor) -> Tensor:
        """Latents → images (B, 3, H, W) in [0, 1] (x·0.5 + 0.5, clamped; fidelity §7.5)."""
        scale = float(self.vae.config.get("scaling_factor", 1.0))
        vae_dtype = next(iter(self.vae.parameters()), latents).dtype
        images = self.vae.decode(latents.to(vae_dtype) / scale).sample
        return (images.float() * 0.5 + 0.5).clamp(0, 1)

    def encode_images(self, images: Tensor, generator: torch.Generator | None = None,
                      sample: bool = False) -> Tensor:
        """Images (B, 3, H, W) in [-1, 1] → scaled latents (posterior mean, or a sample)."""
        if self.vae is None:
            raise ValueError("this pipeline has no VAE to encode images")
        scale = float(self.vae.config.get("scaling_factor", 1.0))
        vae_dtype = next(iter(self.vae.parameters()), images).dtype
        dist = self.vae.encode(images.to(self._execution_device, vae_dtype)).latent_dist
        z = dist.sample(generator) if sample else dist.mode()
        return z.to(self.model.dtype) * scale

    @staticmethod
    def postprocess(images: Tensor, output_type: str) -> list[Image.Image] | np.ndarray | Tensor:
        """Images in [0, 1] → PIL (authors' truncating uint8), numpy or tensor."""
        if output_type == "pt":
            return images
        if output_type == "np":
            return images.permute(0, 2, 3, 1).cpu().numpy()
        arr = quantize(images).permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(a) for a in arr]


# The protocol helpers are re-exported here, where they used to live.
__all__ = ["DEEPFASHION_ASPECT", "OFFICIAL_SCHEDULER_CONFIG", "CFLDPipeline", "CFLDPipelineOutput",
           "autoencoder_factor", "official_scheduler", "quantize", "resize_output"]
