"""Appearance editing without training (paper §4.6, Fig. 6): style transfer by mask and
interpolation of appearance between two sources.

Style transfer (facts §9, the workable reading of the paper's formula): generate with the
reference's pose and the *new* source's conditions; after every denoising step the latent
outside the user mask m is replaced by the reference latent noised to the step just reached
(Eq. 1), so only the masked region is restyled:

    z_{t-1} ← m · z_{t-1} + (1 − m) · q(z_ref, t-1),        with q(z_ref, 0) = z_ref.

Interpolation (Fig. 6b): the coarse prompt and every appearance bias are interpolated linearly
between two sources (:meth:`~cfld.models.cfld.CFLDConditions.lerp`), the initial noise is the
same for every frame.

Body-part masks (:data:`BODY_PARTS`) are drawn from the reference's keypoints: thick lines along
the limbs, a polygon for the torso, an ellipse for the head, then dilated.  They are coarse by
design (the latent is 8× smaller than the image for SD's VAE); draw a mask for precise edits.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from torch import Tensor

from cfld.pipelines.inputs import keypoints_from_any, open_image, pil_to_tensor
from cfld.pose.keypoints import JOINT_NAMES, Keypoints

# Joint indices (COCO-18, facts §5.1).
_J = {name: i for i, name in enumerate(JOINT_NAMES)}

#: Named body parts for :func:`part_mask` and what each covers.
BODY_PARTS: dict[str, str] = {
    "head": "face, hair and neck: an ellipse around nose/eyes/ears, above the neck",
    "upper_clothes": "torso (shoulders to hips) and upper arms: tops, shirts, jackets",
    "lower_clothes": "hips to ankles: trousers, skirts, shorts",
    "arms": "shoulders to wrists, both sides (sleeves and bare arms)",
    "hands": "discs around the wrists",
    "legs": "hips to ankles along each leg (narrower than lower_clothes)",
    "shoes": "discs around and just below the ankles",
    "body": "everything above together (the whole person)",
}

StepCallback = Callable[[int, int], None]


# ----------------------------------------------------------------------------- masks
def _body_scale(kp: Keypoints) -> float:
    """A length that grows with the person: neck→mid-hip, else shoulder span, else frame."""
    c, p = kp.coords, kp.present
    if p[_J["neck"]] and (p[_J["right_hip"]] or p[_J["left_hip"]]):
        hips = [c[_J[n]] for n in ("right_hip", "left_hip") if p[_J[n]]]
        return float(np.linalg.norm(c[_J["neck"]] - np.mean(hips, axis=0)))
    if p[_J["right_shoulder"]] and p[_J["left_shoulder"]]:
        return 1.6 * float(np.linalg.norm(c[_J["right_shoulder"]] - c[_J["left_shoulder"]]))
    return 0.3 * kp.frame[0]


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[1]))), int(round(float(p[0])))  # (y, x) → cv2's (x, y)


def _draw_chain(canvas: np.ndarray, kp: Keypoints, names: Sequence[str], width: float) -> None:
    """Thick line through consecutive present joints (a missing joint breaks the chain)."""
    idx = [_J[n] for n in names]
    for a, b in zip(idx, idx[1:]):
        if kp.present[a] and kp.present[b]:
            cv2.line(canvas, _pt(kp.coords[a]), _pt(kp.coords[b]), 255,
                     max(1, int(round(width))), cv2.LINE_8)
        elif kp.present[a]:
            cv2.circle(canvas, _pt(kp.coords[a]), max(1, int(round(width / 2))), 255, -1)
    if kp.present[idx[-1]]:
        cv2.circle(canvas, _pt(kp.coords[idx[-1]]), max(1, int(round(width / 2))), 255, -1)


def _draw_torso(canvas: np.ndarray, kp: Keypoints, s: float) -> None:
    names = ("right_shoulder", "left_shoulder", "left_hip", "right_hip")
    pts = [kp.coords[_J[n]] for n in names if kp.present[_J[n]]]
    if kp.present[_J["neck"]]:
        pts.append(kp.coords[_J["neck"]])
    if len(pts) >= 3:
        hull = cv2.convexHull(np.array([_pt(p) for p in pts], np.int32))
        cv2.fillConvexPoly(canvas, hull, 255)
    # Widen sideways: shoulders and hips carry the cloth beyond the joints.
    for n in names:
        if kp.present[_J[n]]:
            cv2.circle(canvas, _pt(kp.coords[_J[n]]), max(1, int(round(0.22 * s))), 255, -1)
    _draw_chain(canvas, kp, ("neck", "right_hip"), 0.45 * s)
    _draw_chain(canvas, kp, ("neck", "left_hip"), 0.45 * s)


def _draw_head(canvas: np.ndarray, kp: Keypoints, s: float) -> None:
    face = [_J[n] for n in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")]
    pts = [kp.coords[i] for i in face if kp.present[i]]
    neck = kp.coords[_J["neck"]] if kp.present[_J["neck"]] else None
    if not pts and neck is None:
        return
    if pts:
        centre = np.mean(pts, axis=0)
    else:  # back view without face joints: the head sits above the neck
        centre = neck - np.array([0.3 * s, 0.0])
    radius = 0.3 * s
    cv2.ellipse(canvas, _pt(centre), (max(1, int(round(radius * 0.85))),
                                      max(1, int(round(radius * 1.1)))), 0, 0, 360, 255, -1)
    if neck is not None:
        cv2.line(canvas, _pt(centre), _pt(neck), 255, max(1, int(round(0.35 * s))))


def part_mask(keypoints: Keypoints, parts: str | Sequence[str], dilate: float = 0.08,
              ) -> np.ndarray:
    """A binary mask (H, W) in ``keypoints.frame`` covering the named body parts.

    Args:
        keypoints: The reference person's keypoints.
        parts: Names from :data:`BODY_PARTS` (a list or a comma-separated string).
        dilate: Extra margin, as a fraction of the body scale (neck→hip length).

    Returns:
        uint8 array, 255 inside (= restyle), 0 outside.

    Raises:
        ValueError: for an unknown part name, or when the joints it needs are all missing.
    """
    names = [p.strip() for p in parts.split(",")] if isinstance(parts, str) else list(parts)
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"give at least one body part; choose from {sorted(BODY_PARTS)}")
    unknown = sorted(set(names) - set(BODY_PARTS))
    if unknown:
        raise ValueError(f"unknown body part(s) {unknown}; choose from {sorted(BODY_PARTS)}")
    if "body" in names:
        names = [n for n in BODY_PARTS if n != "body"]
    h, w = keypoints.frame
    s = _body_scale(keypoints)
    canvas = np.zeros((h, w), np.uint8)
    limbs = {
        "arms": [("right_shoulder", "right_elbow", "right_wrist"),
                 ("left_shoulder", "left_elbow", "left_wrist")],
        "legs": [("right_hip", "right_knee", "right_ankle"),
                 ("left_hip", "left_knee", "left_ankle")],
    }
    for name in names:
        if name == "head":
            _draw_head(canvas, keypoints, s)
        elif name == "upper_clothes":
            _draw_torso(canvas, keypoints, s)
            for side in ("right", "left"):
                _draw_chain(canvas, keypoints, (f"{side}_shoulder", f"{side}_elbow"), 0.3 * s)
        elif name == "arms":
            for chain in limbs["arms"]:
                _draw_chain(canvas, keypoints, chain, 0.28 * s)
        elif name == "hands":
            for n in ("right_wrist", "left_wrist"):
                if keypoints.present[_J[n]]:
                    cv2.circle(canvas, _pt(keypoints.coords[_J[n]]),
                               max(1, int(round(0.18 * s))), 255, -1)
        elif name == "legs":
            for chain in limbs["legs"]:
                _draw_chain(canvas, keypoints, chain, 0.3 * s)
        elif name == "lower_clothes":
            hips = [keypoints.coords[_J[n]] for n in ("right_hip", "left_hip")
                    if keypoints.present[_J[n]]]
            if len(hips) == 2:
                cv2.line(canvas, _pt(hips[0]), _pt(hips[1]), 255, max(1, int(round(0.4 * s))))
            for chain in limbs["legs"]:
                _draw_chain(canvas, keypoints, chain, 0.4 * s)
        elif name == "shoes":
            for ankle, knee in (("right_ankle", "right_knee"), ("left_ankle", "left_knee")):
                a, k = _J[ankle], _J[knee]
                if not keypoints.present[a]:
                    continue
                foot = keypoints.coords[a]
                if keypoints.present[k]:  # the foot continues a little past the ankle
                    foot = foot + 0.15 * (keypoints.coords[a] - keypoints.coords[k])
                cv2.circle(canvas, _pt(keypoints.coords[a]), max(1, int(round(0.15 * s))), 255,
                           -1)
                cv2.circle(canvas, _pt(foot), max(1, int(round(0.17 * s))), 255, -1)
    if not canvas.any():
        raise ValueError(f"the joints needed for {names} are missing from the reference pose; "
                         "draw a mask instead")
    r = int(round(dilate * s))
    if r > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        canvas = cv2.dilate(canvas, kernel)
    return canvas


def load_mask(mask: Any) -> np.ndarray:
    """A user mask → float array (H, W) in {0, 1}; 1 (white, or opaque paint) = restyle.

    Accepts a PNG path, a PIL image, a numpy array or a tensor.  An image with partial
    transparency (a drawing layer, e.g. from the web app's editor) counts its opaque pixels;
    otherwise brightness > 50 % counts.
    """
    if isinstance(mask, (str, os.PathLike)):
        p = Path(mask)
        if not p.is_file():
            raise FileNotFoundError(f"mask not found: {p}")
        try:
            with Image.open(p) as img:
                img.load()
                mask = img.copy()
        except OSError as err:
            raise ValueError(f"{p} is not a readable image ({err})") from err
    if isinstance(mask, Image.Image):
        if mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency"
                                                 in mask.info):
            alpha = np.asarray(mask.convert("RGBA"))[..., 3]
            if (alpha < 255).any():  # a paint layer on transparency: what was painted
                return (alpha > 127).astype(np.float32)
        return (np.asarray(mask.convert("L")) > 127).astype(np.float32)
    if isinstance(mask, Tensor):
        mask = mask.detach().cpu().float().numpy()
    arr = np.asarray(mask, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr.max(axis=-1) if arr.shape[-1] in (1, 3, 4) else arr.max(axis=0)
    if arr.ndim != 2:
        raise ValueError(f"mask must be a 2-D image, got shape {arr.shape}")
    thresh = 127.0 if arr.max() > 1.0 else 0.5
    return (arr > thresh).astype(np.float32)


def latent_mask(mask: Any, image_size: Sequence[int], latent_size: Sequence[int]) -> Tensor:
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
def _image_tensor(image: Any, size: Sequence[int]) -> Tensor:
    """Image → (1, 3, H, W) in [-1, 1] at ``size`` (squashed like the sources, facts §5.3)."""
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image.astype(np.uint8))
    if isinstance(image, Image.Image):
        return pil_to_tensor(image, tuple(size))[None]
    if isinstance(image, Tensor):
        x = image[None] if image.ndim == 3 else image
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"image tensor must be (1, 3, H, W) in [-1, 1], got "
                             f"{tuple(image.shape)}")
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x.float(), size=tuple(size), mode="bicubic", antialias=True,
                              align_corners=False).clamp(-1, 1)
        return x.float()
    raise ValueError(f"unsupported image type {type(image).__name__}")


def reference_latents(pipe: Any, reference_image: Any) -> Tensor:
    """z_ref = E(y_ref) (scaled, the posterior mean) at the pipeline's generation size."""
    x = _image_tensor(reference_image, pipe.image_size)
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
    pipe: Any,
    reference_image: Any,
    mask: Any,
    new_source: Any,
    num_inference_steps: int = 50,
    generator: torch.Generator | None = None,
    reference_pose: Any = None,
    on_step: StepCallback | None = None,
    **kwargs: Any,
) -> Any:
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


def _as_pose_input(image: Any) -> Any:
    if isinstance(image, Tensor):
        raise ValueError("give reference_pose (keypoints) when the reference is a tensor")
    if isinstance(image, np.ndarray):
        return Image.fromarray(image.astype(np.uint8))
    return image


# ----------------------------------------------------------------------------- interpolation
def interpolation_weights(n_frames: int) -> list[float]:
    """t = linspace(0, 1, N) (N ≥ 2; N = 1 gives [0])."""
    if n_frames < 1:
        raise ValueError(f"need at least 1 frame, got {n_frames}")
    if n_frames == 1:
        return [0.0]
    return [i / (n_frames - 1) for i in range(n_frames)]


def interpolate(
    pipe: Any,
    source_a: Any,
    source_b: Any,
    target_pose: Any,
    n_frames: int = 5,
    generator: torch.Generator | None = None,
    num_inference_steps: int = 50,
    weights: Sequence[float] | None = None,
    on_step: StepCallback | None = None,
    **kwargs: Any,
) -> list[Any]:
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
    ts = list(weights) if weights is not None else interpolation_weights(n_frames)
    cond_a, _ = pipe.encode_conditions(source_a, target_pose)
    cond_b, _ = pipe.encode_conditions(source_b, target_pose)
    if cond_a.batch_size != 1 or cond_b.batch_size != 1:
        raise ValueError("interpolate takes one image per source and one target pose")
    return _frames(pipe, [cond_a.lerp(cond_b, float(t)) for t in ts], generator,
                   num_inference_steps, on_step, **kwargs)


def _frames(pipe: Any, conditions: Sequence[Any], generator: torch.Generator | None,
            num_inference_steps: int, on_step: StepCallback | None, **kwargs: Any) -> list[Any]:
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
    """Images side by side (left to right) on one row, resized to the first one's height."""
    if not images:
        raise ValueError("no images for the strip")
    h = images[0].height
    scaled = [im if im.height == h else im.resize((max(1, round(im.width * h / im.height)), h),
                                                 Image.BICUBIC) for im in images]
    width = sum(im.width for im in scaled) + pad * (len(scaled) - 1)
    strip = Image.new("RGB", (width, h), background)
    x = 0
    for im in scaled:
        strip.paste(im.convert("RGB"), (x, 0))
        x += im.width + pad
    return strip


__all__ = ["BODY_PARTS", "image_strip", "interpolate", "interpolation_weights", "latent_mask",
           "load_mask", "part_mask", "reference_latents", "style_transfer"]
