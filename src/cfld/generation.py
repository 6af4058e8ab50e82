"""Generation to image files: one image (optionally with a grid), or every pair of a pairs csv.

Batch mode names each image ``<source stem>___<target stem>.png``
(:func:`cfld.data.formats.generated_name`), the names ``cfld evaluate`` reads; it skips images
already written, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cfld.data.formats import ANNOTATION_TEST, TEST_DIR, generated_name, read_annotations
from cfld.data.images import open_image
from cfld.pose.render import pose_map_to_image
from cfld.visualize import make_grid, save_image_atomic

if TYPE_CHECKING:
    from cfld.pipelines.pipeline_cfld import CFLDPipeline


def generate_one(pipe: CFLDPipeline, source: str | os.PathLike, pose: str | os.PathLike,
                 out: str | os.PathLike, seed: int = 0, grid: bool = False,
                 **pipe_kwargs: Any) -> Path:
    """Generate ``source`` in ``pose`` and write it to ``out`` (a .png/.jpg file, or a folder
    that gets ``<source stem>___<pose stem>.png``).  With ``grid``, also ``<out>_grid.png``
    (source | target pose | generated).  Returns the image path."""
    path = Path(out)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        path = path / f"{generated_name(str(source), str(pose))}.png"
    result = pipe(source, pose, generator=torch.Generator().manual_seed(seed), **pipe_kwargs)
    image = result.images[0]
    save_image_atomic(image, path)
    if grid:
        cells = [[open_image(source), pose_map_to_image(result.pose_maps[0]), image]]
        save_image_atomic(make_grid(cells, cell=(image.height, image.width),
                                    labels=["source", "target pose", "generated"]),
                          path.with_name(path.stem + "_grid.png"))
    return path


def generate_pairs(pipe: CFLDPipeline, root: str | os.PathLike,
                   pairs: Sequence[tuple[str, str]], out_dir: str | os.PathLike,
                   batch_size: int = 4, seed: int = 0, overwrite: bool = False,
                   log: Callable[[str], None] | None = None, progress: bool = True,
                   **pipe_kwargs: Any) -> int:
    """Generate every ``(source, target)`` pair of a DeepFashion-layout root (sources from
    ``test_highres/``, target poses from the test annotations) into ``out_dir``.

    Batch ``k`` (pairs ``start = k·batch_size`` onward) is generated with a generator seeded
    ``seed + start``: reruns are reproducible, and resuming regenerates identical images.

    Returns:
        The number of images written now.

    Raises:
        ValueError: a target has no keypoints in the annotation csv.
    """
    from tqdm import tqdm

    root, out_dir = Path(root), Path(out_dir)
    annotations = read_annotations(root / ANNOTATION_TEST)
    todo = [(s, t) for s, t in pairs
            if overwrite or not (out_dir / f"{generated_name(s, t)}.png").exists()]
    missing = sorted({t for _, t in todo if t not in annotations})
    if missing:
        raise ValueError(f"{len(missing)} target(s) have no keypoints in {ANNOTATION_TEST}, e.g. "
                         f"{missing[0]}; run `cfld data check {root}`")
    if log is not None:
        log(f"{len(pairs)} pairs, {len(pairs) - len(todo)} already generated, {len(todo)} to go "
            f"-> {out_dir}")
    starts = range(0, len(todo), batch_size)
    for start in tqdm(starts, desc="generate", unit="batch", disable=not progress):
        chunk = todo[start:start + batch_size]
        g = torch.Generator().manual_seed(seed + start)
        result = pipe([root / TEST_DIR / s for s, _ in chunk],
                      [annotations[t] for _, t in chunk], generator=g, **pipe_kwargs)
        for (s, t), img in zip(chunk, result.images, strict=True):
            save_image_atomic(img, out_dir / f"{generated_name(s, t)}.png")
    return len(todo)


__all__ = ["generate_one", "generate_pairs"]
