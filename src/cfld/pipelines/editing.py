"""Appearance editing without training (paper §4.6, Fig. 6): style transfer by mask and
interpolation of appearance between two sources.

Style transfer (fidelity §9, the workable reading of the paper's formula): generate with the
reference's pose and the *new* source's conditions; after every denoising step the latent
outside the user mask m is replaced by the reference latent noised to the step just reached
(Eq. 1), so only the masked region is restyled:

    z_{t-1} ← m · z_{t-1} + (1 − m) · q(z_ref, t-1),        with q(z_ref, 0) = z_ref.

Interpolation (Fig. 6b): the coarse prompt and every appearance bias are interpolated linearly
between two sources (:meth:`~cfld.models.cfld.CFLDConditions.lerp`), the initial noise is the
same for every frame.

Body-part masks (:data:`~cfld.pose.masks.BODY_PARTS`) are drawn from the reference's keypoints
(:mod:`cfld.pose.masks`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from torch import Tensor

from cfld.data.images import open_image
from cfld.pipelines.inputs import ImageLike, PoseLike, keypoints_from_any, prepare_image
from cfld.pose.masks import BODY_PARTS, part_mask
from cfld.visualize import make_grid

if TYPE_CHECKING:
    from cfld.models.cfld import CFLDConditions
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

StepCallback = Callable[[int, int], None]
#: A user mask: a PNG path, a PIL image, an array or a tensor (white / 1 = restyle).
MaskLike = Union[str, os.PathLike, Image.Image, np.ndarray, Tensor]
#: Where to restyle: a mask, or body part names (a list or a comma-separated string).
MaskOrParts = Union[MaskLike, Sequence[str]]
#: What the pipeline returns as ``images``.
Images = Union[list[Image.Image], np.ndarray, Tensor]


def load_mask(mask: MaskLike) -> np.ndarray:
    """A user mask → float array (H, W) in {0, 1}; 1 (white, or opaque paint) = restyle.

    Accepts a PNG path, a PIL image, a numpy array or a tensor.  An image with partial
    transparency (a drawing layer, e.g. from the web app's editor) counts its opaque pixels;
    otherwise brightness > 50 % counts.
    """
    out = _binary_mask(mask)
    if not out.any():
        raise ValueError("the mask is empty (no white or painted pixels), so nothing would be "
                         "restyled; paint or mark the region to change")
    return out


def _binary_mask(mask: MaskLike) -> np.ndarray:
    if isinstance(mask, (str, os.PathLike)):
        mask = open_image(mask, mode=None, what="mask")
    if isinstance(mask, Image.Image):
        if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency"
                                                 in mask.info):
            alpha = np.asarray(mask.convert("RGBA"))[..., 3]
            if (alpha < 255).any():  # a paint layer on transparency: what was painted
                return (alpha > 127).astype(np.float32)
        return (np.asarray(mask.convert("L")) > 127).astype(np.float32)
    if isinstance(mask, Tensor):
        mask = mask.detach().cpu().float().numpy()
    try:
        arr = np.asarray(mask, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"unsupported mask type {type(mask).__name__}; give an image path, a "
                         "PIL image, an array or a tensor") from None
    if arr.ndim == 3:
        arr = arr.max(axis=-1) if arr.shape[-1] in (1, 3, 4) else arr.max(axis=0)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"mask must be a 2-D image, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("mask holds NaN or inf; give values in [0, 1] or 0..255")
    thresh = 127.0 if arr.max() > 1.0 else 0.5
    return (arr > thresh).astype(np.float32)


def latent_mask(mask: MaskLike, image_size: Sequence[int], latent_size: Sequence[int]) -> Tensor:
    """A mask in any frame → (1, 1, h, w) latent mask in {0, 1}.

    The mask is squashed to the generated image size like the images (aspect not kept), then
    max-pooled to the latent so that any latent cell touching the mask is restyled.
    """
    m = torch.from_numpy(load_mask(mask))[None, None]  # (1, 1, H, W)
    m = F.interpolate(m, size=tuple(image_size), mode="nearest")
    h, w = latent_size
    m = F.adaptive_max_pool2d(m, (h, w))
    return (m > 0.5).float()


# ----------------------------------------------------------------------------- images
def reference_latents(pipe: CFLDPipeline, reference_image: ImageLike) -> Tensor:
    """z_ref = E(y_ref) (scaled, the posterior mean) at the pipeline's generation size."""
    x = prepare_image(reference_image, pipe.image_size, "reference image")
    return pipe.encode_images(x)


def _progress_callback(on_step: StepCallback | None, total: int,
                       inner: Callable[..., Any] | None = None) -> Callable[..., Any] | None:
    if on_step is None and inner is None:
        return None

    def callback(pipe: Any, i: int, t: Any, kwargs: dict[str, Tensor]) -> Any:
        out = inner(pipe, i, t, kwargs) if inner is not None else None
        if on_step is not None:
            on_step(i + 1, total)
        return out

    return callback


# ----------------------------------------------------------------------------- style transfer
def style_transfer(
    pipe: CFLDPipeline,
    reference_image: ImageLike,
    mask: MaskOrParts,
    new_source: ImageLike,
    num_inference_steps: int = 50,
    generator: torch.Generator | None = None,
    reference_pose: PoseLike | None = None,
    on_step: StepCallback | None = None,
    **kwargs: Any,
) -> Images:
    """Restyle the masked region of ``reference_image`` with the appearance of ``new_source``.

    Args:
        pipe: A :class:`~cfld.CFLDPipeline` with an autoencoder.
        reference_image: The photo to edit (PIL / path / array / tensor in [-1, 1]).
        mask: Where to restyle: a mask image (path, PIL, array; white = restyle) in the
            reference's frame, a (1, 1, h, w) latent mask tensor, or body part names
            (a list, or a comma-separated string, see :data:`BODY_PARTS`).
        new_source: Photo whose appearance fills the mask.
        num_inference_steps: Denoising steps.
        generator: Seeds the initial noise, the fixed noise of q(z_ref, t) and the scheduler.
        reference_pose: The reference's pose (keypoints / JSON / skeleton image / photo);
            default: estimated from ``reference_image``.
        on_step: ``fn(done, total)`` after every step (progress bars).
        **kwargs: Passed to the pipeline (``scale_pose``, ``output_type``, ``keep_square``, …).

    Returns:
        The pipeline's ``images`` (a list of PIL images by default).
    """
    if pipe.vae is None:
        raise ValueError("style transfer needs the pipeline's autoencoder to encode the "
                         "reference image")
    from cfld.checks.sampling import check_call_kwargs

    check_call_kwargs(num_inference_steps, kwargs)
    kp = keypoints_from_any(reference_pose if reference_pose is not None else
                            _as_pose_input(reference_image))
    _, h, w = pipe.latent_shape
    if isinstance(mask, Tensor) and mask.ndim == 4 and tuple(mask.shape[-2:]) == (h, w):
        m = (mask > 0.5).float()
    elif isinstance(mask, (list, tuple)) or (isinstance(mask, str) and not Path(mask).is_file()
                                             and not Path(mask).suffix):
        m = latent_mask(part_mask(kp, mask), pipe.image_size, (h, w))
    else:
        m = latent_mask(mask, pipe.image_size, (h, w))
    device, dtype = pipe._execution_device, pipe.model.dtype
    m = m.to(device, dtype)
    z_ref = reference_latents(pipe, reference_image).to(device, dtype)
    # One fixed noise for every step's q(z_ref, t) (Eq. 1), drawn before the pipeline's own.
    noise = randn_tensor(z_ref.shape, generator=generator, device=device, dtype=dtype)
    scheduler = pipe.scheduler

    def blend(pipe_: Any, i: int, t: Any, data: dict[str, Tensor]) -> dict[str, Tensor]:
        z = data["latents"]
        timesteps = scheduler.timesteps
        if i + 1 < len(timesteps):  # the latent now sits at the next timestep of the schedule
            t_prev = timesteps[i + 1:i + 2]
            z_known = scheduler.add_noise(z_ref, noise, t_prev)
        else:  # after the last step: the clean reference
            z_known = z_ref
        return {"latents": m * z + (1 - m) * z_known}

    callback = _progress_callback(on_step, num_inference_steps, blend)
    out = pipe(new_source, kp, num_inference_steps=num_inference_steps, generator=generator,
               callback_on_step_end=callback, **kwargs)
    return out.images


def _as_pose_input(image: ImageLike) -> PoseLike:
    if isinstance(image, Tensor):
        raise ValueError("give reference_pose (keypoints) when the reference is a tensor")
    if isinstance(image, np.ndarray):
        return Image.fromarray(image.astype(np.uint8))
    return image


# ----------------------------------------------------------------------------- interpolation
def interpolation_weights(n_frames: int) -> list[float]:
    """t = linspace(0, 1, N) (N ≥ 2; N = 1 gives [0])."""
    from cfld.checks.numbers import MAX_FRAMES, Number

    n_frames = int(Number("n_frames", integer=True, lo=1, hi=MAX_FRAMES).check(n_frames))
    if n_frames == 1:
        return [0.0]
    return [i / (n_frames - 1) for i in range(n_frames)]


def interpolate(
    pipe: CFLDPipeline,
    source_a: ImageLike,
    source_b: ImageLike,
    target_pose: PoseLike,
    n_frames: int = 5,
    generator: torch.Generator | None = None,
    num_inference_steps: int = 50,
    weights: Sequence[float] | None = None,
    on_step: StepCallback | None = None,
    **kwargs: Any,
) -> list[Image.Image | Tensor]:
    """Frames whose appearance moves linearly from ``source_a`` to ``source_b`` (Fig. 6b).

    Every frame starts from the same generator state, so the frame at t = 0 (t = 1) equals a
    plain generation from ``source_a`` (``source_b``) with the same generator.

    Args:
        pipe: A :class:`~cfld.CFLDPipeline`.
        source_a: First source photo.
        source_b: Second source photo.
        target_pose: The pose of every frame.
        n_frames: Number of frames (t = linspace(0, 1, N)).
        generator: Seeds the (shared) noise; default a fresh generator with seed 0.
        num_inference_steps: Denoising steps per frame.
        weights: Explicit interpolation weights instead of the linspace.
        on_step: ``fn(done, total)`` over all frames' steps.
        **kwargs: Passed to the pipeline.

    Returns:
        One image per frame (the pipeline's output type, first image of each call).
    """
    from cfld.checks.numbers import MAX_FRAMES, Number
    from cfld.checks.sampling import check_call_kwargs

    if weights is not None:
        if len(weights) > MAX_FRAMES:
            raise ValueError(f"{len(weights)} interpolation weights; the limit is {MAX_FRAMES}")
        ts = list(Number("interpolation weight").check_all(list(weights), "weights"))
    else:
        ts = interpolation_weights(n_frames)
    check_call_kwargs(num_inference_steps, kwargs)
    cond_a, _ = pipe.encode_conditions(source_a, target_pose)
    cond_b, _ = pipe.encode_conditions(source_b, target_pose)
    if cond_a.batch_size != 1 or cond_b.batch_size != 1:
        raise ValueError("interpolate takes one image per source and one target pose")
    # The frames' conditions are made one at a time (all at once would hold every frame's
    # biases in memory).
    lerped = _Lerped(cond_a, cond_b, ts)
    return _frames(pipe, lerped, generator, num_inference_steps, on_step, **kwargs)


class _Lerped(Sequence):
    """``a.lerp(b, t)`` for each t, computed when indexed."""

    def __init__(self, a: CFLDConditions, b: CFLDConditions, ts: Sequence[float]) -> None:
        self.a, self.b, self.ts = a, b, list(ts)

    def __len__(self) -> int:
        return len(self.ts)

    def __getitem__(self, i: int) -> CFLDConditions:  # type: ignore[override]
        return self.a.lerp(self.b, float(self.ts[i]))


def _frames(pipe: CFLDPipeline, conditions: Sequence[CFLDConditions],
            generator: torch.Generator | None, num_inference_steps: int,
            on_step: StepCallback | None, **kwargs: Any) -> list[Image.Image | Tensor]:
    """One pipeline call per conditions, each from the same generator state (same noise)."""
    if generator is None:
        generator = torch.Generator(device=pipe._execution_device).manual_seed(0)
    state = generator.get_state()
    total = len(conditions) * num_inference_steps
    frames = []
    for k, cond in enumerate(conditions):
        generator.set_state(state)
        step = None
        if on_step is not None:
            def step(i: int, _n: int, k: int = k) -> None:
                on_step(k * num_inference_steps + i, total)
        out = pipe(conditions=cond, num_inference_steps=num_inference_steps,
                   generator=generator, callback_on_step_end=_progress_callback(
                       step, num_inference_steps), **kwargs)
        frames.append(out.images[0])
    return frames


def image_strip(images: Sequence[Image.Image], pad: int = 2,
                background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Images side by side on one row (no outer margin), at the first image's size."""
    if not images:
        raise ValueError("no images for the strip")
    first = images[0]
    return make_grid([list(images)], cell=(first.height, first.width), pad=pad, margin=0,
                     background=background, resample=Image.BICUBIC)


__all__ = ["BODY_PARTS", "image_strip", "interpolate", "interpolation_weights", "latent_mask",
           "load_mask", "part_mask", "reference_latents", "style_transfer"]
