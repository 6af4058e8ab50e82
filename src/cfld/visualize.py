"""Image grids and atomic image writing for the CLI, demo and training samples."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from cfld.checks.outputs import IMAGE_FORMATS, OutputError
from cfld.checks.writes import atomic_file


def save_image_atomic(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write ``image`` to a temporary file beside ``path`` then rename it into place (the
    umask's permissions; see :mod:`cfld.checks.writes`)."""
    path = Path(path)
    fmt = IMAGE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"unsupported output image type {path.suffix or '(none)'!r} for {path}; "
                          f"use one of {', '.join(sorted(IMAGE_FORMATS))}")
    with atomic_file(path) as fh:
        image.save(fh, format=fmt)
    return path


def make_grid(rows: Sequence[Sequence[Image.Image]], cell: tuple[int, int] | None = None,
              labels: Sequence[str] | None = None, pad: int = 2, margin: int | None = None,
              background: tuple[int, int, int] = (255, 255, 255),
              resample: Image.Resampling = Image.NEAREST) -> Image.Image:
    """Paste images into a grid (rows × columns), each resized to ``cell`` = (H, W).

    The one grid maker of the project (demo, ``cfld generate --grid``, training samples,
    interpolation strips).

    Args:
        rows: One list of images per row (equal lengths).
        cell: Cell size; default the first image's size.
        labels: Optional column titles drawn above the first row.
        pad: Pixels between cells.
        margin: Pixels around the grid (default ``pad``).
        background: Colour between and around the cells.
        resample: Filter for images whose size is not ``cell`` (default nearest: small model
            outputs are shown enlarged without smoothing).
    """
    if not rows or not rows[0]:
        raise ValueError("make_grid needs at least one image")
    ncols = len(rows[0])
    if any(len(r) != ncols for r in rows):
        raise ValueError("every grid row must have the same number of images")
    h, w = cell or (rows[0][0].height, rows[0][0].width)
    m = pad if margin is None else margin
    top = 14 if labels else 0
    grid = Image.new("RGB", (2 * m + ncols * w + (ncols - 1) * pad,
                             top + 2 * m + len(rows) * h + (len(rows) - 1) * pad), background)
    draw = ImageDraw.Draw(grid)
    if labels:
        for c, text in enumerate(labels):
            draw.text((m + c * (w + pad) + 2, 1), text, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            img = img.convert("RGB")
            if img.size != (w, h):
                img = img.resize((w, h), resample)
            grid.paste(img, (m + c * (w + pad), top + m + r * (h + pad)))
    return grid


def tensor_to_image(image: Tensor) -> Image.Image:
    """(3, H, W) in [0, 1] → PIL, rounded to the nearest 8-bit level (for viewing)."""
    arr = (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5)
    return Image.fromarray(arr.astype(np.uint8))
