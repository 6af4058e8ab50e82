"""Turn what users pass (photos, tensors, keypoints, files) into the model's input tensors."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from cfld.pose import Keypoints, render_pose_map
from cfld.pose.render import JOINT_COLORS

ImageLike = Union[Image.Image, Tensor, np.ndarray, str, os.PathLike]
PoseLike = Union[Keypoints, Tensor, np.ndarray, Image.Image, str, os.PathLike, dict]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file as RGB with a clear error for missing or unreadable files."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image not found: {p}")
    try:
        with Image.open(p) as img:
            return img.convert("RGB")
    except OSError as err:
        raise ValueError(f"{p} is not a readable image ({err})") from err


def pil_to_tensor(image: Image.Image, size: tuple[int, int]) -> Tensor:
    """PIL → (3, H, W) in [-1, 1], resized (bicubic, antialiased, aspect not kept: facts §5.3)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.BICUBIC)
    arr = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1) * 2 - 1  # (H, W, 3) → (3, H, W)


def prepare_source(source: ImageLike | Sequence[ImageLike], size: int) -> Tensor:
    """Source image(s) → (B, 3, size, size) in [-1, 1].

    Tensors are taken as already in [-1, 1] (resized if needed); PIL images, arrays (H, W, 3
    uint8) and file paths are loaded and squashed to a square as in the authors' code.
    """
    if isinstance(source, (list, tuple)):
        return torch.cat([prepare_source(s, size) for s in source])
    if isinstance(source, (str, os.PathLike)):
        source = open_image(source)
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[-1] != 3:
            raise ValueError(f"source array must be (H, W, 3) RGB, got shape {source.shape}")
        source = Image.fromarray(source.astype(np.uint8))
    if isinstance(source, Image.Image):
        return pil_to_tensor(source, (size, size))[None]
    if isinstance(source, Tensor):
        x = source[None] if source.ndim == 3 else source
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"source tensor must be (B, 3, H, W) or (3, H, W) in [-1, 1], got "
                             f"{tuple(source.shape)}")
        if x.min() < -1.01 or x.max() > 1.01:
            raise ValueError("source tensor values must lie in [-1, 1] (map [0, 1] images with "
                             "x * 2 - 1)")
        if tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x.float(), size=(size, size), mode="bicubic", antialias=True,
                              align_corners=False).clamp(-1, 1)
        return x.float()
    raise ValueError(f"unsupported source image type {type(source).__name__}; give a PIL image, "
                     "a file path, an (H, W, 3) array or a (B, 3, H, W) tensor in [-1, 1]")


def looks_like_skeleton(image: Image.Image) -> bool:
    """True for a rendered skeleton (mostly black with saturated joint colours), not a photo."""
    arr = np.asarray(image.convert("RGB"), dtype=np.int16)
    dark = (arr.max(axis=-1) < 16).mean()
    return bool(dark > 0.7)


def keypoints_from_skeleton_image(image: Image.Image) -> Keypoints:
    """Recover keypoints from a skeleton drawn in the authors' colours (joint discs).

    Each joint is the centroid of the pixels within a small distance of its unique colour.
    """
    arr = np.asarray(image.convert("RGB"), dtype=np.int16)
    h, w = arr.shape[:2]
    points = np.full((len(JOINT_COLORS), 2), -1.0)
    for j, colour in enumerate(JOINT_COLORS):
        dist = np.abs(arr - np.asarray(colour, dtype=np.int16)).sum(-1)
        ys, xs = np.nonzero(dist < 40)
        if len(ys) >= 3:
            points[j] = (float(np.round(ys.mean())), float(np.round(xs.mean())))
    if (points[:, 0] < 0).all():
        raise ValueError("no joints found in the skeleton image (expected the authors' joint "
                         "colours on black; give a keypoint JSON or a photo instead)")
    return Keypoints(points, frame=(h, w))


def keypoints_from_any(pose: Any, estimator: Any = None) -> Keypoints:
    """Keypoints from Keypoints, a JSON path/dict, a skeleton image or a photo (estimated)."""
    if isinstance(pose, Keypoints):
        return pose
    if isinstance(pose, dict):
        return Keypoints.from_json(pose)
    if isinstance(pose, (str, os.PathLike)):
        p = Path(pose)
        if p.suffix.lower() == ".json":
            return Keypoints.from_json(p)
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"target pose file {p} must be a keypoint .json or an image "
                             f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        pose = open_image(p)
    if isinstance(pose, Image.Image):
        if looks_like_skeleton(pose):
            return keypoints_from_skeleton_image(pose)
        from cfld.pose.estimate import estimate_keypoints

        return estimate_keypoints(pose.convert("RGB"), estimator=estimator)
    raise ValueError(f"unsupported target pose type {type(pose).__name__}")


def prepare_pose(pose: PoseLike | Sequence[PoseLike], size: tuple[int, int],
                 channels: int = 21, estimator: Any = None) -> Tensor:
    """Target pose(s) → (B, channels, H, W) pose map (the authors' 21-channel layout)."""
    if isinstance(pose, (list, tuple)) and not (
            len(pose) == 18 and all(isinstance(p, (list, tuple)) for p in pose)):
        return torch.cat([prepare_pose(p, size, channels, estimator) for p in pose])
    if isinstance(pose, np.ndarray) and pose.ndim in (3, 4):
        pose = torch.from_numpy(pose)
    if isinstance(pose, Tensor):
        x = pose[None] if pose.ndim == 3 else pose
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(f"pose map must be ({channels}, H, W) or (B, {channels}, H, W), got "
                             f"{tuple(pose.shape)}; build it with cfld.pose.render_pose_map")
        if tuple(x.shape[-2:]) != tuple(size):
            raise ValueError(f"pose map is {tuple(x.shape[-2:])} but this model needs "
                             f"{tuple(size)}; render it at that size (or pass keypoints)")
        return x.float()
    kp = keypoints_from_any(pose, estimator)
    return torch.from_numpy(render_pose_map(kp, size))[None]


def broadcast_batch(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Repeat a batch of 1 to match the other (one source, many poses — or the reverse)."""
    if a.shape[0] == b.shape[0]:
        return a, b
    if a.shape[0] == 1:
        return a.expand(b.shape[0], *a.shape[1:]), b
    if b.shape[0] == 1:
        return a, b.expand(a.shape[0], *b.shape[1:])
    raise ValueError(f"{a.shape[0]} source images but {b.shape[0]} target poses; give equal "
                     "numbers or one of either")
