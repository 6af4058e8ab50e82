"""Checks on what users upload to the web app; every failure is a :class:`gr.Error`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

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


class Uploads:
    """Validates uploads (size limit, type, readability) and turns them into values."""

    def __init__(self, max_mb: float) -> None:
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.max_mb = max_mb

    def _size(self, path: str | os.PathLike, what: str) -> Path:
        p = Path(path)
        if not p.is_file():
            raise gr.Error(f"{what}: the upload did not arrive, please upload it again")
        if p.stat().st_size > self.max_bytes:
            raise gr.Error(f"{what} is {p.stat().st_size / 2**20:.1f} MB; the limit is "
                           f"{self.max_mb:g} MB")
        return p

    def _open(self, value: str | os.PathLike, what: str, mode: str | None) -> Image.Image:
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


__all__ = ["IMAGE_TYPES", "Upload", "MAX_IMAGE_SIDE", "MAX_UPLOAD_MB", "Uploads"]
