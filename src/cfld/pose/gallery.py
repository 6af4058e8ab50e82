"""The example poses shipped with cfld, usable by name wherever a target pose is accepted.

They are keypoint JSON files in the 256×176 DeepFashion frame under ``cfld/assets/poses``
(``01_standing_front.json`` is the pose ``standing_front``).  ``cfld pose --list`` prints them;
``cfld generate --pose walking``, ``pipe(source, "walking")`` and the app take the names.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from cfld.pose.keypoints import Keypoints

#: The built-in pose gallery: keypoint JSON files in the 256×176 DeepFashion frame.
POSE_GALLERY_DIR = Path(__file__).resolve().parents[1] / "assets" / "poses"


def _name(path: Path) -> str:
    return path.stem.split("_", 1)[1] if path.stem[:2].isdigit() else path.stem


@functools.lru_cache(maxsize=1)
def _files() -> dict[str, Path]:
    files = {_name(f): f for f in sorted(POSE_GALLERY_DIR.glob("*.json"))}
    if not files:
        raise FileNotFoundError(f"the pose gallery is missing from this installation "
                                f"({POSE_GALLERY_DIR})")
    return files


def example_pose_files() -> dict[str, Path]:
    """Name → keypoint JSON file of every example pose, in gallery order."""
    return dict(_files())


def example_pose_names() -> list[str]:
    """The names of the example poses, in gallery order."""
    return list(_files())


def gallery_poses() -> dict[str, Keypoints]:
    """The built-in poses by name (``standing_front``, ``walking``, ``arms_raised``, …)."""
    return {name: Keypoints.from_json(path) for name, path in _files().items()}


def example_pose(name: str) -> Keypoints:
    """One example pose by name.

    Raises:
        ValueError: ``name`` is not an example pose (the message lists them).
    """
    files = _files()
    if name not in files:
        raise ValueError(f"{name!r} is not an example pose; choose one of "
                         f"{', '.join(files)} (cfld pose --list)")
    return Keypoints.from_json(files[name])


def is_example_pose(value: object) -> bool:
    """Whether ``value`` names an example pose (and is not an existing file of that name)."""
    if not isinstance(value, str) or os.path.exists(value):
        return False
    return value in _files()


__all__ = ["POSE_GALLERY_DIR", "example_pose", "example_pose_files", "example_pose_names",
           "gallery_poses", "is_example_pose"]
