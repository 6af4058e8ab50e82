"""Input files and folders: exist and are the right kind, stay inside their roots, read as text or
JSON within limits.  Every error names the file and what to do about it."""

from __future__ import annotations

import json
import os
from pathlib import Path

#: Largest JSON or text file read as an input (keypoints, pose sequences, configurations).
MAX_JSON_BYTES = 64 * 2**20
#: Deepest nesting accepted in a JSON input (a pose sequence needs 4 levels).
MAX_JSON_DEPTH = 64


def input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a Path if it is a readable file.

    Raises:
        FileNotFoundError: Nothing at ``path``.
        ValueError: ``path`` is a folder or not readable (the message says so).
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{what} {p} is a folder, not a file; give the path of the file itself")
    if not p.exists():
        raise FileNotFoundError(f"{what} not found: {p}")
    if not p.is_file():
        raise ValueError(f"{what} {p} is not a regular file")
    if not os.access(p, os.R_OK):
        raise ValueError(f"{what} {p} is not readable (check its permissions)")
    return p


def input_dir(path: str | os.PathLike, what: str = "folder") -> Path:
    """``path`` as a Path if it is a folder (FileNotFoundError / ValueError otherwise)."""
    p = Path(path)
    if p.is_file():
        raise ValueError(f"{what} {p} is a file, not a folder")
    if not p.is_dir():
        raise FileNotFoundError(f"{what} not found: {p}")
    return p


def inside_root(root: str | os.PathLike, name: str | os.PathLike, what: str = "file",
                folder: str | os.PathLike | None = None) -> Path:
    """``root / folder / name`` for a ``name`` read from a data file (a pairs csv, an annotation
    csv, a list), refused if ``name`` is absolute or has ``..`` or ``~``, or if its real path
    (symbolic links followed) lies outside the real data root and outside the real ``folder``.

    The containment is checked on real paths so that a link *inside* the root that points out
    of it (``test_highres/a.jpg -> /etc/shadow``) is refused, while a data root, or an image
    folder, that is itself a link to another disk still works.

    Raises:
        ValueError: The path escapes the root (the message names the name and the fix).
    """
    root_p = Path(root)
    base = root_p / folder if folder is not None else root_p
    text = os.fspath(name)
    rel = Path(text.replace("\\", "/"))
    if (not text or "\x00" in text or rel.is_absolute() or ".." in rel.parts
            or text.startswith("~") or (len(text) > 1 and text[1] == ":")):
        raise ValueError(f"{what} name {text!r} points outside the data root {root_p}; "
                         "names in the csv files must be plain file names inside it")
    joined = base / rel
    if len(rel.parts) == 1 and not os.path.islink(joined):
        return joined  # an entry of the folder itself (one lstat: cheap for 100k names)
    real = os.path.realpath(joined)
    allowed = {os.path.realpath(root_p), os.path.realpath(base)}
    if not any(os.path.commonpath([r, real]) == r for r in allowed):
        raise ValueError(f"{what} {joined} is a symbolic link to {real}, outside the data root "
                         f"{root_p}; copy the file into the root instead of linking to it")
    return joined


def relative_name(name: str, where: str = "name") -> str:
    """``name`` if it is a relative path that stays inside its folder (no ``..``, not absolute,
    no ``~``, no NUL), for names read from data files (pairs csv, annotations, lists).

    Raises:
        ValueError: The name could read a file outside the data root.
    """
    parts = name.replace("\\", "/").split("/")
    if (not name or "\x00" in name or name.startswith(("/", "~")) or ".." in parts
            or os.path.isabs(name) or (len(name) > 1 and name[1] == ":")):
        raise ValueError(f"{where}: {name!r} is not a file name inside the data root (absolute "
                         "paths, '..' and '~' are refused); use the plain image name")
    return name


def read_text(path: str | os.PathLike, what: str = "file",
              max_bytes: int = MAX_JSON_BYTES) -> str:
    """A UTF-8 text file (a BOM is dropped), with a named error for binary or huge files."""
    p = input_file(path, what)
    size = p.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{what} {p} is {size / 2**20:.1f} MB; the limit is "
                         f"{max_bytes / 2**20:.0f} MB for this kind of file")
    data = p.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # a BOM: UTF-16 (Windows editors save it)
        raise ValueError(f"{what} {p} is UTF-16 text; save it as UTF-8")
    if b"\x00" in data[:8192]:
        raise ValueError(f"{what} {p} is a binary file, not text; give the text file itself")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} {p} is not UTF-8 text (byte {err.start}: "
                         f"{data[err.start:err.start + 1]!r}); save it as UTF-8") from None


def parse_json(text: str, where: str = "JSON", max_depth: int = MAX_JSON_DEPTH) -> object:
    """``json.loads`` with a named error for bad syntax, NaN/Infinity and deep nesting."""

    def no_constants(name: str) -> float:
        raise ValueError(f"{where} contains {name}, which is not a number in JSON; use finite "
                         "numbers")

    try:
        value = json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where} is not valid JSON: {err}") from None
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply (more than {max_depth} levels)") from None
    _check_depth(value, where, max_depth)
    return value


def read_json(path: str | os.PathLike, what: str = "JSON file",
              max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> object:
    """A JSON file's value (see :func:`read_text` and :func:`parse_json`)."""
    p = Path(path)
    return parse_json(read_text(p, what, max_bytes), f"{what} {p}", max_depth)


def _check_depth(value: object, where: str, max_depth: int) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > max_depth:
                raise ValueError(f"{where} is nested too deeply (more than {max_depth} levels)")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children if isinstance(c, (list, dict)))


__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "input_dir", "input_file", "inside_root",
           "parse_json", "read_json", "read_text", "relative_name"]
