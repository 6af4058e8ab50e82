"""Checks on what users upload to the web app; every failure is a :class:`gr.Error`.

Uploads do not stay on disk: Gradio stores each upload in its cache folder
(:func:`upload_folder`), and :class:`Uploads` deletes the file (and the folder Gradio made for
it) as soon as it has read it, keeping the decoded value in memory for the next click on the
same upload (the browser sends the same path again).  The app's hourly sweep of Gradio's cache
(``delete_cache`` in :mod:`cfld.app.layout`) stays as a backstop for files no handler read.
Only files inside the upload folder are ever deleted: a path given through the Python API is
read, never removed.
"""

from __future__ import annotations

import copy
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, Union

import gradio as gr
import numpy as np
from PIL import Image

from cfld.checks.files import read_json
from cfld.data.images import IMAGE_EXTENSIONS, check_image_size, convert_image, open_image
from cfld.pipelines.inputs import array_to_image

#: What a Gradio component hands over: a file path (``type="filepath"``), a PIL image, an array,
#: or None when nothing was uploaded.
Upload = Union[str, os.PathLike, Image.Image, np.ndarray, None]

#: Uploads larger than this are refused (also enforced by the server, see ``launch_app``).
MAX_UPLOAD_MB = 10
IMAGE_TYPES = IMAGE_EXTENSIONS
#: Largest side accepted for an uploaded image (decompression-bomb guard).
MAX_IMAGE_SIDE = 8192
#: Decoded uploads kept in memory for repeated clicks (after their files are deleted).
KEEP_UPLOADS = 16
KEEP_UPLOAD_BYTES = 512 * 2**20
T = TypeVar("T")


def upload_folder() -> str:
    """Gradio's cache folder for uploads (``$GRADIO_TEMP_DIR``, else ``<tmp>/gradio``)."""
    from gradio.utils import get_upload_folder

    return get_upload_folder()


class Uploads:
    """Validates uploads (size limit, type, readability) and turns them into values.

    Args:
        max_mb: Uploads above this size are refused.
        upload_dir: Gradio's upload folder: files inside it are deleted once read (see the
            module docstring); None deletes nothing.
    """

    def __init__(self, max_mb: float, upload_dir: str | os.PathLike | None = None) -> None:
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.max_mb = max_mb
        self.upload_dir = os.path.realpath(upload_dir) if upload_dir is not None else None
        self._read: OrderedDict[tuple[str, ...], tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ read once, then delete
    def is_upload(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` is a file of the upload folder (and so deleted once read)."""
        if self.upload_dir is None:
            return False
        real = os.path.realpath(path)
        return real != self.upload_dir and os.path.commonpath([self.upload_dir, real]) == (
            self.upload_dir)

    def consume(self, paths: Iterable[str | os.PathLike], read: Callable[[], T]) -> T:
        """``read()`` the upload(s) at ``paths`` once: then their files are deleted (when they
        are uploads), and a later call for the same paths returns the same value (or the same
        error) from memory."""
        paths = [os.fspath(p) for p in paths]
        uploads = [p for p in paths if self.is_upload(p)]
        if not uploads:
            return read()
        key = tuple(os.path.realpath(p) for p in paths)
        with self._lock:
            if key in self._read:
                self._read.move_to_end(key)
                value = self._read[key][0]
                if isinstance(value, gr.Error):
                    raise gr.Error(value.message, print_exception=False)
                return _fresh(value)  # type: ignore[return-value]
        try:
            value: Any = read()
        except gr.Error as err:
            with self._lock:  # a concurrent click may have read (and deleted) it just now
                done = self._read.get(key, (None, 0))[0]
            if done is not None and not isinstance(done, gr.Error):
                return _fresh(done)  # type: ignore[return-value]
            self._remember(key, err, 0)
            raise
        finally:
            for p in uploads:
                self._delete(p)
        self._remember(key, value, _size_of(value))
        return _fresh(value)

    def _remember(self, key: tuple[str, ...], value: object, size: int) -> None:
        with self._lock:
            self._read[key] = (value, size)
            while len(self._read) > KEEP_UPLOADS or (
                    len(self._read) > 1
                    and sum(s for _, s in self._read.values()) > KEEP_UPLOAD_BYTES):
                self._read.popitem(last=False)

    def _delete(self, path: str) -> None:
        """Remove an upload and the folders Gradio made for it (up to the upload folder)."""
        try:
            os.unlink(path)
        except OSError:
            return
        parent = os.path.dirname(os.path.realpath(path))
        while self.upload_dir is not None and parent != self.upload_dir and self.is_upload(
                parent):
            try:
                os.rmdir(parent)  # only when empty: another upload may share it
            except OSError:
                return
            parent = os.path.dirname(parent)

    def _size(self, path: str | os.PathLike, what: str) -> Path:
        p = Path(path)
        if not p.is_file():
            raise gr.Error(f"{what}: the upload did not arrive, please upload it again")
        if p.stat().st_size > self.max_bytes:
            raise gr.Error(f"{what} is {p.stat().st_size / 2**20:.1f} MB; the limit is "
                           f"{self.max_mb:g} MB")
        return p

    def _open(self, value: str | os.PathLike, what: str, mode: str | None) -> Image.Image:
        return self.consume([value], lambda: self._decode(value, what, mode))

    def _decode(self, value: str | os.PathLike, what: str, mode: str | None) -> Image.Image:
        p = self._size(value, what)
        if p.suffix.lower() not in IMAGE_TYPES:
            raise gr.Error(f"{what} must be an image ({', '.join(IMAGE_TYPES)}), got "
                           f"'{p.suffix or p.name}'")
        try:
            return open_image(p, mode=mode, max_side=MAX_IMAGE_SIDE, what=what)
        except ValueError as err:
            raise gr.Error(f"{what}: {err}") from None

    def image(self, value: Upload, what: str, required: bool = True) -> Image.Image | None:
        """An uploaded image (file path, PIL or array) → RGB PIL, or a gr.Error."""
        if value is None:
            if required:
                raise gr.Error(f"please upload the {what}")
            return None
        try:
            if isinstance(value, Image.Image):
                check_image_size(value.size, what, MAX_IMAGE_SIDE)
                return convert_image(value, "RGB")
            if isinstance(value, np.ndarray):
                return array_to_image(value, what)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return self._open(value, what, "RGB")

    def json(self, value: str | os.PathLike, what: str) -> object:
        """An uploaded JSON file → its value, or a gr.Error."""
        return self.consume([value], lambda: self._read_json(value, what))

    def _read_json(self, value: str | os.PathLike, what: str) -> object:
        p = self._size(value, what)
        if p.suffix.lower() != ".json":
            raise gr.Error(f"{what} must be a .json file, got '{p.suffix or p.name}'")
        try:
            return read_json(p, what, max_bytes=self.max_bytes)
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def mask(self, editor: dict[str, Any] | None,
             upload: str | os.PathLike | None) -> Image.Image | None:
        """The uploaded mask image, else the mask painted on the editor's layers (or None)."""
        if upload is not None:
            return self._open(upload, "the mask", None)
        editor = editor or {}
        background = editor.get("background")
        size = None
        if background is not None:
            size = (background.size if isinstance(background, Image.Image)
                    else np.asarray(background).shape[1::-1])
        painted = None
        for layer in editor.get("layers") or []:
            if layer is None:
                continue
            img = layer if isinstance(layer, Image.Image) else Image.fromarray(np.asarray(layer))
            arr = np.asarray(img)
            alpha = arr[..., 3] if arr.ndim == 3 and arr.shape[-1] == 4 else arr.max(-1)
            m = Image.fromarray((alpha > 0).astype(np.uint8) * 255)
            if size is not None and m.size != tuple(size):  # a layer of another canvas size
                m = m.resize(tuple(size), Image.NEAREST)
            m_arr = np.asarray(m) > 0
            painted = m_arr if painted is None else painted | m_arr
        if painted is None or not painted.any():
            return None
        return Image.fromarray(painted.astype(np.uint8) * 255)


def _size_of(value: object) -> int:
    """Bytes a decoded upload holds (images counted by pixels; the rest is small)."""
    if isinstance(value, Image.Image):
        return value.width * value.height * len(value.getbands())
    if isinstance(value, dict):
        return sum(_size_of(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_size_of(v) for v in value)
    return 0


def _fresh(value: T) -> T:
    """A copy of a remembered value, so that a handler changing it changes no later click."""
    if isinstance(value, Image.Image):
        return value.copy()  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [_fresh(v) for v in value]  # type: ignore[return-value]
    return copy.deepcopy(value)


__all__ = ["IMAGE_TYPES", "KEEP_UPLOADS", "MAX_IMAGE_SIDE", "MAX_UPLOAD_MB", "Upload", "Uploads",
           "upload_folder"]
