"""Atomic writes: a temporary name beside the target, then one rename.

Every file and folder cfld writes goes through here, so that

* a crash or a kill never leaves a half-written file where a good one was;
* files get the permissions of ``umask`` (0644 / 0755 typically), like any other program's;
* temporaries carry the host and process that made them (``.NAME.<host>-<pid>-<rand>.cfld-tmp``),
  and the next write into the same folder removes those whose process is gone
  (:func:`clean_stale_temps`), as well as the temporaries of earlier cfld versions;
* a full disk or a read-only folder is one clear :class:`~cfld.checks.outputs.OutputError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from cfld.checks.outputs import OutputError, write_error

TEMP_SUFFIX = ".cfld-tmp"
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}"
                   + re.escape(TEMP_SUFFIX) + r"(\.[A-Za-z0-9]+)?$")
#: Temporaries of earlier versions (no owner recorded): removed once older than an hour.
_LEGACY = (re.compile(r"^\..+\.tmp\.[A-Za-z0-9_]{8}$"),               # folders (mkdtemp)
           re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$"),               # bytes (mkstemp .tmp)
           re.compile(r"^\..+\.(png|jpe?g|gif|webp)\.[A-Za-z0-9_]{8}$"))  # images (mkstemp)
_LEGACY_AGE_S = 3600.0
#: An owner on another host (shared file system) is assumed gone after a day.
_FOREIGN_AGE_S = 86400.0
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_cleaned: set[str] = set()
T = TypeVar("T")
_lock = threading.Lock()


def _current_umask() -> int:
    try:  # Linux: read it without changing it (os.umask would race with other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new file: ``0o666 & ~umask``."""
    return 0o666 & ~_current_umask()


def dir_mode() -> int:
    """Permissions of a new folder: ``0o777 & ~umask``."""
    return 0o777 & ~_current_umask()


def temp_path(target: Path, keep_suffix: bool = False) -> Path:
    """A fresh temporary name beside ``target`` that records this host and process
    (``keep_suffix`` repeats the target's extension at the end, for writers that pick the
    format from it)."""
    return target.with_name(f".{target.name}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
                            f"{TEMP_SUFFIX}{target.suffix if keep_suffix else ''}")


def finish_temp(tmp: Path, target: Path) -> Path:
    """Give a finished temporary file the umask's permissions and rename it to ``target``."""
    try:
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        _raise_write_error(err, target)
        raise
    return target


def _owner_alive(host: str, pid: int) -> bool:
    if host != _HOST:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale_temps(folder: str | os.PathLike, force: bool = False) -> list[Path]:
    """Remove abandoned cfld temporaries in ``folder`` (once per folder and process unless
    ``force``); returns what was removed."""
    folder = Path(folder)
    key = os.path.realpath(folder)
    with _lock:
        if key in _cleaned and not force:
            return []
        _cleaned.add(key)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        m = _TEMP.match(entry.name)
        if m:
            stale = (not _owner_alive(m["host"], int(m["pid"]))) or (
                m["host"] != _HOST and age > _FOREIGN_AGE_S)
        else:
            stale = any(p.match(entry.name) for p in _LEGACY) and age > _LEGACY_AGE_S
        if stale:
            _remove(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


def _raise_write_error(err: BaseException, path: Path) -> None:
    translated = write_error(err, path)
    if translated is not None:
        raise translated from None


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """``with atomic_file(p) as fh: fh.write(...)``: the file appears at ``p`` complete, with
    the umask's permissions, or not at all."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _raise_write_error(err, target)
        raise
    clean_stale_temps(target.parent)
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is an existing folder")
    tmp = temp_path(target)
    try:
        with open(tmp, "xb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        _raise_write_error(err, target)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text version of :func:`write_bytes_atomic`."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def atomic_dir(out_dir: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)``, then put ``tmp_dir`` at ``out_dir`` (replacing it).

    A replaced folder is first renamed to ``.NAME.cfld-old``; if a kill falls between the two
    renames, the next call puts it back before anything else.
    """
    out = Path(out_dir)
    backup = out.with_name(f".{out.name}.cfld-old")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(out.parent)
        if backup.exists() and not out.exists():
            os.replace(backup, out)  # a kill came between the two renames last time
        tmp = temp_path(out)
        tmp.mkdir(mode=0o700)
    except OSError as err:
        _raise_write_error(err, out)
        raise
    try:
        write(tmp)
        _apply_modes(tmp)
        if out.exists():
            if backup.exists():
                shutil.rmtree(backup)
            os.replace(out, backup)
            os.replace(tmp, out)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_write_error(err, out)
        raise
    return out


def replace_entries(out_dir: str | os.PathLike, write: Callable[[Path], T]) -> T:
    """Call ``write(tmp)`` in a fresh temporary folder beside ``out_dir``, then move every entry
    it made into ``out_dir``, each replacing the entry of the same name by renames (a replaced
    folder, or a file where a folder goes, is renamed aside first and removed after).

    For outputs made of several files that belong together (``cfld data synth``'s csvs and
    image folders, ``cfld demo``'s grid and metrics): all the work is done before the first
    rename, so a failure or a kill during ``write`` leaves ``out_dir`` as it was, and entries of
    ``out_dir`` that ``write`` does not make are left alone.  Returns what ``write`` returned.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(out.parent)
        clean_stale_temps(out)
        tmp = temp_path(out)
        tmp.mkdir(mode=0o700)
    except OSError as err:
        _raise_write_error(err, out)
        raise
    try:
        result = write(tmp)
        _apply_modes(tmp)
        for entry in sorted(tmp.iterdir()):
            dest = out / entry.name
            if (dest.exists() or dest.is_symlink()) and (entry.is_dir() or dest.is_dir()):
                aside = temp_path(dest)  # removed by the next write should a kill come here
                os.replace(dest, aside)
                os.replace(entry, dest)
                _remove(aside)
            else:
                os.replace(entry, dest)
    except BaseException as err:
        _raise_write_error(err, out)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _apply_modes(root: Path) -> None:
    """Umask permissions on a finished temporary folder (mkdir/mkstemp inside may be 0700/0600)."""
    fmode, dmode = file_mode(), dir_mode()
    os.chmod(root, dmode)
    for base, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(base, d), dmode)
        for f in files:
            os.chmod(os.path.join(base, f), fmode)


__all__ = ["TEMP_SUFFIX", "atomic_dir", "atomic_file", "clean_stale_temps", "dir_mode",
           "file_mode", "finish_temp", "replace_entries", "temp_path", "write_bytes_atomic",
           "write_text_atomic"]
