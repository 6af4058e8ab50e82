"""``cfld data check``: validate a prepared root before training."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cfld.data.formats import (
    OFFICIAL_PAIR_COUNTS,
    SPLIT_FILES,
    SPLITS,
    TEST_DIR,
    TRAIN_DIR,
    DataError,
    find_duplicate_pairs,
    read_annotations,
    read_lst,
    read_pairs,
)
from cfld.data.images import IMAGE_EXTENSIONS, image_problem
from cfld.pose.keypoints import Keypoints


@dataclass
class CheckReport:
    """Result of :func:`check_root`: problems (one line each) and counts."""

    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def summary_lines(self) -> list[str]:
        """Human-readable count lines (pair counts next to the official ones, fidelity §5.1)."""
        lines = []
        for split in SPLITS:
            c = self.counts
            n_pairs, n_img = c.get(f"{split}_pairs", 0), c.get(f"{split}_images", 0)
            n_ann = c.get(f"{split}_annotations", 0)
            lines.append(
                f"{split}: {n_pairs} pairs (official {OFFICIAL_PAIR_COUNTS[split]:,}), "
                f"{n_img} images, {n_ann} annotations"
            )
        return lines


def check_root(root: str | os.PathLike, decode_images: bool = True) -> CheckReport:
    """Validate a prepared root before training (see :func:`check`).

    Args:
        root: the prepared data root.
        decode_images: decode each referenced image (catches truncated files); otherwise only
            its header is read.

    Returns:
        A :class:`CheckReport`.
    """
    root = Path(root)
    rep = CheckReport()
    if not root.is_dir():
        rep.problems.append(
            f"{root}: data root not found (run `cfld data prepare` or `cfld data synth`)"
        )
        return rep
    for split in SPLITS:
        _check_split(root, split, rep, decode_images)
    # An image in both splits would leak test people into training.
    tr = root / TRAIN_DIR
    te = root / TEST_DIR
    if tr.is_dir() and te.is_dir():
        both = {p.name for p in tr.iterdir()} & {p.name for p in te.iterdir()}
        for name in sorted(both)[:20]:
            rep.problems.append(f"{name}: present in both {TRAIN_DIR} and {TEST_DIR}")
    return rep


def _check_split(root: Path, split: str, rep: CheckReport, decode_images: bool) -> None:
    """Add the counts and problems of one split to ``rep``."""
    files = SPLIT_FILES[split]
    img_dir = root / files["dir"]
    if not img_dir.is_dir():
        rep.problems.append(f"{img_dir}: image folder missing")
        present: set[str] = set()
    else:
        present = {p.name for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
    rep.counts[f"{split}_images"] = len(present)
    annots: dict[str, Keypoints] | None = None
    try:
        annots = read_annotations(root / files["annotations"])
    except (DataError, FileNotFoundError) as err:
        rep.problems.append(str(err))
    rep.counts[f"{split}_annotations"] = len(annots or {})
    pairs: list[tuple[str, str]] = []
    try:
        pairs = read_pairs(root / files["pairs"], on_duplicate="ignore")
    except (DataError, FileNotFoundError) as err:
        rep.problems.append(str(err))
    rep.counts[f"{split}_pairs"] = len(pairs)
    for a, b in find_duplicate_pairs(pairs):
        rep.problems.append(f"{root / files['pairs']}: duplicate pair {a} -> {b}")
    lst = root / files["lst"]
    if lst.is_file():
        seen_names: set[str] = set()
        for name in read_lst(lst):
            if name in seen_names:
                rep.problems.append(f"{lst}: duplicate name {name}")
            seen_names.add(name)
    else:
        rep.problems.append(f"{lst}: list file missing")
    for name in sorted({n for p in pairs for n in p}):
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
