"""Image grids and atomic image writing for the CLI, demo and training samples."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw


def save_image_atomic(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write ``image`` to a temporary file beside ``path`` then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".gif": "GIF",
           ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported output image type {path.suffix!r}; use .png or .jpg")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def make_grid(rows: Sequence[Sequence[Image.Image]], cell: tuple[int, int] | None = None,
              labels: Sequence[str] | None = None, pad: int = 2) -> Image.Image:
    """Paste images into a grid (rows × columns), each resized to ``cell`` = (H, W).

    Args:
        rows: One list of images per row (equal lengths).
        cell: Cell size; default the first image's size.
        labels: Optional column titles drawn above the first row.
        pad: Pixels between cells.
    """
    if not rows or not rows[0]:
        raise ValueError("make_grid needs at least one image")
    ncols = len(rows[0])
    if any(len(r) != ncols for r in rows):
        raise ValueError("every grid row must have the same number of images")
    h, w = cell or (rows[0][0].height, rows[0][0].width)
    top = 14 if labels else 0
    grid = Image.new("RGB", (ncols * (w + pad) + pad, top + len(rows) * (h + pad) + pad),
                     (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    if labels:
        for c, text in enumerate(labels):
            draw.text((pad + c * (w + pad) + 2, 1), text, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            img = img.convert("RGB")
            if img.size != (w, h):
                img = img.resize((w, h), Image.NEAREST)
            grid.paste(img, (pad + c * (w + pad), top + pad + r * (h + pad)))
    return grid
