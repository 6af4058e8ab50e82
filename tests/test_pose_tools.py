"""Pose tools a new user reaches for: example poses by name, `cfld pose --overlay/--list`, the
shipped model's note for a real photo, a warning for a photo without a person, and no
third-party log lines."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cfld.cli import main
from cfld.pose.gallery import example_pose, example_pose_names, gallery_poses

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A real photograph of a person, one of a coffee cup, and procedural people."""
    from cfld.data.synthetic_root import make_sample_root

    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage_data.astronaut()).save(d / "astronaut.png")
    Image.fromarray(skimage_data.coffee()).save(d / "coffee.png")
    root = make_sample_root(d / "root", people=3, poses=2, size=(128, 88), test_people=1)
    return d, sorted((root / "train_highres").iterdir())


def test_example_poses_by_name_everywhere():
    from cfld.animation import load_pose_sequence
    from cfld.pipelines.inputs import keypoints_from_any

    names = example_pose_names()
    assert names[:2] == ["standing_front", "walking"] and len(names) == 6
    assert keypoints_from_any("walking") == gallery_poses()["walking"]
    with pytest.raises(FileNotFoundError, match="walking"):  # a typo lists the names
        keypoints_from_any("walkin")
    seq = load_pose_sequence("standing_front,walking,side", frames=9)
    assert len(seq) == 9 and seq[0] == example_pose("standing_front")
    assert seq[4] == example_pose("walking") and seq[8] == example_pose("side")
    assert len(load_pose_sequence("walking,arms_raised")) == 5  # 4 frames per step
    with pytest.raises(FileNotFoundError, match="unknown: sid"):
        load_pose_sequence("walking,sid")


def test_pose_list_and_names(capsys):
    assert main(["pose", "--list"]) == 0
    out = capsys.readouterr().out
    for name in example_pose_names():
        assert name in out
    assert main(["pose", "walking"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(printed)["keypoints"] == example_pose("walking").to_dict()["keypoints"]


def test_pose_overlay_of_a_real_photo(photos, tmp_path, capsys):
    d, _ = photos
    old = os.umask(0o022)
    try:
        code = main(["pose", str(d / "astronaut.png"), "--out", str(tmp_path / "kp.json"),
                     "--overlay", str(tmp_path / "over.png")])
    finally:
        os.umask(old)
    out = capsys.readouterr().out
    assert code == 0
    assert "missing: " in out and "left_ankle" in out  # the astronaut's legs are cut off
    for name in ("kp.json", "over.png"):
        assert f"wrote {tmp_path / name}" in out
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    with Image.open(tmp_path / "over.png") as over, Image.open(d / "astronaut.png") as photo:
        assert over.size == photo.size
        changed = np.abs(np.asarray(over, float) - np.asarray(photo.convert("RGB"), float))
    assert 0.005 < (changed.max(-1) > 40).mean() < 0.3  # skeleton and labels, not a new image


def test_pose_prints_no_native_log_lines(photos, tmp_path):
    d, _ = photos
    run = subprocess.run([sys.executable, "-m", "cfld.cli", "pose", str(d / "astronaut.png"),
                          "--out", str(tmp_path / "kp.json")], capture_output=True, text=True)
    assert run.returncode == 0
    assert run.stderr == "", run.stderr  # no TFLite / absl lines
    assert len(run.stdout.strip().splitlines()) == 2


def test_a_photo_without_a_person_is_one_line(photos, capsys):
    d, _ = photos
    assert main(["pose", str(d / "coffee.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no person found" in err[0]


def test_source_notes(photos):
    from cfld.scope import SHIPPED_NOTE, looks_procedural, source_notes

    d, procedural = photos
    assert all(looks_procedural(Image.open(p)) for p in procedural)
    astronaut, coffee = Image.open(d / "astronaut.png"), Image.open(d / "coffee.png")
    assert not looks_procedural(astronaut) and not looks_procedural(coffee)
    assert not looks_procedural(astronaut.convert("L"))  # a grey photo is not procedural
    assert source_notes(Image.open(procedural[0]), shipped=True) == []
    assert source_notes(astronaut, shipped=True) == [SHIPPED_NOTE]
    assert source_notes(astronaut, shipped=False) == []
    notes = source_notes(coffee, shipped=False)
    assert len(notes) == 1 and "no person found" in notes[0]
