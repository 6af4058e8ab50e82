"""21-channel pose maps: exact equality with the authors' renderer (fixture), viewable images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cfld.pose import Keypoints, pose_map_to_image, render_pose_map, render_skeleton_image


def test_pose_maps_equal_official_fixture(fixtures_dir) -> None:
    folder = fixtures_dir / "official_pose"
    cases = json.loads((folder / "pose_maps.json").read_text())["cases"]
    ref = np.load(folder / "pose_maps.npz")
    checked = 0
    for case in cases:
        kp = Keypoints.from_strings(case["keypoints_y"], case["keypoints_x"], frame=(256, 176))
        for key in ref.files:
            name, hw = key.rsplit("_", 1)
            if name != case["name"]:
                continue
            h, w = (int(v) for v in hw.split("x"))
            pose = render_pose_map(kp, (h, w))
            assert pose.dtype == np.float32 and pose.shape == (21, h, w)
            assert np.abs(pose - ref[key]).max() == 0, key
            checked += 1
    assert checked == len(ref.files) == 12


def test_pose_map_layout() -> None:
    y = [100] * 18
    x = [50] * 18
    y[3] = x[3] = -1
    kp = Keypoints.from_strings(json.dumps(y), json.dumps(x))
    pose = render_pose_map(kp, (64, 48))
    assert pose.shape == (21, 64, 48)
    assert pose[3 + 3].max() == 0  # missing joint -> empty heatmap
    # Joint 0 at (100*64/256, 50*48/176) = (25, 13.6) -> truncated to (25, 13): the peak.
    assert pose[3, 25, 13] == 1.0
    assert 0 <= pose.min() and pose.max() <= 1
    assert pose[:3].max() > 0


def test_viewable_images() -> None:
    kp = Keypoints.from_strings(
        "[10, 30, 30, 50, 70, 30, 50, 70, 80, 110, 140, 80, 110, 140, 8, 8, 9, 9]",
        "[88, 88, 70, 65, 60, 106, 111, 116, 78, 76, 74, 98, 100, 102, 84, 92, 80, 96]",
    )
    img = render_skeleton_image(kp, (128, 88))
    assert img.mode == "RGB" and img.size == (88, 128)
    assert np.asarray(img).max() > 0
    pose = render_pose_map(kp, (32, 32))
    back = pose_map_to_image(torch.from_numpy(pose)[None])
    assert back.size == (32, 32) and back.mode == "RGB"
    with pytest.raises(ValueError, match="21"):
        pose_map_to_image(np.zeros((3, 8, 8)))
