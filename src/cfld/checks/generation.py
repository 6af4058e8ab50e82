"""Where generated images go, checked before the pipeline runs: ``cfld generate`` and
:mod:`cfld.generation` (one image, or every pair of a pairs csv)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cfld.checks.files import inside_root, relative_name
from cfld.checks.outputs import IMAGE_FORMATS, OutputError, output_dir, output_image


def single_output(out: str | os.PathLike, source: str | os.PathLike, pose: object,
                  overwrite: bool = False, grid: bool = False) -> Path:
    """The image path of a single generation: ``out`` itself when it names an image file
    (.png, .jpg, ...), else ``out/<source stem>___<pose stem>.png`` when ``out`` has no
    extension (a folder).  It (and the ``_grid`` image) must not exist unless ``overwrite``.

    Raises:
        OutputError: ``out`` has another extension (``x.bmp`` is not made into a folder), is an
            existing file where a folder is meant, exists without ``overwrite``, or cannot be
            written.
    """
    from cfld.data.formats import generated_name

    p = Path(out)
    suffix = p.suffix.lower()
    if suffix and suffix not in IMAGE_FORMATS and not p.is_dir():
        raise OutputError(f"--out {p}: unsupported image type {p.suffix!r}; use one of "
                          f"{', '.join(sorted(IMAGE_FORMATS))}, or a folder path without an "
                          "extension")
    if not suffix or p.is_dir():
        folder = output_dir(p, "--out")
        p = folder / f"{generated_name(str(source), str(pose))}.png"
    path = output_image(p, "output image", overwrite)
    if grid:
        output_image(path.with_name(path.stem + "_grid.png"), "grid image", overwrite)
    return path


def single_inputs(source: str | os.PathLike, pose: str | os.PathLike) -> None:
    """Check a single generation's source photo and keypoint file before the model is loaded
    (opened by the one image opener; a pose image or photo is left to the pipeline)."""
    from cfld.data.images import open_image
    from cfld.pipelines.inputs import check_side, keypoints_from_any

    image = open_image(source, what="source image")
    check_side(image.height, image.width, "source image")
    if Path(pose).suffix.lower() == ".json" or not Path(pose).suffix:  # JSON or example name
        keypoints_from_any(pose).require_joints()


def batch_pairs(pairs: Sequence[tuple[str, str]], out_dir: str | os.PathLike,
                root: str | os.PathLike | None = None) -> Path:
    """Check a batch before it runs: every name a plain name inside the data root (with
    ``root``: every source image's real path inside it too, so a symbolic link out of the root
    is refused), and ``out_dir`` a writable folder (not a file)."""
    folder = None
    if root is not None and Path(root).is_dir():
        from cfld.data.layouts import detect_layout

        folder = str(detect_layout(root).files["test"]["dir"])
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(isinstance(n, str) for n in pair)):
            raise ValueError(f"pair {i} must be (source name, target name), got {pair!r}")
        for name in pair:
            relative_name(name, f"pair {i}")
        if folder is not None:
            inside_root(root, pair[0], f"pair {i}: source image", folder=folder)
    return output_dir(out_dir, "output folder")


__all__ = ["batch_pairs", "single_inputs", "single_output"]
