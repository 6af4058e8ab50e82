"""``cfld data prepare``: the authors' renaming of DeepFashion In-Shop images (fidelity §5.2).

Unlike the authors' script (fidelity §12.11) it works from any directory and at any depth of the
source folder, and is idempotent: files already present with the same size are skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from cfld.data.formats import (
    ANNOTATION_TEST,
    ANNOTATION_TRAIN,
    PAIRS_TEST,
    PAIRS_TRAIN,
    SPLIT_FILES,
    SPLITS,
    DataError,
    read_lst,
)
from cfld.data.images import IMAGE_EXTENSIONS

GENDERS: tuple[str, ...] = ("MEN", "WOMEN")


def flat_name(gender: str, category: str, item_id: str, filename: str) -> str:
    """The authors' flat file name of one In-Shop image (fidelity §5.2).

    ``"fashion" + GENDER + Category + id without underscores + first token of the file name +
    "_" + the other tokens joined``, e.g. ``WOMEN, Blouses_Shirts, id_00000001, 02_1_front.jpg``
    -> ``fashionWOMENBlouses_Shirtsid0000000102_1front.jpg``.

    Args:
        gender: ``MEN`` or ``WOMEN``.
        category: category folder, kept as is.
        item_id: item folder such as ``id_00000001``.
        filename: image file name such as ``02_1_front.jpg``.

    Returns:
        The flat name.
    """
    tokens = filename.split("_")
    fname = tokens[0] + "_" + "".join(tokens[1:]) if len(tokens) > 1 else filename
    return "fashion" + gender + category + item_id.replace("_", "") + fname


def _find_gender_dirs(src_root: Path) -> list[Path]:
    """Locate the ``MEN``/``WOMEN`` folders at ``src_root`` or one/two levels below it."""
    if src_root.name in GENDERS:  # pointed at MEN/ or WOMEN/ itself
        return [src_root]
    levels = (lambda: [src_root], lambda: sorted(src_root.glob("*")),
              lambda: sorted(src_root.glob("*/*")))
    for base in (b for level in levels for b in level()):  # lazily: stop at the first hit
        found = [base / g for g in GENDERS if (base / g).is_dir()]
        if found:
            return found
    return []


def _atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temp file in ``dst``'s folder, then rename."""
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare(
    src_root: str | os.PathLike,
    out_root: str | os.PathLike,
    train_lst: str | os.PathLike | None = None,
    test_lst: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Build ``train_highres/`` and ``test_highres/`` from an unzipped In-Shop ``img_highres``.

    Applies the authors' renaming rule (fidelity §5.2) to every image under
    ``<src>/{MEN,WOMEN}/<Category>/<id>/<file>`` and copies (never moves) it into the split whose
    list names it.  Unlike the original script (fidelity §12.11) it works from any directory and
    at any depth of ``src_root``, and is idempotent: files already present with the same size
    are skipped.  The list files and any ``fasion-resize-*.csv`` found next to them or in
    ``src_root`` are copied into ``out_root`` when missing there.

    Args:
        src_root: folder holding ``MEN/`` and ``WOMEN/`` (or a parent of it).
        out_root: the prepared root to write.
        train_lst: ``train.lst``; default ``src_root/train.lst`` or ``out_root/train.lst``.
        test_lst: ``test.lst``; same defaults.
        log: optional callable receiving progress lines.

    Returns:
        Counts: ``train``/``test`` copied now, ``skipped`` (already present), ``unlisted``
        (images in neither list), ``missing_train``/``missing_test`` (listed but not found).

    Raises:
        FileNotFoundError: when no ``MEN``/``WOMEN`` folder or no list file is found.
        DataError: when two source images map to the same flat name.
    """
    src_root, out_root = Path(src_root).resolve(), Path(out_root).resolve()
    if not src_root.is_dir():
        raise FileNotFoundError(f"source folder not found: {src_root}")
    lists = _find_lists(src_root, out_root, {"train": train_lst, "test": test_lst})
    names = {split: set(read_lst(p)) for split, p in lists.items()}
    genders = _find_gender_dirs(src_root)
    if not genders:
        raise FileNotFoundError(
            f"no MEN/ or WOMEN/ folder under {src_root}; point --src at the unzipped In-Shop "
            "img_highres folder"
        )
    for split in SPLITS:
        (out_root / SPLIT_FILES[split]["dir"]).mkdir(parents=True, exist_ok=True)
    counts, sources = _copy_images(genders, names, out_root)
    for split in SPLITS:
        counts[f"missing_{split}"] = len(names[split] - sources)
        lst_out = out_root / SPLIT_FILES[split]["lst"]
        if not lst_out.exists():
            _atomic_copy(lists[split], lst_out)
    for fname in (PAIRS_TRAIN, PAIRS_TEST, ANNOTATION_TRAIN, ANNOTATION_TEST):
        dst = out_root / fname
        for cand in (src_root / fname, lists["train"].parent / fname):
            if not dst.exists() and cand.is_file() and cand.resolve() != dst:
                _atomic_copy(cand, dst)
    if log is not None:
        log(
            f"copied {counts['train']} train and {counts['test']} test images, skipped "
            f"{counts['skipped']} already present, {counts['unlisted']} in neither list; "
            f"listed but not found: {counts['missing_train']} train, {counts['missing_test']} test"
        )
    return counts


def _find_lists(src_root: Path, out_root: Path,
                given: dict[str, str | os.PathLike | None]) -> dict[str, Path]:
    """The ``train.lst`` / ``test.lst`` to use: as given, else in ``src_root`` or ``out_root``."""
    lists: dict[str, Path] = {}
    for split in SPLITS:
        fname = SPLIT_FILES[split]["lst"]
        path = given[split]
        cands = [Path(path)] if path is not None else [src_root / fname, out_root / fname]
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"{fname} not found (looked at {', '.join(map(str, cands))}); pass --{split}-lst"
            )
        lists[split] = found.resolve()
    return lists


def _copy_images(genders: list[Path], names: dict[str, set[str]],
                 out_root: Path) -> tuple[dict[str, int], set[str]]:
    """Copy every listed image under its flat name; return the counts and the names seen."""
    counts = {"train": 0, "test": 0, "skipped": 0, "unlisted": 0}
    sources: dict[str, Path] = {}
    for gdir in genders:
        # Exactly <gender>/<Category>/<id>/<file>: depth is relative to the gender folder, so the
        # absolute location and the working directory do not matter (fidelity §12.11).
        for path in sorted(gdir.glob("*/*/*")):
            if not path.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            category, item_id = path.parent.parent.name, path.parent.name
            name = flat_name(gdir.name, category, item_id, path.name)
            if name in sources:
                raise DataError(f"{path} and {sources[name]} both map to {name}")
            sources[name] = path
            dests = [s for s in SPLITS if name in names[s]]
            if not dests:
                counts["unlisted"] += 1
            for split in dests:
                dst = out_root / SPLIT_FILES[split]["dir"] / name
                if dst.is_file() and dst.stat().st_size == path.stat().st_size:
                    counts["skipped"] += 1
                    continue
                _atomic_copy(path, dst)
                counts[split] += 1
    return counts, set(sources)


__all__ = ["GENDERS", "flat_name", "prepare"]
