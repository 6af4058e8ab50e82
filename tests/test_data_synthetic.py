"""Procedural people in the DeepFashion layout: layout, determinism, difficulty, speed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cfld.data.deepfashion import check, read_annotations, read_lst, read_pairs
from cfld.data.synthetic import PART_LABELS, make_sample_root, pair_silhouette_iou, synthesize

FILES = (
    "fasion-resize-pairs-train.csv",
    "fasion-resize-pairs-test.csv",
    "fasion-resize-annotation-train.csv",
    "fasion-resize-annotation-test.csv",
    "train.lst",
    "test.lst",
)


def _person(name: str) -> str:
    return re.match(r"fashionSYNTHPeopleid(\d{8})", name).group(1)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_sample_root(tmp_path_factory.mktemp("synth") / "root", people=6, poses=4,
                            size=(128, 88), seed=0, test_people=2)


def test_layout_and_check(root: Path) -> None:
    for f in FILES:
        assert (root / f).is_file(), f
    assert check(root) == []
    train, test = read_lst(root / "train.lst"), read_lst(root / "test.lst")
    assert len(train) == 24 and len(test) == 8
    # Test people never appear in training.
    assert not {_person(n) for n in train} & {_person(n) for n in test}
    pairs = read_pairs(root / "fasion-resize-pairs-train.csv", on_duplicate="error")
    assert len(pairs) == 6 * 4 * 3  # all ordered pairs of different poses, per person
    assert all(a != b and _person(a) == _person(b) for a, b in pairs)
    for name in train:
        img = Image.open(root / "train_highres" / name)
        assert img.size == (88, 128) and img.mode == "RGB"
        parts = np.asarray(Image.open(root / "train_parts" / (Path(name).stem + ".png")))
        assert parts.shape == (128, 88) and parts.dtype == np.uint8
        assert set(np.unique(parts)) <= set(PART_LABELS)
        assert (parts > 0).mean() > 0.02


def test_keypoints_match_the_drawing(root: Path) -> None:
    annots = read_annotations(root / "fasion-resize-annotation-train.csv")
    assert all(kp.frame == (256, 176) for kp in annots.values())
    hits = total = 0
    for name, kp in annots.items():
        parts = np.asarray(Image.open(root / "train_parts" / (Path(name).stem + ".png")))
        for j in (1, 2, 5, 8, 11):  # neck, shoulders, hips sit on the body
            if kp.present[j]:
                y, x = kp.coords[j]
                total += 1
                hits += parts[int(y * 128 / 256), int(x * 88 / 176)] > 0
    assert total > 50 and hits / total > 0.9
    # Back views have no face keypoints.
    for name, kp in annots.items():
        if "back" in name:
            assert not kp.present[[0, 14, 15]].any()


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = make_sample_root(tmp_path / "a", people=3, poses=3, size=(64, 44), seed=7, test_people=1)
    b = make_sample_root(tmp_path / "b", people=3, poses=3, size=(64, 44), seed=7, test_people=1)
    c = make_sample_root(tmp_path / "c", people=3, poses=3, size=(64, 44), seed=8, test_people=1)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert len(files_a) == 2 * 12 + 6
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / FILES[2]).read_bytes() != (c / FILES[2]).read_bytes()
    assert not list(a.rglob("*.tmp"))
    # Rewriting a smaller set into the same folder leaves no stale images behind.
    make_sample_root(a, people=2, poses=2, size=(64, 44), seed=7, test_people=1)
    assert len(list((a / "train_highres").iterdir())) == 4
    assert len(list((a / "train_parts").iterdir())) == 4


def test_sample_root_is_fast(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    make_sample_root(tmp_path / "r", people=6, poses=4, size=(128, 88), seed=1)
    assert time.perf_counter() - t0 < 2.0


def test_pairs_are_hard(root: Path) -> None:
    # Copying the source is a poor answer: source and target silhouettes overlap little.
    iou = pair_silhouette_iou(root, "train")
    assert 0.0 < iou < 0.5
    # ... and the figure is the mean per-pair IoU of the part maps, written out
    ious = []
    for src, tgt in read_pairs(root / "fasion-resize-pairs-train.csv"):
        a, b = (np.asarray(Image.open(root / "train_parts" / (Path(n).stem + ".png"))) > 0
                for n in (src, tgt))
        ious.append((a & b).sum() / (a | b).sum())
    assert iou == pytest.approx(float(np.mean(ious)), abs=1e-12)
    assert pair_silhouette_iou(root, "test") < 0.5
    with pytest.raises(ValueError, match="split"):
        pair_silhouette_iou(root, "val")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="poses >= 2"):
        synthesize(tmp_path / "x", people=2, poses=1)
    with pytest.raises(ValueError, match="size"):
        synthesize(tmp_path / "x", people=2, poses=2, size=(0, 10))


def test_cli_synth_writes_synthesize_with_its_flags_and_caps_pairs(tmp_path: Path,
                                                                   capsys) -> None:
    from cfld.cli import main

    out = tmp_path / "cli"
    assert main(["data", "synth", "--out", str(out), "--people", "3", "--poses", "4",
                 "--size", "64x44", "--seed", "2", "--test-people", "1",
                 "--max-pairs-per-person", "5", "--iou"]) == 0
    text = capsys.readouterr().out
    assert "images/s" in text and "IoU" in text
    assert len(read_pairs(out / FILES[0])) == 15
    # What the command wrote is synthesize() with the flags: the same files, byte for byte,
    # and the IoU it printed is that of the written pairs.
    ref = tmp_path / "lib"
    synthesize(ref, people=3, poses=4, size=(64, 44), seed=2, test_people=1,
               max_pairs_per_person=5)
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    assert len(written) > 20
    for rel in written:
        assert (out / rel).read_bytes() == (ref / rel).read_bytes(), rel
    assert f"mean pair silhouette IoU (train): {pair_silhouette_iou(ref, 'train'):.3f}" in text
    assert main(["data", "synth", "--out", str(out), "--size", "64"]) == 2
