"""Held-out procedural pairs: the demo grid and the shipped model's quality figures.

The procedural people of :mod:`cfld.data.synthetic` come with part-label maps, so the model can
be scored here without DeepFashion: SSIM and PSNR against the ground truth, and the silhouette
IoU of the generated person against the true target silhouette — each next to the trivial
"copy the source image" answer.  People are drawn from a seed never used for training, so they
are unseen.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

#: Seed of the held-out people (training uses other seeds; see benchmarks/train_synthetic.py).
HELD_OUT_SEED = 90210


@dataclass
class PairScores:
    """Per-method mean scores over the evaluated pairs."""

    ssim: float
    psnr: float
    silhouette_iou: float

    def as_dict(self) -> dict[str, float]:
        return {"ssim": self.ssim, "psnr": self.psnr, "silhouette_iou": self.silhouette_iou}


@dataclass
class HeldOutResult:
    """Scores of the model and of the copy-the-source baseline, plus grid rows."""

    model: PairScores
    copy_source: PairScores
    num_pairs: int
    rows: list[list[Image.Image]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model.as_dict(), "copy_source": self.copy_source.as_dict(),
                "num_pairs": self.num_pairs}


def make_held_out_root(out_dir: str | Path, num_people: int, size: tuple[int, int] = (128, 88),
                       seed: int = HELD_OUT_SEED, poses: int = 4) -> Path:
    """Write ``num_people`` unseen procedural people (test split), ``poses`` images each."""
    from cfld.data.synthetic import synthesize

    synthesize(out_dir, people=1, poses=poses, size=size, seed=seed, test_people=num_people)
    return Path(out_dir)


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


def _load_parts(path: Path, size: tuple[int, int]) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.resize((size[1], size[0]), Image.NEAREST),
                                           dtype=np.int64))


def evaluation_pairs(root: str | Path, num_pairs: int) -> list[tuple[str, str]]:
    """The first-``num_pairs`` selection of :func:`score_pairs`: evenly spaced over the test csv,
    so that every person contributes (pairs are grouped by person)."""
    from cfld.data import PAIRS_TEST, read_pairs

    all_pairs = read_pairs(Path(root) / PAIRS_TEST)
    if len(all_pairs) < num_pairs:
        raise ValueError(f"{root} has only {len(all_pairs)} test pairs, {num_pairs} requested")
    idx = np.linspace(0, len(all_pairs) - 1, num_pairs).round().astype(int)
    return [all_pairs[i] for i in idx]


def score_pairs(pipe: Any, root: str | Path, num_pairs: int, num_inference_steps: int = 20,
                seed: int = 0, batch_size: int = 8, grid_rows: int = 0,
                progress: bool = False, **pipe_kwargs: Any) -> HeldOutResult:
    """Generate the first ``num_pairs`` test pairs of ``root`` and score model and baseline.

    Images are compared at the pipeline's default output size (the evaluation size), ground
    truth resized from the originals with bicubic (facts §5.3), generated images resized and
    quantised as the authors do (facts §7.5).
    """
    from cfld.data import ANNOTATION_TEST, TEST_DIR, load_image, read_annotations
    from cfld.metrics import psnr, silhouette_iou, ssim
    from cfld.pose import render_skeleton_image

    root = Path(root)
    pairs = evaluation_pairs(root, num_pairs)
    annotations = read_annotations(root / ANNOTATION_TEST)
    size = tuple(pipe.default_output_size)
    parts_dir = root / "test_parts"
    sums = {k: {"ssim": 0.0, "psnr": 0.0, "silhouette_iou": 0.0} for k in ("model", "copy")}
    rows: list[list[Image.Image]] = []
    iterator = range(0, len(pairs), batch_size)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="held-out pairs", unit="batch")
    for start in iterator:
        chunk = pairs[start:start + batch_size]
        sources = [load_image(root / TEST_DIR / s) for s, _ in chunk]
        g = torch.Generator().manual_seed(seed + start)
        out = pipe(sources, [annotations[t] for _, t in chunk], generator=g,
                   num_inference_steps=num_inference_steps, output_type="pil", **pipe_kwargs)
        generated = torch.stack([_to_tensor(im) for im in out.images])
        gt = torch.stack([_to_tensor(load_image(root / TEST_DIR / t, size)) for _, t in chunk])
        copy = torch.stack([_to_tensor(load_image(root / TEST_DIR / s, size)) for s, _ in chunk])
        parts = torch.stack([_load_parts(parts_dir / (Path(t).stem + ".png"), size)
                             for _, t in chunk])
        for key, pred in (("model", generated), ("copy", copy)):
            sums[key]["ssim"] += ssim(pred, gt).sum().item()
            sums[key]["psnr"] += psnr(pred, gt).sum().item()
            sums[key]["silhouette_iou"] += silhouette_iou(pred, parts).sum().item()
        for i, (s, t) in enumerate(chunk):
            if len(rows) < grid_rows:
                rows.append([sources[i].resize((size[1], size[0]), Image.BICUBIC),
                             render_skeleton_image(annotations[t], size), out.images[i],
                             load_image(root / TEST_DIR / t, size)])
    n = len(pairs)
    model = PairScores(**{k: v / n for k, v in sums["model"].items()})
    copy = PairScores(**{k: v / n for k, v in sums["copy"].items()})
    return HeldOutResult(model, copy, n, rows)


def run_demo(out_dir: str | Path = "demo", num_pairs: int = 6, num_inference_steps: int | None = None,
             scheduler: str | None = None, seed: int = 0, model: str | None = None,
             source: str | None = None, pose: str | None = None) -> dict[str, Any]:
    """The `cfld demo`: shipped model on unseen procedural people → grid.png + metrics.json."""
    import json

    from cfld.checkpoint import write_text_atomic
    from cfld.shipped import DEMO_SETTINGS, load_pipeline
    from cfld.visualize import make_grid, save_image_atomic

    out_dir = Path(out_dir)
    pipe = load_pipeline(model, scheduler=scheduler or DEMO_SETTINGS["scheduler"])
    pipe.set_progress_bar_config(disable=True)
    steps = num_inference_steps or DEMO_SETTINGS["steps"]
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
    metrics["settings"] = {"scheduler": scheduler or DEMO_SETTINGS["scheduler"], "steps": steps,
                           "seed": seed, "image_size": list(pipe.default_output_size)}
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
