"""Keypoints value: parsing, JSON, rescale, flip, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cfld.pose import FLIP_PERMUTATION, JOINT_NAMES, Keypoints, parse_size

Y = "[20, 40, 41, 70, 100, 42, 72, 101, 120, 170, 220, 121, 171, 221, 15, 16, 18, -1]"
X = "[88, 88, 60, 55, 50, 116, 121, 126, 70, 68, 66, 106, 108, 110, 82, 94, 75, 5]"


def test_from_strings_and_present() -> None:
    kp = Keypoints.from_strings(Y, X, frame=(256, 176))
    assert kp.frame == (256, 176)
    assert kp.coords.shape == (18, 2)
    assert kp.coords[0].tolist() == [20, 88]
    # facts §5.1: a joint is missing if either coordinate is -1 -> both become -1.
    assert kp.coords[17].tolist() == [-1, -1]
    assert kp.present.sum() == 17 and not kp.present[17]
    assert not kp.coords.flags.writeable
    assert len(JOINT_NAMES) == 18


def test_strings_roundtrip_and_json(tmp_path) -> None:
    kp = Keypoints.from_strings(Y, X)
    ys, xs = kp.to_strings()
    assert Keypoints.from_strings(ys, xs) == kp
    path = kp.to_json(tmp_path / "sub" / "kp.json")
    data = json.loads(path.read_text())
    assert data["frame"] == [256, 176] and len(data["keypoints"]) == 18
    assert data["keypoints"][17] == [-1, -1]
    assert Keypoints.from_json(path) == kp
    assert Keypoints.from_json(data) == kp
    assert not list(tmp_path.glob("sub/*.tmp"))  # atomic write leaves no temp file


def test_rescale_and_flip() -> None:
    kp = Keypoints.from_strings(Y, X)
    big = kp.rescale((512, 352))
    assert big.frame == (512, 352)
    np.testing.assert_allclose(big.coords[kp.present], kp.coords[kp.present] * 2)
    assert big.coords[17].tolist() == [-1, -1]
    np.testing.assert_allclose(big.rescale((256, 176)).coords, kp.coords)

    f = kp.flip()
    # Right shoulder (2) of the flipped person is the mirrored left shoulder (5).
    assert f.coords[2].tolist() == [kp.coords[5, 0], 175 - kp.coords[5, 1]]
    assert f.coords[0].tolist() == [20, 175 - 88]
    assert f.coords[16].tolist() == [-1, -1] and not f.present[16]
    assert f.flip() == kp
    assert sorted(FLIP_PERMUTATION) == list(range(18))


def test_validation_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="outside the 256x176 frame"):
        Keypoints.from_strings(Y.replace("[20,", "[300,"), X)
    with pytest.raises(ValueError, match="outside"):
        Keypoints.from_strings(Y, X.replace("[88,", "[176,"))
    with pytest.raises(ValueError, match="outside"):
        Keypoints.from_strings(Y.replace("[20,", "[-5,"), X)
    with pytest.raises(ValueError, match="17 values, expected 18"):
        Keypoints.from_strings("[" + Y[5:], X)
    with pytest.raises(ValueError, match="expected 18 COCO-18 joints"):
        Keypoints(np.zeros((17, 2)), (10, 10))
    with pytest.raises(ValueError, match="not a JSON list"):
        Keypoints.from_strings("[1, 2", X)
    with pytest.raises(ValueError, match="frame"):
        Keypoints(np.zeros((18, 2)), (0, 10))
    with pytest.raises(ValueError, match="'frame'"):
        Keypoints.from_json({"keypoints": []})
    with pytest.raises(FileNotFoundError):
        Keypoints.from_json(tmp_path / "nope.json")


def test_parse_size() -> None:
    assert parse_size("256x176") == (256, 176)
    with pytest.raises(ValueError, match="HxW"):
        parse_size("256")
