"""Image files and image tensors: the one way to open, resize and convert them.

Every module that reads an image (data sets, pipeline inputs, evaluation, the demo, the app)
goes through :func:`open_image` / :func:`load_image`, so a missing or broken file gives the same
clear error everywhere, and through :func:`to_tensor` / :func:`to_signed`, so every tensor is
made with the same arithmetic (torchvision's ``ToTensor`` and ``Normalize(0.5, 0.5)``, which
the authors use; fidelity §5.3).  Resizes are PIL bicubic to an exact ``(h, w)``: PIL's bicubic
filter is antialiased, like torchvision's ``Resize`` on PIL images, and the aspect ratio is not
kept (fidelity §5.3).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from cfld.data.formats import DataError
from cfld.sizes import check_size

#: Image file types we read, in order of preference when two files share a stem.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
#: What users may pass as an input image (pose photos and skeletons too).
INPUT_IMAGE_EXTENSIONS: tuple[str, ...] = (*IMAGE_EXTENSIONS, ".tif", ".tiff")

# PIL's decode errors (a truncated JPEG raises OSError, a bad header UnidentifiedImageError).
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError,
                  Image.DecompressionBombError)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of ``folder`` (by extension), sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def open_image(path: str | os.PathLike, mode: str | None = "RGB",
               max_side: int | None = None) -> Image.Image:
    """Open an image file, fully decoded, with a clear error for missing or broken files.

    Args:
        path: The image file.
        mode: Convert to this PIL mode (``None`` keeps the file's mode, e.g. for masks).
        max_side: Refuse images with a longer side (a guard against decompression bombs).

    Raises:
        FileNotFoundError: The file does not exist.
        DataError: The file is not a readable image, or is larger than ``max_side``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image not found: {p}")
    try:
        with Image.open(p) as img:
            if max_side is not None and max(img.size) > max_side:
                raise DataError(f"{p} is {img.size[0]}×{img.size[1]} pixels; the limit is "
                                f"{max_side} on a side")
            if mode is None:
                img.load()
                return img.copy()
            return img.convert(mode)
    except _DECODE_ERRORS as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"cannot read image {p}: not a readable image ({err}); re-copy or "
                        "remove this file") from None


def image_problem(path: str | os.PathLike, decode: bool = True) -> str | None:
    """None if ``path`` opens (and, with ``decode``, fully decodes) as an image, else why not."""
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


def resize_image(image: Image.Image, size: Sequence[int]) -> Image.Image:
    """``image`` at exactly ``size = (h, w)`` (PIL bicubic, antialiased; aspect not kept)."""
    h, w = check_size(size, "size")
    if image.size == (w, h):
        return image
    return image.resize((w, h), Image.BICUBIC)


def load_image(path: str | os.PathLike, size: Sequence[int] | None = None) -> Image.Image:
    """Open an image as RGB and optionally resize it to exactly ``size = (h, w)``.

    Raises:
        FileNotFoundError: The file does not exist.
        DataError: The file cannot be decoded as an image.
    """
    img = open_image(path)
    return img if size is None else resize_image(img, size)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image → float32 ``(3, H, W)`` in [0, 1] (torchvision ``ToTensor`` arithmetic)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    arr = np.asarray(image, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255)  # (3, H, W)


def to_signed(t: torch.Tensor) -> torch.Tensor:
    """[0, 1] → [-1, 1] with ``(x - 0.5) / 0.5`` (torchvision ``Normalize(0.5, 0.5)``)."""
    return (t - 0.5) / 0.5


def image_to_signed(image: Image.Image, size: Sequence[int]) -> torch.Tensor:
    """PIL image → ``(3, h, w)`` in [-1, 1] at ``size``: what the networks read (fidelity §5.3)."""
    return to_signed(to_tensor(resize_image(image, size)))


def load_label_map(path: str | os.PathLike, size: Sequence[int]) -> torch.Tensor:
    """A part-label PNG → int64 ``(h, w)`` at ``size`` (nearest neighbour keeps the labels)."""
    h, w = check_size(size, "size")
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.resize((w, h), Image.NEAREST), dtype=np.int64))


__all__ = ["IMAGE_EXTENSIONS", "INPUT_IMAGE_EXTENSIONS", "image_problem", "image_to_signed",
           "list_images",
           "load_image", "load_label_map", "open_image", "resize_image", "to_signed",
           "to_tensor"]
