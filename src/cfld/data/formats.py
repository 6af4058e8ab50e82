"""The DeepFashion In-Shop file format used by the authors (fidelity §5): names and readers.

Layout of a prepared root (fidelity §5.1)::

    ROOT/fasion-resize-pairs-train.csv       from,to            (comma separated)
    ROOT/fasion-resize-pairs-test.csv
    ROOT/fasion-resize-annotation-train.csv  name:keypoints_y:keypoints_x  (':' separated)
    ROOT/fasion-resize-annotation-test.csv
    ROOT/train.lst, ROOT/test.lst            one image name per line
    ROOT/train_highres/*.jpg, ROOT/test_highres/*.jpg

The file names keep the official misspelling "fasion" (fidelity §5.1).  Our procedural data set
(:mod:`cfld.data.synthetic`) is written in the same layout, so the same readers serve both.
Generated images of a pair are named ``<source stem>___<target stem>.png``
(:func:`generated_name`), which ``cfld generate`` writes and ``cfld evaluate`` reads.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from cfld.pose.keypoints import DEEPFASHION_FRAME, Keypoints
from cfld.sizes import check_size

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
# Pair counts of the official PATN split (fidelity §5.1), printed next to ours for comparison.
OFFICIAL_PAIR_COUNTS: dict[str, int] = {"train": 101_966, "test": 8_570}
ANNOTATION_HEADER = ("name", "keypoints_y", "keypoints_x")
#: Joins the two stems in the name of a generated image.
GENERATED_SEPARATOR = "___"


class DataError(ValueError):
    """A problem with a data file or sample; the message names the file and the fix."""


def generated_name(source: str, target: str) -> str:
    """Stem of the generated image of a pair: ``<source stem>___<target stem>``."""
    return f"{Path(source).stem}{GENERATED_SEPARATOR}{Path(target).stem}"


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
    with _open_text(path, "pairs file") as fh:
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
            where = f"{path}, line {lineno}"
            pair = (_name(row[i_from].strip(), where), _name(row[i_to].strip(), where))
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
        frame: frame of the coordinates, ``(256, 176)`` for DeepFashion (fidelity §5.1).

    Returns:
        Image name -> keypoints.

    Raises:
        FileNotFoundError: when the file does not exist.
        DataError: for a wrong separator or header, a malformed row or keypoint string
            (naming the file, line and image name), or a name listed twice.
    """
    path = Path(csv_path)
    frame = check_size(frame)
    out: dict[str, Keypoints] = {}
    first_line: dict[str, int] = {}
    with _open_text(path, "annotation file") as fh:
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
            _name(name, f"{path}, line {lineno}")
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
    with _open_text(path, "list file") as fh:
        return [_name(ln.strip(), f"{path}, line {i}") for i, ln in enumerate(fh, start=1)
                if ln.strip()]


#: Largest pairs/annotation/list file read (DeepFashion's largest is about 10 MB).
MAX_DATA_FILE_BYTES = 1 << 30


def _open_text(path: Path, what: str) -> io.StringIO:
    """A data file's text (named errors for a folder, a binary or non-UTF-8 file)."""
    from cfld.checks.files import read_text

    try:
        return io.StringIO(read_text(path, what, MAX_DATA_FILE_BYTES), newline="")
    except FileNotFoundError:
        raise
    except ValueError as err:
        raise DataError(str(err)) from None


def _name(name: str, where: str) -> str:
    from cfld.checks.files import relative_name

    try:
        return relative_name(name, where)
    except ValueError as err:
        raise DataError(str(err)) from None


def iter_names(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """Unique image names of a list of pairs, in first-seen order."""
    return list(dict.fromkeys(n for p in pairs for n in p))


__all__ = [
    "ANNOTATION_HEADER",
    "ANNOTATION_TEST",
    "ANNOTATION_TRAIN",
    "GENERATED_SEPARATOR",
    "OFFICIAL_PAIR_COUNTS",
    "PAIRS_TEST",
    "PAIRS_TRAIN",
    "SPLITS",
    "SPLIT_FILES",
    "TEST_DIR",
    "TEST_LST",
    "TRAIN_DIR",
    "TRAIN_LST",
    "DataError",
    "find_duplicate_pairs",
    "generated_name",
    "iter_names",
    "read_annotations",
    "read_lst",
    "read_pairs",
]
