"""Turn what users pass (photos, tensors, keypoints, files) into the model's input tensors."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from cfld.data.images import INPUT_IMAGE_EXTENSIONS, image_to_signed, open_image
from cfld.pose import Keypoints, render_pose_map
from cfld.pose.render import JOINT_COLORS

if TYPE_CHECKING:
    from cfld.pose.estimate import PoseEstimator

ImageLike = Union[Image.Image, Tensor, np.ndarray, str, os.PathLike]
PoseLike = Union[Keypoints, Tensor, np.ndarray, Image.Image, str, os.PathLike, dict]

#: Smallest side of an input image (a 1×1 image would be upscaled into a flat colour).
MIN_INPUT_SIDE = 16
#: Kept under its old name; the list lives in :mod:`cfld.data.images`.
IMAGE_SUFFIXES = set(INPUT_IMAGE_EXTENSIONS)


def prepare_image(image: ImageLike | Sequence[ImageLike], size: Sequence[int],
                  what: str = "image") -> Tensor:
    """Image(s) → (B, 3, h, w) in [-1, 1] at ``size = (h, w)`` (squashed, as the authors do).

    Tensors are taken as already in [-1, 1] (resized if needed); PIL images, arrays (H, W, 3
    uint8) and file paths are loaded and resized with PIL bicubic (fidelity §5.3).
    """
    size = (int(size[0]), int(size[1]))
    if isinstance(image, (list, tuple)):
        if not image:
            raise ValueError(f"{what}: the list is empty; give at least one image")
        return torch.cat([prepare_image(s, size, what) for s in image])
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image, what=what)
    if isinstance(image, np.ndarray):
        image = array_to_image(image, what)
    if isinstance(image, Image.Image):
        check_side(image.height, image.width, what)
        return image_to_signed(image, size)[None]
    if isinstance(image, Tensor):
        x = image[None] if image.ndim == 3 else image
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] == 0:
            raise ValueError(f"{what} tensor must be (B, 3, H, W) or (3, H, W) in [-1, 1], got "
                             f"{tuple(image.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{what} tensor must be floating point in [-1, 1], got {x.dtype}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{what} tensor holds NaN or inf; give finite values in [-1, 1]")
        if x.min() < -1.01 or x.max() > 1.01:
            raise ValueError(f"{what} tensor values must lie in [-1, 1] (map [0, 1] images with "
                             "x * 2 - 1)")
        check_side(x.shape[-2], x.shape[-1], what)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x.float(), size=size, mode="bicubic", antialias=True,
                              align_corners=False).clamp(-1, 1)
        return x.float()
    raise ValueError(f"unsupported {what} type {type(image).__name__}; give a PIL image, "
                     "a file path, an (H, W, 3) array or a (B, 3, H, W) tensor in [-1, 1]")


def check_side(h: int, w: int, what: str) -> None:
    if min(h, w) < MIN_INPUT_SIDE:
        raise ValueError(f"{what} is {w}×{h} pixels; it must be at least {MIN_INPUT_SIDE} pixels "
                         "on each side (smaller images carry no appearance); give a larger photo")


def array_to_image(arr: np.ndarray, what: str) -> Image.Image:
    """(H, W, 3) uint8, or floats in [0, 1], → PIL RGB (other dtypes and ranges refused)."""
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{what} array must be (H, W, 3) RGB, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return Image.fromarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"{what} float array must hold finite values in [0, 1] (or give "
                             "uint8 values 0..255)")
        return Image.fromarray(np.round(arr * 255).astype(np.uint8))
    if np.issubdtype(arr.dtype, np.integer) and arr.size and 0 <= arr.min() and arr.max() <= 255:
        return Image.fromarray(arr.astype(np.uint8))
    raise ValueError(f"{what} array must be uint8 (0..255) or float in [0, 1], got dtype "
                     f"{arr.dtype}" + (f" with values {arr.min()}..{arr.max()}"
                                       if arr.size and np.issubdtype(arr.dtype, np.number) else ""))


def prepare_source(source: ImageLike | Sequence[ImageLike], size: int) -> Tensor:
    """Source image(s) → (B, 3, size, size) in [-1, 1] (see :func:`prepare_image`)."""
    return prepare_image(source, (size, size), "source image")


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


def keypoints_from_any(pose: PoseLike, estimator: PoseEstimator | None = None) -> Keypoints:
    """Keypoints from Keypoints, an example pose's name, a JSON path/dict, a skeleton image or a
    photo (estimated)."""
    if isinstance(pose, Keypoints):
        return pose
    if isinstance(pose, dict):
        return Keypoints.from_json(pose)
    if isinstance(pose, (str, os.PathLike)):
        from cfld.pose.gallery import example_pose, example_pose_names, is_example_pose

        if is_example_pose(pose):  # "walking": a shipped example pose (cfld pose --list)
            return example_pose(pose)
        p = Path(pose)
        if not p.suffix and not p.exists():
            raise FileNotFoundError(f"target pose {os.fspath(pose)!r}: no such file, and not an "
                                    f"example pose ({', '.join(example_pose_names())})")
        if p.suffix.lower() == ".json":
            return Keypoints.from_json(p)
        if p.is_dir():
            raise ValueError(f"target pose {p} is a folder; give a keypoint .json file or an image")
        if p.suffix.lower() not in INPUT_IMAGE_EXTENSIONS:
            raise ValueError(f"target pose file {p} must be a keypoint .json or an image "
                             f"({', '.join(sorted(INPUT_IMAGE_EXTENSIONS))})")
        pose = open_image(p, what="target pose image")
    if isinstance(pose, Image.Image):
        if looks_like_skeleton(pose):
            return keypoints_from_skeleton_image(pose)
        from cfld.pose.estimate import estimate_keypoints

        return estimate_keypoints(pose.convert("RGB"), estimator=estimator)
    raise ValueError(f"unsupported target pose type {type(pose).__name__}")


def prepare_pose(pose: PoseLike | Sequence[PoseLike], size: tuple[int, int],
                 channels: int = 21, estimator: PoseEstimator | None = None) -> Tensor:
    """Target pose(s) → (B, channels, H, W) pose map (the authors' 21-channel layout)."""
    if isinstance(pose, (list, tuple)) and not (
            len(pose) == 18 and all(isinstance(p, (list, tuple)) for p in pose)):
        if not pose:
            raise ValueError("target pose: the list is empty; give at least one pose")
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
        if x.shape[0] == 0 or not (x.is_floating_point() and bool(torch.isfinite(x).all())):
            raise ValueError("pose map must be a non-empty float tensor of finite values; build "
                             "it with cfld.pose.render_pose_map")
        return x.float()
    kp = keypoints_from_any(pose, estimator).require_joints()
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
