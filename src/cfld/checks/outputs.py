"""Output paths, checked before any work: the right kind, a supported type, writable, and never
an existing file unless the caller allows overwriting."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

#: Image file types we write, and PIL's format name for each.
IMAGE_FORMATS: dict[str, str] = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG",
                                 ".webp": "WEBP", ".gif": "GIF"}


class OutputError(ValueError):
    """An output cannot be written where asked; the message names the path and the fix."""


def writable_dir(folder: str | os.PathLike, what: str = "output") -> Path:
    """Check that ``folder`` exists or can be created, and that files can be written in it."""
    target = Path(folder)
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot create the {what} folder {target}: {probe} is a file, not a "
                          "folder; choose another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write the {what} into {probe}: permission denied or a "
                          "read-only file system; choose another output folder")
    return target


def output_file(path: str | os.PathLike, what: str = "output", overwrite: bool = False,
                suffixes: Iterable[str] | None = None, flag: str = "--overwrite") -> Path:
    """Check an output file path before any work is done.

    Args:
        path: The file to write.
        what: Its name in messages (e.g. ``"--out"``).
        overwrite: Allow replacing an existing file.
        suffixes: Allowed file types (e.g. :data:`IMAGE_FORMATS`); None allows any.
        flag: The option that allows overwriting, named in the message.

    Raises:
        OutputError: Unsupported type, an existing folder, an existing file without
            ``overwrite``, or an unwritable place.
    """
    p = Path(path)
    if suffixes is not None:
        allowed = sorted(set(suffixes))
        if p.suffix.lower() not in allowed:
            raise OutputError(f"{what} {p}: unsupported file type {p.suffix or '(none)'!r}; "
                              f"use one of {', '.join(allowed)}")
    if p.is_dir():
        raise OutputError(f"{what} {p} is an existing folder; give a file name")
    if p.exists() or p.is_symlink():
        if not p.is_file():
            raise OutputError(f"{what} {p} exists and is not a regular file")
        if not overwrite:
            raise OutputError(f"{what} {p} already exists; pass {flag} to replace it, or choose "
                              "another name")
    writable_dir(p.parent, what)
    return p


def output_image(path: str | os.PathLike, what: str = "output image", overwrite: bool = False,
                 flag: str = "--overwrite") -> Path:
    """:func:`output_file` for an image (.png, .jpg, .jpeg, .webp, .gif)."""
    return output_file(path, what, overwrite, IMAGE_FORMATS, flag)


def output_dir(path: str | os.PathLike, what: str = "output folder",
               names: Iterable[str] = (), overwrite: bool = False,
               flag: str = "--overwrite") -> Path:
    """Check an output folder: not a file, writable, and none of ``names`` (the files the
    command will write in it) already there unless ``overwrite``."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{what} {p} is an existing file, not a folder; give a folder path")
    if not overwrite and p.is_dir():
        clashes = [n for n in names if (p / n).exists()]
        if clashes:
            more = f" and {len(clashes) - 1} more" if len(clashes) > 1 else ""
            raise OutputError(f"{what} {p} already holds {clashes[0]}{more}; pass {flag} to "
                              "replace them, or choose another folder")
    writable_dir(p, what)
    return p


#: The frame files of ``cfld animate`` / ``cfld edit interpolate`` (``frame_0000.png``, ...).
FRAME_PATTERN = "frame_[0-9][0-9][0-9][0-9].png"


def frame_outputs(folder: str | os.PathLike, count: int, what: str = "--out",
                  overwrite: bool = False, extra: Iterable[str] = ()) -> Path:
    """:func:`output_dir` for a folder of ``count`` numbered frames (and ``extra`` files): an
    earlier sequence there clashes whatever its length (a 10-frame one under a new 5-frame one
    would otherwise leave frames 5-9 beside the new ones, looking like one animation)."""
    p = Path(folder)
    earlier = sorted(f.name for f in p.glob(FRAME_PATTERN)) if p.is_dir() else []
    names = [f"frame_{i:04d}.png" for i in range(count)] + list(extra)
    return output_dir(p, what, earlier + [n for n in names if n not in earlier], overwrite)


def remove_stale_frames(folder: str | os.PathLike, count: int) -> list[Path]:
    """After ``count`` new frames were written (with ``--overwrite``): remove the earlier
    sequence's frames beyond them, so the folder holds one animation."""
    keep = {f"frame_{i:04d}.png" for i in range(count)}
    stale = [f for f in sorted(Path(folder).glob(FRAME_PATTERN)) if f.name not in keep]
    for f in stale:
        f.unlink(missing_ok=True)
    return stale


#: What a training run writes into its folder (``cfld train --out``).
RUN_ENTRIES = ("config.json", "metrics.jsonl", "checkpoints", "model", "samples", "tensorboard")


def run_dir(path: str | os.PathLike, resume: bool, what: str = "--out") -> Path:
    """A training run's folder, checked before any work: not a file, writable, and holding no
    earlier run (:data:`RUN_ENTRIES`) unless that run is being resumed.

    A run is never replaced (there is no ``--overwrite``): its files are written step by step
    over hours, so there is no moment at which the old run could be swapped for the new one;
    deleting it first would lose it to any later error.  The user continues it, picks another
    folder, or removes it.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{what} {p} is an existing file, not a folder; give a folder path")
    if not resume and p.is_dir():
        clashes = [n for n in RUN_ENTRIES if (p / n).exists()]
        if clashes:
            raise OutputError(f"{what} {p} already holds a training run ({', '.join(clashes)}); "
                              "continue it with --resume latest, or choose a new --out (a run "
                              "is never replaced: remove the folder yourself to start over)")
    writable_dir(p, what)
    return p


def write_error(err: BaseException, path: str | os.PathLike) -> OutputError | None:
    """The :class:`OutputError` that explains a failed write of ``path`` (full disk, read-only
    file system, no permission, ...), or None when ``err`` is not a write failure."""
    code = getattr(err, "errno", None)
    text = str(err)
    if code in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "os error 28" in text:
        return OutputError(f"cannot write {path}: no space left on the device; free some space "
                           "or choose an output folder on another disk")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return OutputError(f"cannot write {path}: {os.strerror(code)}; choose an output folder "
                           "you can write to")
    if isinstance(err, OSError):
        return OutputError(f"cannot write {path}: {err.strerror or err}; check the output path")
    if isinstance(err, RuntimeError) and ("file write failed" in text or "basic_ios" in text):
        return OutputError(f"cannot write {path}: the write failed (disk full or the file system "
                           "refused it); free some space or choose another output folder")
    return None


__all__ = ["FRAME_PATTERN", "IMAGE_FORMATS", "RUN_ENTRIES", "OutputError", "frame_outputs",
           "output_dir", "output_file", "output_image", "remove_stale_frames", "run_dir",
           "writable_dir", "write_error"]
