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
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cfld.checks.files import input_file
from cfld.data.formats import DataError
from cfld.sizes import check_size

#: Image file types we read, in order of preference when two files share a stem.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
#: What users may pass as an input image (pose photos and skeletons too).
INPUT_IMAGE_EXTENSIONS: tuple[str, ...] = (*IMAGE_EXTENSIONS, ".tif", ".tiff")
#: Most pixels of an image we decode (a 48-megapixel phone photo passes; bombs do not).
MAX_IMAGE_PIXELS = 64_000_000

# PIL's decode errors (a truncated JPEG raises OSError, a bad header UnidentifiedImageError).
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError,
                  Image.DecompressionBombError)


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of ``folder`` (by extension), sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def open_image(path: str | os.PathLike, mode: str | None = "RGB",
               max_side: int | None = None, max_pixels: int = MAX_IMAGE_PIXELS,
               what: str = "image") -> Image.Image:
    """Open an image file once, fully decoded, upright and in ``mode``, with clear errors.

    * The EXIF orientation is applied (a phone photo stored sideways comes out upright).
    * Any mode and bit depth is converted by value: 16-bit and 32-bit greys are scaled to
      8 bits (not clipped to white), transparency is composited on white.
    * The pixel count is checked from the header, before decoding (decompression bombs).

    Args:
        path: The image file.
        mode: Convert to this PIL mode (``None`` keeps the file's mode, e.g. for masks; 16-bit
            greys still become 8-bit ``L``).
        max_side: Refuse images with a longer side.
        max_pixels: Refuse images with more pixels (default :data:`MAX_IMAGE_PIXELS`).
        what: The image's name in messages (e.g. ``"source image"``).

    Raises:
        FileNotFoundError: The file does not exist.
        DataError: A folder, not a readable image, or larger than the limits.
    """
    try:
        p = input_file(path, what)
    except ValueError as err:
        raise DataError(str(err)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                check_image_size(img.size, p, max_side, max_pixels)
                img.load()
                upright = ImageOps.exif_transpose(img)
                try:
                    return convert_image(upright, mode)
                except DataError as err:
                    raise DataError(f"{what} {p}: {err}") from None
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(f"{p} was refused as a decompression bomb ({err}); give an image below "
                        f"{max_pixels / 1e6:.0f} megapixels") from None
    except _DECODE_ERRORS as err:
        raise DataError(f"cannot read {what} {p}: not a readable image ({err}); re-copy or "
                        "remove this file") from None


def check_image_size(size: Sequence[int], where: object, max_side: int | None = None,
                     max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Refuse a ``(W, H)`` image above the limits (checked before decoding)."""
    w, h = size
    if max_side is not None and max(w, h) > max_side:
        raise DataError(f"{where} is {w}×{h} pixels; the limit is {max_side} on a side; resize "
                        "it first")
    if w * h > max_pixels:
        raise DataError(f"{where} is {w}×{h} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
                        f"{max_pixels / 1e6:.0f} megapixels (a guard against decompression "
                        "bombs); resize it first")


def convert_image(img: Image.Image, mode: str | None = "RGB") -> Image.Image:
    """``img`` in ``mode`` by value: high bit-depth greys scaled to 8 bits, alpha composited on
    white, palettes expanded (``None`` keeps 8-bit modes, scales the others to ``L``)."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():  # float images: NaN/inf would become black or white
            raise DataError(f"the {img.width}×{img.height} {img.mode} image has NaN or infinite "
                            "pixels; save it with finite values (or as an 8-bit PNG/JPEG)")
        top = float(arr.max()) if arr.size else 0.0
        if img.mode.startswith("I;16"):
            scale = 65535.0
        elif img.mode == "F":  # the range its values say: [0, 1], 8 or 16 bits
            scale = 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else 65535.0
        else:  # 32-bit integers: 16-bit data (PNG) unless every value fits 8 bits
            scale = 65535.0 if top > 255 else 255.0
        if top > 65535.0 or (arr.size and float(arr.min()) < 0.0):
            raise DataError(f"the {img.width}×{img.height} {img.mode} image has values from "
                            f"{float(arr.min()):g} to {top:g}, outside 0..65535; save it as an "
                            "8- or 16-bit image")
        img = Image.fromarray(np.clip(np.round(arr / scale * 255), 0, 255).astype(np.uint8), "L")
    if mode is None:
        return img.copy()
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") and mode in ("RGB", "L"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert(mode) if img.mode != mode else img.copy()


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
        image = convert_image(image, "RGB")
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


__all__ = ["IMAGE_EXTENSIONS", "INPUT_IMAGE_EXTENSIONS", "MAX_IMAGE_PIXELS", "check_image_size",
           "convert_image", "image_problem", "image_to_signed",
           "list_images",
           "load_image", "load_label_map", "open_image", "resize_image", "to_signed",
           "to_tensor"]
