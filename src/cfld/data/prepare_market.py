"""``cfld data prepare --dataset market1501``: a Market-1501 root with PATN's pose-transfer files.

What a user has: the unzipped data set (``Market-1501-v15.09.15/`` with ``bounding_box_train/``,
``bounding_box_test/``, ``query/`` ...) and the four csvs PATN published for pose transfer
(``market-pairs-{train,test}.csv``: pairs, ``market-annotation-{train,test}.csv``: 18 COCO
keypoints in the 128×64 frame; the DPTN and CFLD-era papers use the same files).  This writes
the root :mod:`cfld.data.layouts` reads::

    OUT/market-pairs-{train,test}.csv  OUT/market-annotation-{train,test}.csv
    OUT/bounding_box_train/*.jpg       OUT/bounding_box_test/*.jpg      (128×64)

Only the images a csv names are copied (PATN dropped the images without a usable pose, and
Market's distractor images ``-1_*`` / ``0000_*`` are in no pair); one not at 128×64 is resized
(bicubic).  Images already there with the same size are skipped, so a second run is cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cfld.checks.writes import write_bytes_atomic
from cfld.data.formats import SPLITS, DataError, iter_names, read_annotations, read_pairs
from cfld.data.layouts import MARKET1501


def _find_image_dirs(src: Path) -> dict[str, Path]:
    """``bounding_box_train`` / ``bounding_box_test`` at ``src`` or one level below it."""
    for base in [src, *sorted(p for p in src.glob("*") if p.is_dir())]:
        dirs = {s: base / str(MARKET1501.files[s]["dir"]) for s in SPLITS}
        if all(d.is_dir() for d in dirs.values()):
            return dirs
    raise FileNotFoundError(f"no bounding_box_train/ and bounding_box_test/ under {src}; point "
                            "--src at the unzipped Market-1501 folder (Market-1501-v15.09.15)")


def _find_csvs(places: list[Path]) -> dict[str, Path]:
    """The four PATN csvs, each from the first of ``places`` that has it."""
    out: dict[str, Path] = {}
    for split in SPLITS:
        for kind in ("pairs", "annotations"):
            name = str(MARKET1501.files[split][kind])
            found = next((p / name for p in places if (p / name).is_file()), None)
            if found is None:
                raise FileNotFoundError(
                    f"{name} not found (looked in {', '.join(map(str, places))}); these are "
                    "PATN's Market-1501 pose-transfer files: pass their folder with "
                    "--annotations")
            out[f"{split}_{kind}"] = found
    return out


def _copy_image(src: Path, dst: Path, size: tuple[int, int]) -> str:
    """Copy (or resize to ``size``) one image; ``"copied"``, ``"resized"`` or ``"skipped"``."""
    from PIL import Image

    from cfld.data.images import open_image

    h, w = size
    if dst.is_file():
        with Image.open(dst) as have:
            if have.size == (w, h):
                return "skipped"
    with Image.open(src) as im:
        native = im.size == (w, h)
    if native:
        write_bytes_atomic(dst, src.read_bytes())
        return "copied"
    import io

    buf = io.BytesIO()
    open_image(src, what="Market-1501 image").resize((w, h), Image.BICUBIC).save(
        buf, format="JPEG", quality=95)
    write_bytes_atomic(dst, buf.getvalue())
    return "resized"


def prepare_market1501(src_root: str | os.PathLike, out_root: str | os.PathLike,
                       annotations: str | os.PathLike | None = None,
                       log: Callable[[str], None] | None = None) -> dict[str, int]:
    """Build a Market-1501 root (see the module docstring).

    Args:
        src_root: The unzipped Market-1501 folder (or its parent).
        out_root: The root to write (may be ``src_root`` itself: then only the csvs are added).
        annotations: Folder with PATN's four csvs (default: ``src_root``, then ``out_root``).
        log: Optional callable receiving progress lines.

    Returns:
        Counts per split (``train_copied``, ``train_resized``, ``train_skipped``, ...) and
        ``missing`` (named by a csv, absent from the source).

    Raises:
        FileNotFoundError: No image folders or no csvs.
        DataError: A pair names an image without keypoints, or a csv is malformed.
    """
    src, out = Path(src_root).resolve(), Path(out_root).resolve()
    if not src.is_dir():
        raise FileNotFoundError(f"Market-1501 folder not found: {src}")
    dirs = _find_image_dirs(src)
    places = [Path(annotations)] if annotations is not None else [src, dirs["train"].parent, out]
    csvs = _find_csvs(places)
    counts: dict[str, int] = {"missing": 0}
    for split in SPLITS:
        pairs = read_pairs(csvs[f"{split}_pairs"], on_duplicate="ignore")
        annots = read_annotations(csvs[f"{split}_annotations"], MARKET1501.frame)
        unposed = [n for n in iter_names(pairs) if n not in annots]
        if unposed:
            raise DataError(f"{csvs[f'{split}_pairs']}: {len(unposed)} image(s) of its pairs "
                            f"have no keypoints in {csvs[f'{split}_annotations'].name} (e.g. "
                            f"{unposed[0]}); use the csvs of one release together")
        dst_dir = out / str(MARKET1501.files[split]["dir"])
        dst_dir.mkdir(parents=True, exist_ok=True)
        for kind in ("copied", "resized", "skipped"):
            counts[f"{split}_{kind}"] = 0
        for name in sorted(set(annots) | set(iter_names(pairs))):
            if not (dirs[split] / name).is_file():
                counts["missing"] += 1
                continue
            done = _copy_image(dirs[split] / name, dst_dir / name, MARKET1501.frame)
            counts[f"{split}_{done}"] += 1
        for kind in ("pairs", "annotations"):
            path = csvs[f"{split}_{kind}"]
            if path.resolve() != (out / path.name).resolve():
                write_bytes_atomic(out / path.name, path.read_bytes())
        if log is not None:
            log(f"{split}: {len(pairs)} pairs, {counts[f'{split}_copied']} images copied, "
                f"{counts[f'{split}_resized']} resized to 128x64, {counts[f'{split}_skipped']} "
                "already there")
    if log is not None and counts["missing"]:
        log(f"warning: {counts['missing']} image(s) named by the csvs are not in {src}; "
            "`cfld data check` lists them")
    return counts


__all__ = ["prepare_market1501"]
