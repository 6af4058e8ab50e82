"""cfld.pose: COCO-18 keypoints, the authors' 21-channel pose maps, and pose estimation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cfld.pose.keypoints import (
    DEEPFASHION_FRAME,
    FLIP_PERMUTATION,
    JOINT_NAMES,
    NUM_JOINTS,
    Keypoints,
)
from cfld.pose.render import (
    NUM_POSE_CHANNELS,
    draw_skeleton,
    pose_map_to_image,
    render_heatmaps,
    render_pose_map,
    render_skeleton_image,
)
from cfld.sizes import parse_size

__all__ = [
    "DEEPFASHION_FRAME",
    "FLIP_PERMUTATION",
    "JOINT_NAMES",
    "NUM_JOINTS",
    "NUM_POSE_CHANNELS",
    "Keypoints",
    "draw_skeleton",
    "get_estimator",
    "parse_size",
    "pose_map_to_image",
    "render_heatmaps",
    "render_pose_map",
    "render_skeleton_image",
]


if TYPE_CHECKING:
    from cfld.pose.estimate import PoseEstimator


def get_estimator(name: str = "mediapipe", **kwargs: Any) -> PoseEstimator:
    """Return a pose estimator by name (see :func:`cfld.pose.estimate.get_estimator`).

    Imported lazily so that ``import cfld.pose`` never loads MediaPipe.
    """
    from cfld.pose.estimate import get_estimator as _get

    return _get(name, **kwargs)
