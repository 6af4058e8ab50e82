"""Held-out procedural pairs: the demo grid and the shipped model's quality figures.

The procedural people of :mod:`cfld.data.synthetic` come with part-label maps, so the model can
be scored here without DeepFashion: SSIM and PSNR against the ground truth, and the silhouette
IoU of the generated person against the true target silhouette — each next to the trivial
"copy the source image" answer.  People are drawn from a seed never used for training, so they
are unseen.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from cfld.data.formats import ANNOTATION_TEST, PAIRS_TEST, TEST_DIR, read_annotations, read_pairs
from cfld.data.images import load_image, load_label_map, to_tensor
from cfld.data.synthetic import PARTS_DIRS
from cfld.metrics.appearance import swapped_sources
from cfld.metrics.scoring import (
    PART_COLOUR_ERROR,
    PSNR,
    SILHOUETTE_IOU,
    SSIM,
    PairBatch,
    PairMetric,
    score_batches,
)
from cfld.pose.render import render_skeleton_image

if TYPE_CHECKING:
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

#: Seed of the held-out people (training uses other seeds; see benchmarks/train_synthetic.py).
HELD_OUT_SEED = 90210


class PairScores:
    """Mean scores of one method over the evaluated pairs (``scores.ssim``, ``scores["psnr"]``)."""

    def __init__(self, values: dict[str, float | None]) -> None:
        self.values = dict(values)

    def __getattr__(self, name: str) -> float | None:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> float | None:
        return self.values[name]

    def as_dict(self) -> dict[str, float | None]:
        return dict(self.values)


@dataclass
class HeldOutResult:
    """Scores of the model and of the controls (copy-the-source, ...), plus grid rows."""

    methods: dict[str, PairScores]
    num_pairs: int
    rows: list[list[Image.Image]] = field(default_factory=list)

    @property
    def model(self) -> PairScores:
        return self.methods["model"]

    @property
    def copy_source(self) -> PairScores:
        return self.methods["copy_source"]

    @property
    def swapped_source(self) -> PairScores | None:
        """The swapped-source control (None when it was not generated)."""
        return self.methods.get("swapped_source")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: scores.as_dict() for name, scores in self.methods.items()}
        out["num_pairs"] = self.num_pairs
        return out


#: What :func:`score_pairs` reports for every method (append to score more).
HELD_OUT_METRICS: list[PairMetric] = [SSIM, PSNR, SILHOUETTE_IOU, PART_COLOUR_ERROR]


def make_held_out_root(out_dir: str | Path, num_people: int, size: tuple[int, int] = (128, 88),
                       seed: int = HELD_OUT_SEED, poses: int = 4) -> Path:
    """Write ``num_people`` unseen procedural people (test split), ``poses`` images each."""
    from cfld.data.synthetic_root import synthesize

    synthesize(out_dir, people=1, poses=poses, size=size, seed=seed, test_people=num_people)
    return Path(out_dir)


def evaluation_pairs(root: str | Path, num_pairs: int) -> list[tuple[str, str]]:
    """The first-``num_pairs`` selection of :func:`score_pairs`: evenly spaced over the test csv,
    so that every person contributes (pairs are grouped by person)."""
    all_pairs = read_pairs(Path(root) / PAIRS_TEST)
    if len(all_pairs) < num_pairs:
        raise ValueError(f"{root} has only {len(all_pairs)} test pairs, {num_pairs} requested")
    idx = np.linspace(0, len(all_pairs) - 1, num_pairs).round().astype(int)
    return [all_pairs[i] for i in idx]


def held_out_batches(pipe: CFLDPipeline, root: str | Path, pairs: Sequence[tuple[str, str]],
                     num_inference_steps: int = 20, seed: int = 0, batch_size: int = 8,
                     swapped_source: bool = True, **pipe_kwargs: Any) -> Iterator[PairBatch]:
    """Generate ``pairs`` of a procedural root batch by batch, as :class:`PairBatch` values with
    the methods ``model``, ``copy_source`` (the source image as the answer) and, with
    ``swapped_source``, ``swapped_source``: the same target poses and the same initial and step
    noise, generated from ANOTHER person's source (:func:`cfld.metrics.appearance.swapped_sources`).
    A model that carries the source's appearance scores far worse on that control; one that only
    draws "a person in this pose" scores the same.

    Each batch's generator is seeded with ``seed + start`` (the batch's first pair index), so
    results do not depend on what else is generated.  ``extras`` carries the PIL images
    (``sources``, ``generated``) and the target keypoints for grids.
    """
    root = Path(root)
    annotations = read_annotations(root / ANNOTATION_TEST)
    size = tuple(pipe.default_output_size)
    parts_dir = root / PARTS_DIRS["test"]
    others = swapped_sources(pairs) if swapped_source else None
    for start in range(0, len(pairs), batch_size):
        chunk = list(pairs[start:start + batch_size])
        sources = [load_image(root / TEST_DIR / s) for s, _ in chunk]
        poses = [annotations[t] for _, t in chunk]
        out = pipe(sources, poses, generator=torch.Generator().manual_seed(seed + start),
                   num_inference_steps=num_inference_steps, output_type="pil", **pipe_kwargs)
        predictions = {"model": torch.stack([to_tensor(im) for im in out.images])}
        predictions["copy_source"] = torch.stack(
            [to_tensor(load_image(root / TEST_DIR / s, size)) for s, _ in chunk])
        if others is not None:
            swapped = [load_image(root / TEST_DIR / o) for o in others[start:start + batch_size]]
            alt = pipe(swapped, poses, generator=torch.Generator().manual_seed(seed + start),
                       num_inference_steps=num_inference_steps, output_type="pil", **pipe_kwargs)
            predictions["swapped_source"] = torch.stack([to_tensor(im) for im in alt.images])
        gt = torch.stack([to_tensor(load_image(root / TEST_DIR / t, size)) for _, t in chunk])
        parts = torch.stack([load_label_map(parts_dir / (Path(t).stem + ".png"), size)
                             for _, t in chunk])
        yield PairBatch(gt=gt, predictions=predictions, parts=parts, pairs=chunk,
                        extras={"sources": sources, "generated": out.images, "poses": poses})


def score_pairs(pipe: CFLDPipeline, root: str | Path, num_pairs: int,
                num_inference_steps: int = 20, seed: int = 0, batch_size: int = 8,
                grid_rows: int = 0, progress: bool = False,
                metrics: Sequence[PairMetric] | None = None, swapped_source: bool = True,
                **pipe_kwargs: Any) -> HeldOutResult:
    """Generate the first ``num_pairs`` test pairs of ``root`` and score model and baseline.

    Images are compared at the pipeline's default output size (the evaluation size), ground
    truth resized from the originals with bicubic (fidelity §5.3), generated images resized and
    quantised as the authors do (fidelity §7.5), through the project's one evaluation loop
    (:func:`cfld.metrics.scoring.score_batches`) with ``metrics`` (default
    :data:`HELD_OUT_METRICS`).
    """
    root = Path(root)
    pairs = evaluation_pairs(root, num_pairs)
    size = tuple(pipe.default_output_size)
    rows: list[list[Image.Image]] = []

    def collect_rows(batch: PairBatch) -> None:
        for i in range(len(batch)):
            if len(rows) < grid_rows:
                _, t = batch.pairs[i]
                rows.append([batch.extras["sources"][i].resize((size[1], size[0]), Image.BICUBIC),
                             render_skeleton_image(batch.extras["poses"][i], size),
                             batch.extras["generated"][i], load_image(root / TEST_DIR / t, size)])

    batches: Iterable[PairBatch] = held_out_batches(pipe, root, pairs, num_inference_steps, seed,
                                                    batch_size, swapped_source, **pipe_kwargs)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="held-out pairs", unit="batch",
                       total=-(-len(pairs) // batch_size))
    scores = score_batches(batches, metrics or HELD_OUT_METRICS, hooks=[collect_rows])
    methods = {name: PairScores(scores.as_dict(name)) for name in scores.methods()}
    return HeldOutResult(methods, scores.num_pairs, rows)


def run_demo(out_dir: str | Path = "demo", num_pairs: int = 6,
             num_inference_steps: int | None = None,
             scheduler: str | None = None, seed: int = 0, model: str | None = None,
             source: str | None = None, pose: str | None = None) -> dict[str, Any]:
    """The `cfld demo`: shipped model on unseen procedural people → grid.png + metrics.json."""
    import json

    from cfld.checkpoint import write_text_atomic
    from cfld.pipelines.distilled import resolve_sampling
    from cfld.shipped import DEMO_SETTINGS, load_pipeline
    from cfld.visualize import make_grid, save_image_atomic

    out_dir = Path(out_dir)
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    # The demo's setting for an ordinary model; a distilled folder's own (e.g. LCM, 4 steps).
    sampling = resolve_sampling(pipe, scheduler, num_inference_steps, fallback=DEMO_SETTINGS)
    sampling.apply(pipe)
    steps = sampling.num_inference_steps
    with tempfile.TemporaryDirectory() as tmp:
        root = make_held_out_root(Path(tmp) / "held_out", num_pairs)  # one pair per person
        result = score_pairs(pipe, root, num_pairs, steps, seed, batch_size=num_pairs,
                             grid_rows=num_pairs)
    rows = result.rows
    if source is not None or pose is not None:
        if source is None or pose is None:
            raise ValueError("give both --source and --pose to add your own pair to the demo")
        from cfld.pipelines.inputs import open_image
        from cfld.pose import pose_map_to_image

        out = pipe(source, pose, num_inference_steps=steps,
                   generator=torch.Generator().manual_seed(seed))
        img = out.images[0]
        blank = Image.new("RGB", img.size, (255, 255, 255))
        rows.append([open_image(source).resize(img.size, Image.BICUBIC),
                     pose_map_to_image(out.pose_maps[0]).resize(img.size), img, blank])
    scale = 2 if rows[0][0].height < 200 else 1  # small images: enlarge for viewing
    h, w = rows[0][0].height * scale, rows[0][0].width * scale
    grid = make_grid(rows, cell=(h, w), labels=["source", "target pose", "generated",
                                                "ground truth"])
    save_image_atomic(grid, out_dir / "grid.png")
    metrics = result.as_dict()
    metrics["settings"] = {"scheduler": sampling.scheduler_label, "steps": steps,
                           "seed": seed, "image_size": list(pipe.default_output_size)}
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
