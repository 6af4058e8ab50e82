"""Keypoints -> the authors' 21-channel pose tensor, and viewable skeleton images.

Layout (fidelity §5.4): channels 0-2 are an OpenCV-drawn skeleton (anti-aliased bones, then
joints) divided by 255; channels 3-20 are one Gaussian heatmap (sigma 6, peak 1) per joint.
Keypoints are scaled from their frame to the canvas and truncated toward zero with ``int()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

from cfld.pose.keypoints import NUM_JOINTS, Keypoints
from cfld.sizes import check_size

if TYPE_CHECKING:
    import torch

NUM_POSE_CHANNELS = 3 + NUM_JOINTS
HEATMAP_SIGMA = 6

# Bones, drawn in this order (fidelity §5.4).
BONES: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
BONE_COLORS: tuple[tuple[int, int, int], ...] = (
    (153, 0, 0), (153, 51, 0), (153, 102, 0), (153, 153, 0), (102, 153, 0), (51, 153, 0),
    (0, 153, 0), (0, 153, 51), (0, 153, 102), (0, 153, 153), (0, 102, 153), (0, 51, 153),
    (0, 0, 153), (51, 0, 153), (102, 0, 153), (153, 0, 153), (153, 0, 102),
)  # fmt: skip
JOINT_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
BONE_THICKNESS = 2
JOINT_RADIUS = 3


def canvas_positions(kp: Keypoints, size: Sequence[int]) -> list[tuple[int, int] | None]:
    """Integer canvas position ``(row, col)`` of every joint, ``None`` when missing.

    Scaling is y*H/frame_H and x*W/frame_W, then ``int()`` (truncation toward zero), as in the
    authors' renderer (fidelity §5.4).

    Args:
        kp: the keypoints.
        size: canvas ``(H, W)``.

    Returns:
        18 entries, ``(row, col)`` or ``None``.
    """
    h, w = check_size(size, "size")
    fh, fw = kp.frame
    out: list[tuple[int, int] | None] = []
    for (y, x), ok in zip(kp.coords.tolist(), kp.present.tolist()):
        out.append((int(y * h / fh), int(x * w / fw)) if ok else None)
    return out


def draw_skeleton(kp: Keypoints, size: Sequence[int]) -> np.ndarray:
    """Draw the coloured skeleton on a black ``(H, W, 3)`` uint8 canvas (RGB channel order).

    Args:
        kp: the keypoints.
        size: canvas ``(H, W)``.

    Returns:
        The uint8 canvas.
    """
    h, w = check_size(size, "size")
    pos = canvas_positions(kp, (h, w))
    canvas = np.zeros((h, w, 3), dtype=np.uint8)
    # fidelity §5.4: every bone first (skipping those with a missing end), then every joint.
    for (a, b), color in zip(BONES, BONE_COLORS):
        pa, pb = pos[a], pos[b]
        if pa is None or pb is None:
            continue
        cv2.line(canvas, (pa[1], pa[0]), (pb[1], pb[0]), color, BONE_THICKNESS, cv2.LINE_AA)
    for p, color in zip(pos, JOINT_COLORS):
        if p is None:
            continue
        cv2.circle(canvas, (p[1], p[0]), JOINT_RADIUS, color, -1, cv2.LINE_AA)
    return canvas


def render_heatmaps(kp: Keypoints, size: Sequence[int], sigma: float = HEATMAP_SIGMA) -> np.ndarray:
    """One Gaussian heatmap per joint: ``exp(-((r-cy)^2 + (c-cx)^2) / (2 sigma^2))``.

    Computed in float64 and stored as float32, peak 1, not normalised (fidelity §5.4); a missing
    joint gives an all-zero map.

    Args:
        kp: the keypoints.
        size: canvas ``(H, W)``.
        sigma: standard deviation in canvas pixels (authors: 6).

    Returns:
        ``(18, H, W)`` float32.
    """
    h, w = check_size(size, "size")
    out = np.zeros((NUM_JOINTS, h, w), dtype=np.float32)
    rows = np.arange(h)[:, None]  # (H, 1)
    cols = np.arange(w)[None, :]  # (1, W)
    denom = 2 * sigma**2
    for j, p in enumerate(canvas_positions(kp, (h, w))):
        if p is None:
            continue
        out[j] = np.exp(-((rows - p[0]) ** 2 + (cols - p[1]) ** 2) / denom)  # (H, W)
    return out


def render_pose_map(kp: Keypoints, size: Sequence[int]) -> np.ndarray:
    """The authors' 21-channel pose tensor (fidelity §5.4) at any canvas size.

    Args:
        kp: the keypoints (any frame; they are scaled to the canvas).
        size: canvas ``(H, W)``; the authors use ``(256, 256)``.

    Returns:
        ``(21, H, W)`` float32: skeleton RGB / 255 in channels 0-2, heatmaps of joints 0-17 in 3-20.
    """
    h, w = check_size(size, "size")
    skeleton = draw_skeleton(kp, (h, w)).transpose(2, 0, 1).astype(np.float32) / 255  # (3, H, W)
    return np.concatenate([skeleton, render_heatmaps(kp, (h, w))], axis=0)  # (21, H, W)


def render_skeleton_image(kp: Keypoints, size: Sequence[int] | None = None) -> Image.Image:
    """A viewable RGB image of the skeleton on black (for grids and UIs).

    Args:
        kp: the keypoints.
        size: image ``(H, W)``; defaults to the keypoints' frame.

    Returns:
        A PIL RGB image.
    """
    return Image.fromarray(draw_skeleton(kp, kp.frame if size is None else size), mode="RGB")


def draw_overlay(photo: Image.Image, kp: Keypoints) -> Image.Image:
    """The skeleton drawn over ``photo``, every joint numbered (COCO-18 index, see
    :data:`~cfld.pose.keypoints.JOINT_NAMES`), the missing joints listed at the bottom.

    The keypoints are scaled from their frame to the photo; lines and labels grow with the
    photo, so that they stay readable on large and small images alike.
    """
    from cfld.pose.keypoints import JOINT_NAMES

    canvas = np.array(photo.convert("RGB"))  # (H, W, 3), a copy we draw on
    h, w = canvas.shape[:2]
    unit = max(1, round(min(h, w) / 256))
    pos = canvas_positions(kp, (h, w))
    for (a, b), color in zip(BONES, BONE_COLORS):
        if pos[a] is not None and pos[b] is not None:
            cv2.line(canvas, pos[a][::-1], pos[b][::-1], color, 2 * unit, cv2.LINE_AA)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35 * unit
    for j, (p, color) in enumerate(zip(pos, JOINT_COLORS)):
        if p is None:
            continue
        cv2.circle(canvas, p[::-1], 3 * unit, color, -1, cv2.LINE_AA)
        at = (p[1] + 3 * unit, p[0] - 2 * unit)
        cv2.putText(canvas, str(j), at, font, scale, (0, 0, 0), 3 * unit, cv2.LINE_AA)
        cv2.putText(canvas, str(j), at, font, scale, (255, 255, 255), unit, cv2.LINE_AA)
    missing = [f"{j} {JOINT_NAMES[j]}" for j, p in enumerate(pos) if p is None]
    lines: list[str] = []
    for k, item in enumerate(missing):  # "missing: 3 right_elbow, ...", wrapped to the width
        wider = f"{lines[-1]}, {item}" if lines else f"missing: {item}"
        if k == 0 or cv2.getTextSize(wider, font, scale, unit)[0][0] <= w - 8 * unit:
            lines[-1:] = [wider]
        else:
            lines.append(item)
    step = int(14 * unit)
    for i, line in enumerate(lines):
        at = (4 * unit, h - step * (len(lines) - i) + 8 * unit)
        cv2.putText(canvas, line, at, font, scale, (0, 0, 0), 3 * unit, cv2.LINE_AA)
        cv2.putText(canvas, line, at, font, scale, (255, 255, 0), unit, cv2.LINE_AA)
    return Image.fromarray(canvas, mode="RGB")


def pose_map_to_image(pose: np.ndarray | torch.Tensor, heatmaps: bool = True) -> Image.Image:
    """Turn a 21-channel pose map (numpy array or torch tensor) back into a viewable image.

    Args:
        pose: ``(21, H, W)`` array/tensor (a leading batch dimension of 1 is accepted).
        heatmaps: also show the maximum over the 18 heatmaps as a grey glow behind the skeleton.

    Returns:
        A PIL RGB image of size ``W x H``.

    Raises:
        ValueError: when the input does not have 21 channels.
    """
    arr = pose.detach().cpu().numpy() if hasattr(pose, "detach") else np.asarray(pose)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[0] != NUM_POSE_CHANNELS:
        raise ValueError(
            f"a pose map must have shape ({NUM_POSE_CHANNELS}, H, W), got {tuple(arr.shape)}"
        )
    rgb = np.clip(arr[:3].transpose(1, 2, 0), 0, 1)  # (H, W, 3)
    if heatmaps:
        glow = 0.35 * np.clip(arr[3:].max(axis=0), 0, 1)[..., None]  # (H, W, 1)
        rgb = np.maximum(rgb, glow)
    return Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), mode="RGB")
