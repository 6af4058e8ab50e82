"""Generation to image files: one image (optionally with a grid), or every pair of a pairs csv.

Batch mode names each image ``<source stem>___<target stem>.png``
(:func:`cfld.data.formats.generated_name`), the names ``cfld evaluate`` reads; it skips images
already written, so an interrupted run resumes where it stopped, and shares the pairs between
the processes of a ``torchrun`` / ``accelerate launch`` run (:mod:`cfld.distributed`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from cfld.data.formats import generated_name, read_annotations
from cfld.data.images import open_image
from cfld.data.layouts import detect_layout
from cfld.distributed import Processes
from cfld.pose.render import pose_map_to_image
from cfld.seeding import seeded_generator
from cfld.visualize import make_grid, save_image_atomic

if TYPE_CHECKING:
    from cfld.pipelines.pipeline_cfld import CFLDPipeline


def generate_one(pipe: CFLDPipeline, source: str | os.PathLike, pose: str | os.PathLike,
                 out: str | os.PathLike, seed: int = 0, grid: bool = False,
                 overwrite: bool = False, **pipe_kwargs: Any) -> Path:
    """Generate ``source`` in ``pose`` and write it to ``out`` (a .png/.jpg/.webp file, or a
    folder, given without an extension, that gets ``<source stem>___<pose stem>.png``).  With
    ``grid``, also ``<out>_grid.png`` (source | target pose | generated).  The output is
    checked before generating (:func:`cfld.checks.generation.single_output`); an existing file
    is replaced only with ``overwrite``.  Returns the image path."""
    from cfld.checks.generation import single_output
    from cfld.checks.numbers import SEED
    from cfld.checks.sampling import check_call_kwargs

    check_call_kwargs(pipe_kwargs.get("num_inference_steps", 50), pipe_kwargs)
    SEED.check(seed)
    path = single_output(out, source, pose, overwrite, grid)
    result = pipe(source, pose, generator=torch.Generator().manual_seed(seed), **pipe_kwargs)
    image = result.images[0]
    save_image_atomic(image, path)
    if grid:
        cells = [[open_image(source), pose_map_to_image(result.pose_maps[0]), image]]
        save_image_atomic(make_grid(cells, cell=(image.height, image.width),
                                    labels=["source", "target pose", "generated"]),
                          path.with_name(path.stem + "_grid.png"))
    return path


@dataclass
class GenerationSummary:
    """What a batch run did (the same on every process).

    Attributes:
        pairs: Distinct pairs asked for.
        done: Names (``<source stem>___<target stem>``) of the images written now.
        skipped: Pairs whose image was already there (a resumed run).
        failed: Name → reason of the pairs that could not be generated.
        per_process: Images written by each process, in rank order.
        seconds: Wall time of the generation loop.
    """

    pairs: int
    done: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    per_process: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        """One line: done, skipped and failed counts, and the work of each process."""
        shares = " + ".join(str(n) for n in self.per_process)
        return (f"{len(self.done)} generated, {self.skipped} skipped (already there), "
                f"{len(self.failed)} failed; {len(self.per_process)} process(es) wrote {shares} "
                f"in {self.seconds:.2f} s")


def pair_generator(seed: int, source: str, target: str) -> torch.Generator:
    """The generator of one pair's noise: seeded from (seed, source name, target name) only."""
    return seeded_generator(seed, source, target)


def _plan_pairs(root: Path, pairs: Sequence[tuple[str, str]], annotations: dict[str, Any],
                out_dir: Path, overwrite: bool
                ) -> tuple[list[tuple[str, str]], int, dict[str, str]]:
    """(pairs still to do, pairs already done, failures found before generating); removes the
    temporary files of a killed run."""
    for stale in out_dir.glob(".*___*.png.*"):
        stale.unlink(missing_ok=True)
    todo, skipped, failed = [], 0, {}
    layout = detect_layout(root)  # DeepFashion or Market-1501 names
    test_dir, csv = layout.image_dir(root, "test"), layout.files["test"]["annotations"]
    for s, t in pairs:
        name = generated_name(s, t)
        if not overwrite and (out_dir / f"{name}.png").exists():
            skipped += 1
        elif t not in annotations:
            failed[name] = f"target {t} has no keypoints in {csv}"
        elif not (test_dir / s).is_file():
            failed[name] = f"source image {test_dir.name}/{s} not found"
        else:
            todo.append((s, t))
    return todo, skipped, failed


def generate_pairs(pipe: CFLDPipeline, root: str | os.PathLike,
                   pairs: Sequence[tuple[str, str]], out_dir: str | os.PathLike,
                   batch_size: int = 4, seed: int = 0, overwrite: bool = False,
                   log: Callable[[str], None] | None = None, progress: bool = True,
                   procs: Processes | None = None, batch_invariant: bool = True,
                   **pipe_kwargs: Any) -> GenerationSummary:
    """Generate every ``(source, target)`` pair of a DeepFashion-layout root (sources from
    ``test_highres/``, target poses from the test annotations) into ``out_dir``.

    Each pair's noise comes from :func:`pair_generator` (``seed`` and the two names).  The
    pairs are taken ``batch_size`` at a time; with several processes
    (:func:`cfld.distributed.processes`) those batches are shared round-robin, and each image
    is written once, atomically.

    How a batch is computed (``batch_invariant``): matrix products and convolutions on CPU (and
    GPU) may round a row differently depending on how many rows the call has, so an image
    computed beside three others can differ by one level in a few pixel values from the same
    image computed alone.  With ``batch_invariant`` (the default), every image goes through the
    pipeline on its own, a micro-batch of fixed shape (one image; its guidance branches still
    batched in one UNet call), so its computation never depends on which pairs share its batch:
    the PNGs are the same for any ``batch_size``, process count, ``--limit`` or resume point.
    Without it, a batch runs as one pipeline call of ``batch_size`` rows (a short last batch
    padded with copies of its last pair, whose results are dropped): the same for any process
    count, ``--limit`` or resume point at a fixed ``batch_size``, but another ``batch_size``
    can move a few pixel values.  Neither mode makes images independent of the torch thread
    count (README "Scaling out").

    Returns:
        The summary (on every process); failures are reported there, not raised.
    """
    from tqdm import tqdm

    from cfld.checks.generation import batch_pairs
    from cfld.checks.numbers import BATCH_SIZE, SEED
    from cfld.checks.sampling import check_call_kwargs

    pairs = list(pairs)
    BATCH_SIZE.check(batch_size, "batch_size")
    SEED.check(seed)
    check_call_kwargs(pipe_kwargs.get("num_inference_steps", 50), pipe_kwargs)
    batch_pairs(pairs, out_dir, root)  # plain names inside the root, a writable output folder

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    procs = procs or Processes()
    root, out_dir = Path(root), Path(out_dir)
    pairs = list(dict.fromkeys((s, t) for s, t in pairs))
    layout = detect_layout(root)
    annotations = read_annotations(layout.path(root, "test", "annotations"), layout.frame)
    plan = None
    if procs.is_main:  # one view of what is done, taken before any process writes
        out_dir.mkdir(parents=True, exist_ok=True)
        plan = _plan_pairs(root, pairs, annotations, out_dir, overwrite)
    todo, skipped, failed = procs.broadcast(plan)
    if log is not None and procs.is_main:
        log(f"{len(pairs)} pairs, {skipped} already generated, {len(pairs) - skipped} to go "
            f"-> {out_dir} ({procs.world} process(es))")
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    mine = batches[procs.rank::procs.world]
    done, my_failed = [], {}
    started = time.perf_counter()
    bar = tqdm(mine, desc="generate", unit="batch", disable=not (progress and procs.is_main))
    # The rows of one pipeline call: one image, or the batch padded to batch_size rows.
    calls = ((lambda b: [[p] for p in b]) if batch_invariant
             else (lambda b: [b + b[-1:] * (batch_size - len(b))]))
    for batch in bar:
        for rows in calls(batch):
            names = [generated_name(s, t) for s, t in rows[:len(batch)]]
            try:
                result = pipe([layout.image_dir(root, "test") / s for s, _ in rows],
                              [annotations[t] for _, t in rows],
                              generator=[pair_generator(seed, s, t) for s, t in rows],
                              **pipe_kwargs)
            except (ValueError, OSError, RuntimeError) as err:
                my_failed.update((n, f"{type(err).__name__}: {err}") for n in names)
                continue
            for name, img in zip(names, result.images, strict=False):
                save_image_atomic(img, out_dir / f"{name}.png")
                done.append(name)
    shares = procs.gather((done, my_failed))
    summary = GenerationSummary(pairs=len(pairs), skipped=skipped, failed=dict(failed),
                                seconds=time.perf_counter() - started)
    for d, f in shares:
        summary.done += d
        summary.failed.update(f)
        summary.per_process.append(len(d))
    return summary


__all__ = ["GenerationSummary", "generate_one", "generate_pairs", "pair_generator"]
