"""DeepFashion In-Shop in the PATN/DPTN file format used by the authors (facts §5).

Layout of a prepared root (facts §5.1)::

    ROOT/fasion-resize-pairs-train.csv       from,to            (comma separated)
    ROOT/fasion-resize-pairs-test.csv
    ROOT/fasion-resize-annotation-train.csv  name:keypoints_y:keypoints_x  (':' separated)
    ROOT/fasion-resize-annotation-test.csv
    ROOT/train.lst, ROOT/test.lst            one image name per line
    ROOT/train_highres/*.jpg, ROOT/test_highres/*.jpg

The file names keep the official misspelling "fasion" (facts §5.1, §12.12).  Our procedural
data set (:mod:`cfld.data.synthetic`) is written in the same layout, so this loader reads both.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from cfld.pose.keypoints import DEEPFASHION_FRAME, Keypoints, _check_frame
from cfld.pose.render import render_pose_map

PAIRS_TRAIN = "fasion-resize-pairs-train.csv"
PAIRS_TEST = "fasion-resize-pairs-test.csv"
ANNOTATION_TRAIN = "fasion-resize-annotation-train.csv"
ANNOTATION_TEST = "fasion-resize-annotation-test.csv"
TRAIN_LST = "train.lst"
TEST_LST = "test.lst"
TRAIN_DIR = "train_highres"
TEST_DIR = "test_highres"
SPLITS: tuple[str, ...] = ("train", "test")
SPLIT_FILES: dict[str, dict[str, str]] = {
    "train": {
        "pairs": PAIRS_TRAIN, "annotations": ANNOTATION_TRAIN, "lst": TRAIN_LST, "dir": TRAIN_DIR
    },
    "test": {"pairs": PAIRS_TEST, "annotations": ANNOTATION_TEST, "lst": TEST_LST, "dir": TEST_DIR},
}
# Pair counts of the official PATN split (facts §5.1), printed by `check` for comparison.
OFFICIAL_PAIR_COUNTS: dict[str, int] = {"train": 101_966, "test": 8_570}
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
GENDERS: tuple[str, ...] = ("MEN", "WOMEN")

ANNOTATION_HEADER = ("name", "keypoints_y", "keypoints_x")


class DataError(ValueError):
    """A problem with a data file or sample; the message names the file and the fix."""


# ------------------------------------------------------------------------------------ csv files
def _split_header(line: str, path: Path, sep: str, expected: Sequence[str]) -> list[str]:
    """Split the header line; raise a clear error for a wrong separator or missing columns."""
    cols = [c.strip() for c in line.rstrip("\r\n").split(sep)]
    missing = [c for c in expected if c not in cols]
    if not missing:
        return cols
    for other in (",", ":", ";", "\t", "|"):
        if other != sep and all(c in [p.strip() for p in line.split(other)] for c in expected):
            raise DataError(
                f"{path}: the header uses {other!r} as separator but this file must be "
                f"{sep!r}-separated with columns {sep.join(expected)}; rewrite it with {sep!r}"
            )
    raise DataError(
        f"{path}: missing column(s) {missing} in header {line.strip()!r}; "
        f"the first line must be {sep.join(expected)!r}"
    )


def read_pairs(csv_path: str | os.PathLike, on_duplicate: str = "warn") -> list[tuple[str, str]]:
    """Read a pairs csv (comma separated, header ``from,to``; extra columns are ignored).

    Args:
        csv_path: path of ``fasion-resize-pairs-{train,test}.csv``.
        on_duplicate: what to do with repeated ``(from, to)`` rows: ``"warn"`` (keep them and
            warn), ``"error"`` (raise) or ``"ignore"``.

    Returns:
        The ``(from, to)`` image-name pairs in file order.

    Raises:
        FileNotFoundError: when the file does not exist.
        DataError: for a wrong separator, missing columns, empty names or (with
            ``on_duplicate="error"``) duplicate rows.
    """
    if on_duplicate not in ("warn", "error", "ignore"):
        raise ValueError(f"on_duplicate must be 'warn', 'error' or 'ignore', got {on_duplicate!r}")
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = fh.readline()
        cols = _split_header(header, path, ",", ("from", "to"))
        i_from, i_to = cols.index("from"), cols.index("to")
        pairs: list[tuple[str, str]] = []
        seen: dict[tuple[str, str], int] = {}
        dups: list[str] = []
        for lineno, row in enumerate(csv.reader(fh), start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) <= max(i_from, i_to) or not row[i_from].strip() or not row[i_to].strip():
                raise DataError(
                    f"{path}, line {lineno}: expected {len(cols)} comma-separated fields "
                    f"({','.join(cols)}), got {row!r}"
                )
            pair = (row[i_from].strip(), row[i_to].strip())
            if pair in seen:
                dups.append(f"line {lineno} repeats line {seen[pair]} ({pair[0]} -> {pair[1]})")
            else:
                seen[pair] = lineno
            pairs.append(pair)
    if dups:
        msg = f"{path}: {len(dups)} duplicate pair row(s), first: {dups[0]}"
        if on_duplicate == "error":
            raise DataError(msg + "; remove the repeated rows")
        if on_duplicate == "warn":
            warnings.warn(msg, stacklevel=2)
    return pairs


def find_duplicate_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return every pair that occurs more than once (each listed once).

    Args:
        pairs: ``(from, to)`` pairs.

    Returns:
        The repeated pairs in first-occurrence order.
    """
    seen: set[tuple[str, str]] = set()
    out: dict[tuple[str, str], None] = {}
    for p in pairs:
        if p in seen:
            out[p] = None
        seen.add(p)
    return list(out)


def read_annotations(
    csv_path: str | os.PathLike, frame: Sequence[int] = DEEPFASHION_FRAME
) -> dict[str, Keypoints]:
    """Read an annotation csv (':' separated, header ``name:keypoints_y:keypoints_x``).

    Args:
        csv_path: path of ``fasion-resize-annotation-{train,test}.csv``.
        frame: frame of the coordinates, ``(256, 176)`` for DeepFashion (facts §5.1).

    Returns:
        Image name -> keypoints.

    Raises:
        FileNotFoundError: when the file does not exist.
        DataError: for a wrong separator or header, a malformed row or keypoint string
            (naming the file, line and image name), or a name listed twice.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    frame = _check_frame(frame)
    out: dict[str, Keypoints] = {}
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8-sig") as fh:
        header = fh.readline()
        cols = _split_header(header, path, ":", ANNOTATION_HEADER)
        idx = [cols.index(c) for c in ANNOTATION_HEADER]
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            # JSON lists of ints contain no ':', so a plain split is exact.
            parts = line.rstrip("\r\n").split(":")
            if len(parts) != len(cols):
                raise DataError(
                    f"{path}, line {lineno}: expected {len(cols)} ':'-separated fields "
                    f"({':'.join(cols)}), got {len(parts)}: {line.strip()[:120]!r}"
                )
            name, ys, xs = (parts[i].strip() for i in idx)
            if name in out:
                raise DataError(
                    f"{path}, line {lineno}: image name {name!r} already annotated on line "
                    f"{first_line[name]}; every name must appear once"
                )
            try:
                out[name] = Keypoints.from_strings(ys, xs, frame)
            except ValueError as err:
                raise DataError(f"{path}, line {lineno}, image {name!r}: {err}") from None
            first_line[name] = lineno
    return out


def read_lst(path: str | os.PathLike) -> list[str]:
    """Read a ``train.lst``/``test.lst`` file: one image name per line, blank lines ignored.

    Args:
        path: the list file.

    Returns:
        The names in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"list file not found: {path}")
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


# ------------------------------------------------------------------------------------ images
def load_image(path: str | os.PathLike, size: Sequence[int] | None = None) -> Image.Image:
    """Open an image as RGB and optionally resize it to exactly ``size=(h, w)``.

    The resize is PIL bicubic, which is antialiased, like torchvision's ``Resize`` on PIL images
    used by the authors (facts §5.3); the aspect ratio is not preserved.

    Args:
        path: the image file.
        size: target ``(h, w)``, or ``None`` to keep the original size.

    Returns:
        A PIL RGB image.

    Raises:
        FileNotFoundError: when the file does not exist.
        DataError: when the file cannot be decoded as an image.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"cannot read image {path}: {err}; re-copy or remove this file") from None
    if size is not None:
        h, w = _check_frame(size, "size")
        if img.size != (w, h):
            img = img.resize((w, h), Image.BICUBIC)
    return img


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float32 ``(3, H, W)`` in [0, 1] (torchvision ``ToTensor`` arithmetic)."""
    arr = np.asarray(img, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255)  # (3, H, W)


def to_signed(t: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] with ``(x - 0.5) / 0.5`` (torchvision ``Normalize(0.5, 0.5)``)."""
    return (t - 0.5) / 0.5


# ------------------------------------------------------------------------------------ prepare
def flat_name(gender: str, category: str, item_id: str, filename: str) -> str:
    """The authors' flat file name of one In-Shop image (facts §5.2).

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

    Applies the authors' renaming rule (facts §5.2) to every image under
    ``<src>/{MEN,WOMEN}/<Category>/<id>/<file>`` and copies (never moves) it into the split whose
    list names it.  Unlike the original script (facts §12.11) it works from any directory and
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
    lists: dict[str, Path] = {}
    for split, given in (("train", train_lst), ("test", test_lst)):
        fname = SPLIT_FILES[split]["lst"]
        cands = [Path(given)] if given is not None else [src_root / fname, out_root / fname]
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            raise FileNotFoundError(
                f"{fname} not found (looked at {', '.join(map(str, cands))}); pass --{split}-lst"
            )
        lists[split] = found.resolve()
    names = {split: set(read_lst(p)) for split, p in lists.items()}
    genders = _find_gender_dirs(src_root)
    if not genders:
        raise FileNotFoundError(
            f"no MEN/ or WOMEN/ folder under {src_root}; point --src at the unzipped In-Shop "
            "img_highres folder"
        )
    counts = {"train": 0, "test": 0, "skipped": 0, "unlisted": 0}
    for split in SPLITS:
        (out_root / SPLIT_FILES[split]["dir"]).mkdir(parents=True, exist_ok=True)
    sources: dict[str, Path] = {}
    for gdir in genders:
        # Exactly <gender>/<Category>/<id>/<file>: depth is relative to the gender folder, so the
        # absolute location and the working directory do not matter (facts §12.11).
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
    for split in SPLITS:
        counts[f"missing_{split}"] = len(names[split] - sources.keys())
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


# ------------------------------------------------------------------------------------ check
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
        """Human-readable count lines (pair counts next to the official ones, facts §5.1)."""
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


def _image_readable(path: Path, decode: bool = True) -> str | None:
    """Return None if ``path`` opens (and, with ``decode``, decodes) as an image, else a reason."""
    try:
        with Image.open(path) as im:
            if decode:
                # Decode every byte (a truncated JPEG passes verify() but fails here); JPEG
                # draft mode decodes at 1/8 scale, ~10x faster on the 750x1101 originals.
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        return str(err) or type(err).__name__
    return None


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
        referenced = sorted({n for p in pairs for n in p})
        for name in referenced:
            if name not in present:
                rep.problems.append(
                    f"{img_dir / name}: image referenced by {files['pairs']} is missing"
                )
                continue
            if annots is not None and name not in annots:
                rep.problems.append(f"{root / files['annotations']}: no keypoints for {name}")
            reason = _image_readable(img_dir / name, decode_images)
            if reason is not None:
                rep.problems.append(f"{img_dir / name}: unreadable image ({reason})")
    # An image in both splits would leak test people into training.
    tr = root / TRAIN_DIR
    te = root / TEST_DIR
    if tr.is_dir() and te.is_dir():
        both = {p.name for p in tr.iterdir()} & {p.name for p in te.iterdir()}
        for name in sorted(both)[:20]:
            rep.problems.append(f"{name}: present in both {TRAIN_DIR} and {TEST_DIR}")
    return rep


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


# ------------------------------------------------------------------------------------ datasets
def _sample_seed(seed: int, epoch: int, index: int) -> int:
    """Mix (seed, epoch, index) into one 63-bit seed, independent of worker assignment."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB)
    return x % (2**63 - 1)


class _PairsBase(Dataset):
    """Shared loading of one split: pairs, annotations and images."""

    split = "train"

    def __init__(self, root: str | os.PathLike, pose_size: Sequence[int]) -> None:
        self.root = Path(root)
        files = SPLIT_FILES[self.split]
        if not self.root.is_dir():
            raise FileNotFoundError(f"data root not found: {self.root}")
        self.image_dir = self.root / files["dir"]
        self.pairs = read_pairs(self.root / files["pairs"])
        self.annotations = read_annotations(self.root / files["annotations"])
        self.pose_size = _check_frame(pose_size, "pose_size")
        if not self.pairs:
            raise DataError(f"{self.root / files['pairs']}: no pairs; the split is empty")

    def __len__(self) -> int:
        return len(self.pairs)

    def _image(self, name: str) -> Image.Image:
        """Open one image (full size); errors name the file."""
        path = self.image_dir / name
        try:
            return load_image(path)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"image {path} (listed in {SPLIT_FILES[self.split]['pairs']}) is missing; "
                "run `cfld data check` on the root"
            ) from None

    def _pose(self, name: str) -> torch.Tensor:
        """The 21-channel pose tensor of one image (facts §5.4)."""
        kp = self.annotations.get(name)
        if kp is None:
            raise DataError(
                f"{self.root / SPLIT_FILES[self.split]['annotations']}: no keypoints for {name}; "
                "run `cfld data check` on the root"
            )
        return torch.from_numpy(render_pose_map(kp, self.pose_size))


class DeepFashionTrain(_PairsBase):
    """Training pairs (facts §5.3, PisTrainDeepFashion).

    Each item: ``img_src``, ``img_tgt`` (3×gen_size, [-1,1]), ``img_cond`` (source, 3×cond_size,
    random horizontal flip p=0.5, [-1,1]), ``pose_img_src``, ``pose_img_tgt`` (21×pose_size),
    ``from``, ``to`` (names).

    Args:
        root: prepared data root.
        gen_size: ``(h, w)`` of ``img_src``/``img_tgt``; authors 512×512.
        cond_size: ``(h, w)`` of ``img_cond``; authors 256×256.
        pose_size: ``(h, w)`` of the pose tensors; authors 256×256.
        flip_p: probability of flipping ``img_cond``.
        seed: when set, the flip of item ``i`` depends only on ``(seed, epoch, i)`` (reproducible
            and independent of DataLoader workers); when None, torch's global RNG is used (which
            DataLoader seeds per worker).
    """

    split = "train"

    def __init__(
        self,
        root: str | os.PathLike,
        gen_size: Sequence[int] = (512, 512),
        cond_size: Sequence[int] = (256, 256),
        pose_size: Sequence[int] = (256, 256),
        flip_p: float = 0.5,
        seed: int | None = None,
    ) -> None:
        super().__init__(root, pose_size)
        self.gen_size = _check_frame(gen_size, "gen_size")
        self.cond_size = _check_frame(cond_size, "cond_size")
        if not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"flip_p must be in [0, 1], got {flip_p}")
        self.flip_p = float(flip_p)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the flip draws for a new epoch (only meaningful with ``seed``)."""
        self.epoch = int(epoch)

    def _flip(self, index: int) -> bool:
        if self.seed is None:
            return bool(torch.rand(1) < self.flip_p)
        g = torch.Generator().manual_seed(_sample_seed(self.seed, self.epoch, index))
        return bool(torch.rand(1, generator=g) < self.flip_p)

    def __getitem__(self, index: int) -> dict[str, Any]:
        src_name, tgt_name = self.pairs[index]
        src, tgt = self._image(src_name), self._image(tgt_name)
        cond = src.resize(self.cond_size[::-1], Image.BICUBIC)
        if self._flip(index):
            cond = cond.transpose(Image.FLIP_LEFT_RIGHT)
        return {
            "img_src": to_signed(to_tensor(src.resize(self.gen_size[::-1], Image.BICUBIC))),
            "img_tgt": to_signed(to_tensor(tgt.resize(self.gen_size[::-1], Image.BICUBIC))),
            "img_cond": to_signed(to_tensor(cond)),
            "pose_img_src": self._pose(src_name),
            "pose_img_tgt": self._pose(tgt_name),
            "from": src_name,
            "to": tgt_name,
        }


class DeepFashionTest(_PairsBase):
    """Test pairs (facts §5.3, PisTestDeepFashion).

    Each item: ``img_src``, ``img_tgt`` (3×gen_size, [-1,1]), ``img_gt`` (target, 3×test_size,
    [0,1]), ``img_cond_from`` (source, 3×cond_size, [-1,1], no flip), ``pose_img_from``,
    ``pose_img_to`` (21×pose_size), ``from``, ``to``.

    Args:
        root: prepared data root.
        gen_size: ``(h, w)`` of ``img_src``/``img_tgt``; authors 512×512.
        cond_size: ``(h, w)`` of ``img_cond_from``; authors 256×256.
        pose_size: ``(h, w)`` of the pose tensors; authors 256×256.
        test_size: ``(h, w)`` of ``img_gt``; authors 256×176 or 512×352.
    """

    split = "test"

    def __init__(
        self,
        root: str | os.PathLike,
        gen_size: Sequence[int] = (512, 512),
        cond_size: Sequence[int] = (256, 256),
        pose_size: Sequence[int] = (256, 256),
        test_size: Sequence[int] = (256, 176),
    ) -> None:
        super().__init__(root, pose_size)
        self.gen_size = _check_frame(gen_size, "gen_size")
        self.cond_size = _check_frame(cond_size, "cond_size")
        self.test_size = _check_frame(test_size, "test_size")

    def __getitem__(self, index: int) -> dict[str, Any]:
        src_name, tgt_name = self.pairs[index]
        src, tgt = self._image(src_name), self._image(tgt_name)
        return {
            "img_src": to_signed(to_tensor(src.resize(self.gen_size[::-1], Image.BICUBIC))),
            "img_tgt": to_signed(to_tensor(tgt.resize(self.gen_size[::-1], Image.BICUBIC))),
            "img_gt": to_tensor(tgt.resize(self.test_size[::-1], Image.BICUBIC)),
            "img_cond_from": to_signed(to_tensor(src.resize(self.cond_size[::-1], Image.BICUBIC))),
            "pose_img_from": self._pose(src_name),
            "pose_img_to": self._pose(tgt_name),
            "from": src_name,
            "to": tgt_name,
        }


class FidRealSet(Dataset):
    """Every training image resized to ``size``, in [0, 1] (facts §5.3, FidRealDeepFashion).

    The authors glob ``*.jpg``; we take every image extension (sorted, for a stable order), so
    PNG-based procedural roots work too.

    Args:
        root: prepared data root.
        size: ``(h, w)``, the evaluation size (authors: 256×176 or 512×352).
        split_dir: image folder inside ``root`` (default ``train_highres``).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: Sequence[int] = (256, 176),
        split_dir: str = TRAIN_DIR,
    ) -> None:
        self.dir = Path(root) / split_dir
        if not self.dir.is_dir():
            raise FileNotFoundError(f"image folder not found: {self.dir}")
        self.size = _check_frame(size, "size")
        self.paths = sorted(p for p in self.dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.paths:
            raise DataError(f"{self.dir}: no images found")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_tensor(load_image(self.paths[index], self.size))


def iter_names(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """Unique image names of a list of pairs, in first-seen order."""
    return list(dict.fromkeys(n for p in pairs for n in p))


__all__ = [
    "ANNOTATION_TEST",
    "ANNOTATION_TRAIN",
    "OFFICIAL_PAIR_COUNTS",
    "PAIRS_TEST",
    "PAIRS_TRAIN",
    "TEST_DIR",
    "TEST_LST",
    "TRAIN_DIR",
    "TRAIN_LST",
    "CheckReport",
    "DataError",
    "DeepFashionTest",
    "DeepFashionTrain",
    "FidRealSet",
    "check",
    "check_root",
    "flat_name",
    "load_image",
    "prepare",
    "read_annotations",
    "read_lst",
    "read_pairs",
    "to_signed",
    "to_tensor",
]
