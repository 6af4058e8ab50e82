"""Checkpoints verified before they are trusted: a manifest of every file's size and SHA-256,
written last into the checkpoint, checked on load; ``--resume latest`` falls back to the newest
checkpoint that is intact.

A kill during a checkpoint write leaves only a temporary folder (removed by the next write,
:mod:`cfld.checks.writes`); a checkpoint damaged later (a truncated copy, a bad disk) fails its
manifest and is passed over with a warning instead of stopping the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

MANIFEST_NAME = "manifest.json"


class CorruptCheckpointError(ValueError):
    """A checkpoint's files do not match its manifest or cannot be read."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: str | os.PathLike) -> Path:
    """Record the size and SHA-256 of every file in ``folder`` (call it last)."""
    folder = Path(folder)
    files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(folder.iterdir())
             if p.is_file() and p.name != MANIFEST_NAME and not p.name.startswith(".")}
    path = folder / MANIFEST_NAME
    path.write_text(json.dumps({"format": 1, "files": files}, indent=1) + "\n", encoding="utf-8")
    return path


def verify_checkpoint(folder: str | os.PathLike, required: Sequence[str]) -> Path:
    """Check ``folder`` against its manifest (or, for a checkpoint written before manifests,
    that its files load).

    Raises:
        CorruptCheckpointError: A file missing, of another size or content, or unreadable.
    """
    from cfld.checks.files import read_json

    folder = Path(folder)
    for name in required:
        if not (folder / name).is_file():
            raise CorruptCheckpointError(f"checkpoint {folder} is incomplete: {name} is missing")
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        _verify_by_loading(folder, required)
        return folder
    try:
        files = read_json(manifest, "checkpoint manifest")["files"]  # type: ignore[index]
        expected = {str(k): (int(v["bytes"]), str(v["sha256"])) for k, v in files.items()}
    except (ValueError, KeyError, TypeError) as err:
        raise CorruptCheckpointError(f"checkpoint {folder}: unreadable manifest ({err})") from None
    for name, (size, digest) in expected.items():
        p = folder / name
        if not p.is_file():
            raise CorruptCheckpointError(f"checkpoint {folder} is incomplete: {name} is missing")
        if p.stat().st_size != size:
            raise CorruptCheckpointError(f"checkpoint {folder}: {name} is {p.stat().st_size} "
                                         f"bytes, the manifest says {size} (truncated?)")
        if _sha256(p) != digest:
            raise CorruptCheckpointError(f"checkpoint {folder}: {name} does not match its "
                                         "manifest checksum (damaged)")
    return folder


def _verify_by_loading(folder: Path, required: Sequence[str]) -> None:
    from cfld.checks.models import check_safetensors, load_torch_file

    try:
        for name in required:
            if name.endswith(".safetensors"):
                check_safetensors(folder / name, "checkpoint weights")
            else:
                load_torch_file(folder / name, "checkpoint state")
    except (ValueError, FileNotFoundError) as err:
        raise CorruptCheckpointError(f"checkpoint {folder} cannot be read: {err}") from None


def newest_intact(candidates: Sequence[Path], required: Sequence[str]) -> Path | None:
    """The newest of ``candidates`` (oldest first) that passes :func:`verify_checkpoint`; each
    newer one that fails is reported with a warning."""
    for path in reversed(candidates):
        try:
            return verify_checkpoint(path, required)
        except CorruptCheckpointError as err:
            warnings.warn(f"{err}; falling back to the previous checkpoint", stacklevel=2)
    return None


__all__ = ["MANIFEST_NAME", "CorruptCheckpointError", "newest_intact", "verify_checkpoint",
           "write_manifest"]
