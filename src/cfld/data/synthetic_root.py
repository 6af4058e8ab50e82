"""Procedural data roots: the people of :mod:`cfld.data.synthetic` written in exactly the
DeepFashion file layout (design §5), and a quick check of how hard a root's pairs are.

    OUT/train_highres/*.jpg   OUT/test_highres/*.jpg       images
    OUT/train_parts/*.png     OUT/test_parts/*.png         part labels (see PART_LABELS)
    OUT/fasion-resize-{pairs,annotation}-{train,test}.csv  OUT/train.lst  OUT/test.lst

Keypoints are written in the 256×176 annotation frame (fidelity §5.1) whatever the image size.
Every image depends only on ``(seed, person, pose)``, so the same seed gives byte-identical files.
``layout="market1501"`` writes the same people in Market-1501's layout instead
(:mod:`cfld.data.layouts`: ``market-*.csv``, ``bounding_box_*/``, keypoints in 128×64, no list
files, Market-style names such as ``0003_c2s1_000001_01.jpg``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from cfld.checkpoint import write_bytes_atomic, write_text_atomic
from cfld.data.formats import SPLITS, DataError, read_pairs
from cfld.data.layouts import DataLayout, detect_layout, get_layout
from cfld.data.synthetic import (
    _NAME_PREFIX,
    IMAGE_SUFFIX,
    JPEG_QUALITY,
    PARTS_DIRS,
    render_person,
    sample_appearance,
    sample_pose,
)
from cfld.pose.keypoints import DEEPFASHION_FRAME, MISSING, Keypoints
from cfld.sizes import check_size

#: Our Market-style file names (``<person>_c<camera>s1_<pose>_<view>.jpg``), for stale removal.
_MARKET_GLOB = "[0-9][0-9][0-9][0-9]*_c[1-6]s1_*"


def image_name(person: int, pose: int, front: bool, layout: str = "deepfashion") -> str:
    """Flat DeepFashion-style file name of one procedural image (fidelity §5.2 style), or a
    Market-1501-style one.

    Args:
        person: person id.
        pose: pose index of that person.
        front: front (True) or back view.
        layout: ``deepfashion`` or ``market1501``.

    Returns:
        e.g. ``fashionSYNTHPeopleid0000000302_1front.jpg`` or ``0003_c3s1_000002_01.jpg``.
    """
    if get_layout(layout).name == "market1501":
        return f"{person:04d}_c{1 + pose % 6}s1_{pose:06d}_0{1 if front else 2}{IMAGE_SUFFIX}"
    view = "front" if front else "back"
    return f"{_NAME_PREFIX}{person:08d}{pose:02d}_1{view}{IMAGE_SUFFIX}"


def _encode(img_rgb: np.ndarray, parts: np.ndarray) -> tuple[bytes, bytes]:
    ok1, jpg = cv2.imencode(".jpg", img_rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    ok2, png = cv2.imencode(".png", parts, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok1 and ok2, "OpenCV failed to encode an image"
    return jpg.tobytes(), png.tobytes()


def synthesize(
    out_dir: str | os.PathLike,
    people: int = 100,
    poses: int = 6,
    size: Sequence[int] = DEEPFASHION_FRAME,
    seed: int = 0,
    test_people: int | None = None,
    max_pairs_per_person: int | None = None,
    log: Callable[[str], None] | None = None,
    layout: str | DataLayout = "deepfashion",
) -> dict[str, float]:
    """Write a procedural data set in the DeepFashion layout (or Market-1501's).

    Args:
        out_dir: output root (created; existing files of the same names are replaced).
        people: number of training people.
        poses: poses (images) per person, >= 2.
        size: image ``(H, W)``.
        seed: fixes every byte of the output.
        test_people: number of extra people for the test split (never in train); default
            ``max(1, people // 8)``.
        max_pairs_per_person: cap on ordered pairs per person (sampled with the seed); default
            all ``poses * (poses - 1)`` ordered pairs.
        log: optional callable for progress lines.
        layout: ``deepfashion`` or ``market1501`` (:mod:`cfld.data.layouts`).

    Returns:
        Stats: ``images``, ``train_pairs``, ``test_pairs``, ``seconds``, ``images_per_s``.

    Raises:
        ValueError: for non-positive counts or a bad size.
    """
    h, w = check_size(size, "size")
    if people < 1 or poses < 2:
        raise ValueError(f"need people >= 1 and poses >= 2, got people={people}, poses={poses}")
    if min(h, w) < 16:
        raise ValueError(f"size {h}x{w} is too small; use at least 16x16")
    test_people = max(1, people // 8) if test_people is None else int(test_people)
    if test_people < 1:
        raise ValueError(f"test_people must be >= 1, got {test_people}")
    if max_pairs_per_person is not None and max_pairs_per_person < 1:
        raise ValueError(f"max_pairs_per_person must be >= 1, got {max_pairs_per_person}")
    lay = get_layout(layout)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {out} exists and is not a folder; choose another --out")
    t0 = time.perf_counter()
    split_people = {"train": range(people), "test": range(people, people + test_people)}
    n_images = 0
    stats: dict[str, float] = {}
    for split in SPLITS:
        files = lay.files[split]
        img_dir, parts_dir = out / str(files["dir"]), out / PARTS_DIRS[split]
        img_dir.mkdir(parents=True, exist_ok=True)
        parts_dir.mkdir(parents=True, exist_ok=True)
        names: list[str] = []
        annot_rows = ["name:keypoints_y:keypoints_x"]
        pair_rows = ["from,to"]
        for pid in split_people[split]:
            app = sample_appearance(np.random.default_rng([seed, pid, 0]))
            person_names = []
            for k in range(poses):
                pose = sample_pose(np.random.default_rng([seed, pid, 1, k]), (h, w))
                img, parts = render_person(app, pose, (h, w))
                name = image_name(pid, k, pose.front, lay.name)
                jpg, png = _encode(img, parts)
                write_bytes_atomic(img_dir / name, jpg)
                write_bytes_atomic(parts_dir / (Path(name).stem + ".png"), png)
                coords = np.where(pose.visible[:, None], pose.joints, MISSING)
                kp = Keypoints(coords, (h, w)).rescale(lay.frame)
                ys, xs = kp.to_strings()
                annot_rows.append(f"{name}:{ys}:{xs}")
                person_names.append(name)
                n_images += 1
            ordered = [(a, b) for a in person_names for b in person_names if a != b]
            if max_pairs_per_person is not None and len(ordered) > max_pairs_per_person:
                rng = np.random.default_rng([seed, pid, 2])
                keep = np.sort(rng.choice(len(ordered), max_pairs_per_person, replace=False))
                ordered = [ordered[i] for i in keep]
            pair_rows += [f"{a},{b}" for a, b in ordered]
            names += person_names
        # Drop our own images left by an earlier, larger run into the same folder: they would
        # otherwise leak into FidRealSet (which globs the folder) without being in any list.
        keep = set(names) | {Path(n).stem + ".png" for n in names}
        pattern = _MARKET_GLOB if lay.name == "market1501" else f"{_NAME_PREFIX}*"
        for folder in (img_dir, parts_dir):
            for stale in folder.glob(pattern):
                if stale.name not in keep:
                    stale.unlink()
        if files["lst"] is not None:
            write_text_atomic(out / files["lst"], "\n".join(names) + "\n")
        write_text_atomic(out / str(files["annotations"]), "\n".join(annot_rows) + "\n")
        write_text_atomic(out / str(files["pairs"]), "\n".join(pair_rows) + "\n")
        stats[f"{split}_pairs"] = len(pair_rows) - 1
        if log is not None:
            n_people = len(split_people[split])
            log(f"{split}: {n_people} people, {len(names)} images, {len(pair_rows) - 1} pairs")
    dt = time.perf_counter() - t0
    stats.update(images=n_images, seconds=dt, images_per_s=n_images / max(dt, 1e-9))
    return stats


def root_entries(layout: str | DataLayout = "deepfashion") -> list[str]:
    """The files and folders :func:`synthesize` writes at the top of a root (what
    ``cfld data synth`` refuses to replace without ``--overwrite``)."""
    lay = get_layout(layout)
    names = [str(v) for split in SPLITS for v in lay.files[split].values() if v is not None]
    return names + [PARTS_DIRS[split] for split in SPLITS]


def make_sample_root(
    out_dir: str | os.PathLike,
    people: int = 6,
    poses: int = 4,
    size: Sequence[int] = (128, 88),
    seed: int = 0,
    test_people: int = 2,
    layout: str = "deepfashion",
) -> Path:
    """Build a tiny procedural root quickly (for tests and demos).

    Args:
        out_dir: output root.
        people: training people.
        poses: poses per person.
        size: image ``(H, W)``.
        seed: random seed.
        test_people: people in the test split.
        layout: ``deepfashion`` or ``market1501``.

    Returns:
        The root path.
    """
    synthesize(out_dir, people=people, poses=poses, size=size, seed=seed, test_people=test_people,
               layout=layout)
    return Path(out_dir)


def pair_silhouette_iou(
    root: str | os.PathLike, split: str = "train", max_pairs: int | None = None
) -> float:
    """Mean silhouette IoU between source and target of each pair (from the part maps).

    A low value means copying the source image is a poor answer to the pose-transfer task.

    Args:
        root: a procedural root (needs the ``*_parts`` folders).
        split: ``"train"`` or ``"test"``.
        max_pairs: evaluate only the first ``max_pairs`` pairs.

    Returns:
        The mean IoU in [0, 1].

    Raises:
        ValueError: for an unknown split; FileNotFoundError for missing part maps.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    pairs = read_pairs(detect_layout(root).path(root, split, "pairs"))[:max_pairs]
    if not pairs:
        raise DataError(f"{root}: no {split} pairs")
    cache: dict[str, np.ndarray] = {}

    def silhouette(name: str) -> np.ndarray:
        if name not in cache:
            if len(cache) > 512:  # pairs are grouped by person: a small cache is enough
                cache.clear()
            p = root / PARTS_DIRS[split] / (Path(name).stem + ".png")
            lab = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if lab is None:
                raise FileNotFoundError(f"part map not found or unreadable: {p}")
            cache[name] = lab > 0
        return cache[name]

    ious = []
    for a, b in pairs:
        sa, sb = silhouette(a), silhouette(b)
        union = np.logical_or(sa, sb).sum()
        ious.append(np.logical_and(sa, sb).sum() / union if union else 1.0)
    return float(np.mean(ious))


__all__ = ["image_name", "make_sample_root", "pair_silhouette_iou", "root_entries",
           "synthesize"]
