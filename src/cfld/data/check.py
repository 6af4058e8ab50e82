"""``cfld data check``: validate a prepared root (DeepFashion or Market-1501 layout) before
training or evaluation."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cfld.data.formats import (
    SPLITS,
    DataError,
    find_duplicate_pairs,
    read_annotations,
    read_lst,
    read_pairs,
)
from cfld.data.images import IMAGE_EXTENSIONS, image_problem
from cfld.data.layouts import DEEPFASHION, DataLayout, detect_layout
from cfld.pose.keypoints import Keypoints


@dataclass
class CheckReport:
    """Result of :func:`check_root`: problems (one line each) and counts."""

    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    layout: DataLayout = DEEPFASHION

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def summary_lines(self) -> list[str]:
        """Human-readable count lines (pair counts next to the official ones, fidelity §5.1)."""
        lines = [f"layout: {self.layout.title} (keypoints in the {self.layout.frame[0]}x"
                 f"{self.layout.frame[1]} frame)"]
        for split in SPLITS:
            c = self.counts
            n_pairs, n_img = c.get(f"{split}_pairs", 0), c.get(f"{split}_images", 0)
            n_ann = c.get(f"{split}_annotations", 0)
            lines.append(
                f"{split}: {n_pairs} pairs (official {self.layout.official_pairs[split]:,}), "
                f"{n_img} images, {n_ann} annotations"
            )
        return lines


def check_root(root: str | os.PathLike, decode_images: bool = True,
               layout: str | DataLayout | None = None) -> CheckReport:
    """Validate a prepared root before training (see :func:`check`).

    Args:
        root: the prepared data root.
        decode_images: decode each referenced image (catches truncated files); otherwise only
            its header is read.
        layout: ``deepfashion`` or ``market1501`` (default: detected from the files).

    Returns:
        A :class:`CheckReport`.
    """
    root = Path(root)
    rep = CheckReport(layout=detect_layout(root, layout))
    if not root.is_dir():
        rep.problems.append(
            f"{root}: data root not found (run `cfld data prepare` or `cfld data synth`)"
        )
        return rep
    for split in SPLITS:
        _check_split(root, split, rep, decode_images)
    # An image in both splits would leak test people into training.
    tr, te = rep.layout.image_dir(root, "train"), rep.layout.image_dir(root, "test")
    if tr.is_dir() and te.is_dir():
        both = {p.name for p in tr.iterdir()} & {p.name for p in te.iterdir()}
        for name in sorted(both)[:20]:
            rep.problems.append(f"{name}: present in both {tr.name} and {te.name}")
    return rep


def _check_split(root: Path, split: str, rep: CheckReport, decode_images: bool) -> None:
    """Add the counts and problems of one split to ``rep``."""
    files = rep.layout.files[split]
    img_dir = root / str(files["dir"])
    if not img_dir.is_dir():
        rep.problems.append(f"{img_dir}: image folder missing")
        present: set[str] = set()
    else:
        present = {p.name for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
    rep.counts[f"{split}_images"] = len(present)
    annots: dict[str, Keypoints] | None = None
    try:
        annots = read_annotations(root / str(files["annotations"]), rep.layout.frame)
    except (DataError, FileNotFoundError) as err:
        rep.problems.append(str(err))
    rep.counts[f"{split}_annotations"] = len(annots or {})
    pairs: list[tuple[str, str]] = []
    try:
        pairs = read_pairs(root / str(files["pairs"]), on_duplicate="ignore")
    except (DataError, FileNotFoundError) as err:
        rep.problems.append(str(err))
    rep.counts[f"{split}_pairs"] = len(pairs)
    for a, b in find_duplicate_pairs(pairs):
        rep.problems.append(f"{root / str(files['pairs'])}: duplicate pair {a} -> {b}")
    if files["lst"] is not None:
        _check_lst(root / files["lst"], rep)
    _check_images(root, files, pairs, present, annots, rep, decode_images)


def _check_lst(lst: Path, rep: CheckReport) -> None:
    if lst.is_file():
        seen_names: set[str] = set()
        for name in read_lst(lst):
            if name in seen_names:
                rep.problems.append(f"{lst}: duplicate name {name}")
            seen_names.add(name)
    else:
        rep.problems.append(f"{lst}: list file missing")


def _check_images(root: Path, files: dict, pairs: list[tuple[str, str]], present: set[str],
                  annots: dict[str, Keypoints] | None, rep: CheckReport,
                  decode_images: bool) -> None:
    """Every image of a pair present, annotated, readable, and (Market-1501) of its size."""
    from cfld.checks.files import inside_root

    img_dir = root / str(files["dir"])
    for name in sorted({n for p in pairs for n in p}):
        try:
            inside_root(root, name, "image", folder=str(files["dir"]))
        except ValueError as err:
            rep.problems.append(f"{root / files['pairs']}: {err}")
            continue
        if name not in present:
            rep.problems.append(
                f"{img_dir / name}: image referenced by {files['pairs']} is missing"
            )
            continue
        if annots is not None and name not in annots:
            rep.problems.append(f"{root / files['annotations']}: no keypoints for {name}")
        reason = image_problem(img_dir / name, decode_images)
        if reason is not None:
            rep.problems.append(f"{img_dir / name}: unreadable image ({reason})")
        elif rep.layout.name == "market1501":
            _check_market_size(img_dir / name, rep)


def _check_market_size(path: Path, rep: CheckReport) -> None:
    """Market-1501 images are 128×64, the frame of its keypoints."""
    from PIL import Image

    h, w = rep.layout.frame
    with Image.open(path) as im:
        if im.size != (w, h):
            rep.problems.append(f"{path}: {im.height}x{im.width}, but Market-1501 images (and "
                                f"its keypoints) are {h}x{w}; `cfld data prepare --dataset "
                                "market1501` resizes them")


def check(root: str | os.PathLike, decode_images: bool = True) -> list[str]:
    """Validate a prepared root; return one clear line per problem (empty list = OK).

    Checks both pair files (separator, columns, duplicates), both annotation files (format,
    keypoint strings, duplicate names), the list files, and that every referenced image is
    present, annotated and readable.

    Args:
        root: the prepared data root.
        decode_images: decode each referenced image (else read only its header).

    Returns:
        The problem lines.
    """
    return check_root(root, decode_images).problems


__all__ = ["CheckReport", "check", "check_root"]
