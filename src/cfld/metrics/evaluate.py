"""The DeepFashion evaluation protocol of the CFLD authors, comparable and checked (fidelity §7.5,
§8).

``evaluate_folder(generated_dir, data_root, size)`` scores a folder of generated images against a
DeepFashion-format root (real In-Shop or our procedural people):

1. Pairs come from ``ROOT/fasion-resize-pairs-test.csv``; the generated image of pair
   ``(source, target)`` is ``<source stem>___<target stem>.png`` (``.jpg`` etc. also accepted).
2. Ground truth: ``ROOT/test_highres/<target>`` resized with PIL bicubic + antialias (fidelity
   §5.3).
3. Generated images: resized as the authors do (fidelity §7.5) — torch bicubic with antialias to
   the evaluation size (square 512x512 outputs are squashed to the aspect), then x255, clamp,
   cast to uint8 (truncation), /255.  Images already at the evaluation size are used as they are.
4. Scores (fidelity §8): LPIPS (AlexNet v0.1), SSIM (win 51), SSIM_256 (Gaussian), PSNR — means
   of per-pair values — and two FIDs: ``fid`` (standard TF-Inception features) and ``fid_cfld``
   (the authors' torchvision features; ``None`` when the user has not supplied the weights).  The
   FID reference is every training image (``train_highres``) at the evaluation size, as the
   authors do; its statistics are cached in a file and recomputed only when the images change.
5. On procedural roots (``test_parts/``): silhouette IoU and per-part colour error.

The pairs go through the project's one evaluation loop (:mod:`cfld.metrics.scoring`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from cfld.checkpoint import write_text_atomic
from cfld.checks.files import inside_root
from cfld.data.formats import generated_name
from cfld.data.images import load_image, load_label_map, open_image, to_tensor
from cfld.distributed import Processes
from cfld.metrics.fid import (
    INCEPTION_WEIGHTS_ENV,
    CFLDInceptionFeatures,
    FIDInceptionFeatures,
    FIDStatistics,
    frechet_distance,
    resolve_inception_weights,
)
from cfld.metrics.lpips import LPIPS
from cfld.metrics.plan import OFFICIAL_TEST_PAIRS, PlannedPair, plan_folder
from cfld.metrics.reference import default_cache_dir, reference_stats
from cfld.metrics.scoring import (
    MeasuredBatch,
    PairBatch,
    Scores,
    procedural_metrics,
    protocol_metrics,
    score_sharded,
)
from cfld.metrics.ssim_psnr import PSNR_CAP_DB
from cfld.pipelines.geometry import quantise_generated
from cfld.sizes import parse_size

__all__ = [
    "EVAL_SIZES",
    "OFFICIAL_TEST_PAIRS",
    "evaluate_folder",
    "format_table",
    "generated_name",
    "parse_eval_size",
    "quantise_generated",
]

# The two evaluation sizes of the paper's tables (fidelity §8); our data may use others.
EVAL_SIZES: dict[str, tuple[int, int]] = {"256x176": (256, 176), "512x352": (512, 352)}
FID_REFERENCES = ("train", "test-gt")
#: SSIM's window side: the smallest evaluation size.
SSIM_WINDOW = 51


def parse_eval_size(text: str | Sequence[int]) -> tuple[int, int]:
    """An evaluation size ``"HxW"`` (e.g. ``"256x176"``) or an ``(h, w)`` pair.

    Raises:
        ValueError: malformed text, or a side below 51 pixels (SSIM's window).
    """
    return parse_size(text, min_side=SSIM_WINDOW,
                      why=f"SSIM uses a {SSIM_WINDOW}x{SSIM_WINDOW} window; use e.g. 256x176")


def _check_arguments(size: str | Sequence[int], batch_size: int, fid_reference: str,
                     device: str | torch.device) -> tuple[tuple[int, int], torch.device]:
    """The evaluation size and device, or a ValueError naming the bad argument."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if fid_reference not in FID_REFERENCES:
        raise ValueError(f"fid_reference must be one of {FID_REFERENCES}, got {fid_reference!r}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use --device cpu")
    return parse_eval_size(size), dev


def _extractors(dev: torch.device, inception_weights: str | os.PathLike | None,
                fid_extractor: torch.nn.Module | None, fid_cfld_extractor: torch.nn.Module | None,
                notes: list[str]) -> dict[str, torch.nn.Module]:
    """The FID feature networks.  Missing standard-FID weights fail (they ship with a
    dependency); missing torchvision weights only disable ``fid_cfld`` (users supply them)."""
    extractors: dict[str, torch.nn.Module] = {}
    extractors["fid"] = (fid_extractor if fid_extractor is not None
                         else FIDInceptionFeatures()).to(dev)
    if fid_cfld_extractor is not None:
        extractors["fid_cfld"] = fid_cfld_extractor.to(dev)
        return extractors
    weights = resolve_inception_weights(inception_weights)
    if weights is None:
        notes.append(
            f"fid_cfld is null: torchvision's Inception-v3 weights (inception_v3_google-"
            f"0cc3c7bd.pth) were not given; pass --inception-weights PATH or set "
            f"{INCEPTION_WEIGHTS_ENV} to get the paper-comparable FID"
        )
    else:
        extractors["fid_cfld"] = CFLDInceptionFeatures(weights).to(dev)
    return extractors


def _folder_batch(chunk: list[PlannedPair], size: tuple[int, int], dev: torch.device,
                  parts_dir: Path | None) -> PairBatch:
    """Planned pairs as one batch: generated images quantised as the authors do, ground truth
    resized from the originals, part maps where the root has them."""
    gens, gts, sizes, maps = [], [], [], []
    for p in chunk:
        try:
            g = to_tensor(open_image(p.generated))
        except ValueError as err:  # PIL's decode errors, as DataError
            raise ValueError(f"cannot read generated image {p.generated}: {err}; "
                             "regenerate or remove it") from None
        sizes.append((int(g.shape[1]), int(g.shape[2])))
        gens.append(quantise_generated(g, size)[0])
        gts.append(to_tensor(load_image(p.gt, size)))
        if parts_dir is not None:
            path = inside_root(parts_dir, Path(p.target).stem + ".png", "part map")
            maps.append(load_label_map(path, size) if path.is_file() else None)
    batch = PairBatch(gt=torch.stack(gts).to(dev),
                      predictions={"model": torch.stack(gens).to(dev)},
                      pairs=[(p.source, p.target) for p in chunk],
                      extras={"generated_sizes": sizes})
    if parts_dir is not None:
        h, w = size
        batch.has_parts = torch.tensor([m is not None for m in maps], device=dev)
        batch.parts = torch.stack([m if m is not None else torch.zeros(h, w, dtype=torch.long)
                                   for m in maps]).to(dev)
    return batch


def _probes(extractors: dict[str, torch.nn.Module], with_gt: bool
            ) -> dict[str, Callable[[PairBatch], Any]]:
    """What each batch contributes besides its per-pair scores: FID features of the generated
    images (and, for the test-gt reference, of the ground truth) and the generated sizes."""
    probes: dict[str, Callable[[PairBatch], Any]] = {
        "features": lambda b: {k: e(b.predictions["model"]).cpu() for k, e in extractors.items()},
        "sizes": lambda b: b.extras["generated_sizes"],
    }
    if with_gt:
        probes["gt_features"] = lambda b: {k: e(b.gt).cpu() for k, e in extractors.items()}
    return probes


def _size_lines(size_counts: dict[tuple[int, int], int], size: tuple[int, int]) -> list[str]:
    """One line per class of generated size (fidelity §7.5 resizing)."""
    h, w = size
    lines = []
    for (gh, gw), c in sorted(size_counts.items(), key=lambda kv: -kv[1]):
        if (gh, gw) == (h, w):
            line = f"sizes: {c} generated images at {gh}x{gw} (used as they are)"
        elif gh == gw:
            line = (f"sizes: {c} generated images at {gh}x{gw}, squashed to {h}x{w} with torch "
                    f"bicubic+antialias and uint8 truncation, as the authors do")
        elif abs(gh / gw - h / w) < 0.02:
            line = f"sizes: {c} generated images at {gh}x{gw}, resized to {h}x{w} (same aspect)"
        else:
            line = (f"sizes: WARNING {c} generated images at {gh}x{gw}: neither {h}x{w}, the "
                    f"same aspect, nor square; resized to {h}x{w} anyway — check the generator's "
                    f"output size")
        lines.append(line)
    return lines


def _scores_to_results(scores: Scores, ref: dict[str, FIDStatistics],
                       gen: dict[str, FIDStatistics], has_parts: bool, parts_dir: Path,
                       notes: list[str]) -> dict[str, Any]:
    """The score part of the results, with a note for everything left out or capped."""
    results: dict[str, Any] = {}
    for k in ("fid", "fid_cfld"):
        results[k] = None
        if k not in gen:
            continue
        r, g = ref[k], gen[k]
        if r.n < 2 or g.n < 2:
            notes.append(f"{k} is null: FID needs at least 2 images per set (have {r.n} and {g.n})")
            continue
        results[k] = frechet_distance(r.mu, r.sigma, g.mu, g.sigma)
    results.update(scores.as_dict("model"))
    results["num_pairs"] = scores.num_pairs
    n_nan = scores.count("model", "ssim_256", "nan")
    if n_nan:
        notes.append(f"ssim_256 averaged over {scores.num_pairs - n_nan} pairs: {n_nan} "
                     f"predictions are constant (zero data range, fidelity §12.6) and give NaN")
    n_identical = scores.count("model", "psnr", "capped")
    if n_identical:
        notes.append(f"psnr: {n_identical} pairs are pixel-identical (PSNR +inf); counted as "
                     f"{PSNR_CAP_DB:g} dB in the mean")
    results["psnr_identical_pairs"] = n_identical
    parts = ("silhouette_iou", "silhouette_iou_gt", "part_colour_error")
    scored_parts = has_parts and scores.count("model", "silhouette_iou") > 0
    for key in parts:
        if not scored_parts:
            results.pop(key, None)
    missing = scores.num_pairs - scores.count("model", "silhouette_iou")
    if has_parts and missing:
        notes.append(f"part maps: {missing} targets have no map in {parts_dir}; skipped")
    return results


def evaluate_folder(
    generated_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    size: str | Sequence[int] = (256, 176),
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    inception_weights: str | os.PathLike | None = None,
    fid_stats_cache: str | os.PathLike | None = None,
    fid_reference: str = "train",
    allow_missing: bool = False,
    lpips_weights: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    fid_extractor: torch.nn.Module | None = None,
    fid_cfld_extractor: torch.nn.Module | None = None,
    procs: Processes | None = None,
) -> dict[str, Any]:
    """Score generated images with the authors' DeepFashion protocol (module docstring).

    Args:
        generated_dir: folder of ``<source stem>___<target stem>.png`` images.
        data_root: DeepFashion-format root (``fasion-resize-pairs-test.csv``, ``test_highres/``,
            ``train_highres/``; ``test_parts/`` for procedural roots).
        size: evaluation size ``(H, W)`` or ``"HxW"``: ``256x176`` or ``512x352`` in the paper.
        batch_size: images per batch.
        device: ``"cpu"`` or ``"cuda"``.
        inception_weights: torchvision ``inception_v3_google-0cc3c7bd.pth`` for ``fid_cfld``;
            ``None`` reads ``$CFLD_INCEPTION_WEIGHTS``; when neither is set ``fid_cfld`` is None.
        fid_stats_cache: folder for cached reference statistics; default ``ROOT/.cfld-cache``
            (or ``~/.cache/cfld/fid-stats`` when the root is read-only).
        fid_reference: ``"train"`` (authors: every training image) or ``"test-gt"`` (the
            ground truth of the evaluated pairs, one per pair; the usual choice elsewhere).
        allow_missing: score only the pairs that have a generated image instead of failing.
        lpips_weights: LPIPS weight file; default the copy shipped with cfld.
        out: write the results as JSON here (atomically).
        progress: show progress bars.
        log: receives the check and info lines (e.g. ``print``).
        fid_extractor: replaces the standard FID network (tests).
        fid_cfld_extractor: replaces the torchvision Inception (tests).
        procs: the processes sharing the work (:func:`cfld.distributed.processes`); the
            batches are shared round-robin and gathered in order, so the results equal a
            single-process run's; only the main process logs and writes ``out``.

    Returns:
        ``fid``, ``fid_cfld``, ``lpips``, ``ssim``, ``ssim_256``, ``psnr``, ``num_pairs``, and
        ``silhouette_iou``/``part_colour_error`` on procedural roots, plus counts, check lines
        (``checks``), notes and timings.

    Raises:
        FileNotFoundError: a missing folder, csv, ground-truth image or weight file.
        ValueError: bad arguments, or missing generated images without ``allow_missing``.
    """
    t_start = time.perf_counter()
    procs = procs or Processes()
    log = (log or (lambda _line: None)) if procs.is_main else (lambda _line: None)
    size, dev = _check_arguments(size, batch_size, fid_reference, device)
    root, gen_dir = Path(data_root), Path(generated_dir)
    checks: list[str] = []
    notes: list[str] = []
    plan, counts = plan_folder(gen_dir, root, allow_missing, checks)
    for line in checks:
        log(line)
    extractors = _extractors(dev, inception_weights, fid_extractor, fid_cfld_extractor, notes)
    lpips_net = LPIPS(weights=lpips_weights).to(dev)

    t_ref = time.perf_counter()
    ref_cached = False
    if fid_reference == "train":
        cache_dir = (Path(fid_stats_cache) if fid_stats_cache is not None
                     else default_cache_dir(root))
        if cache_dir.is_file():
            raise ValueError(f"--fid-stats-cache {cache_dir} is a file; give a folder (one "
                             f"statistics file per feature extractor and size is kept there)")
        ref_stats, n_ref, ref_cached = reference_stats(root, size, extractors, cache_dir,
                                                       batch_size, progress, log, procs)
    else:
        ref_stats = {k: FIDStatistics(e.dim) for k, e in extractors.items()}
        n_ref = len(plan)
    t_ref = time.perf_counter() - t_ref

    t_pairs = time.perf_counter()
    parts_dir = root / "test_parts"
    has_parts = parts_dir.is_dir()
    scored = _score_plan(plan, size, batch_size, dev, parts_dir if has_parts else None,
                         lpips_net, extractors, ref_stats if fid_reference == "test-gt" else None,
                         progress, procs)
    t_pairs = time.perf_counter() - t_pairs
    results = None
    if scored is not None:  # the main process
        scores, gen_stats, size_counts = scored
        for line in _size_lines(size_counts, size):
            checks.append(line)
            log(line)
        results = _scores_to_results(scores, ref_stats, gen_stats, has_parts, parts_dir, notes)
        n = scores.num_pairs
        results.update(
            size=list(size),
            fid_reference=fid_reference,
            fid_reference_images=n_ref,
            fid_reference_cached=ref_cached,
            pairs_in_csv=counts["pairs_in_csv"],
            missing_generated=counts["missing"],
            extra_generated=counts["extra"],
            generated_sizes={f"{a}x{b}": c for (a, b), c in size_counts.items()},
            psnr_cap_db=PSNR_CAP_DB,
            extractors={k: getattr(e, "identity", type(e).__name__)
                        for k, e in extractors.items()},
            checks=checks,
            notes=notes,
            seconds_total=round(time.perf_counter() - t_start, 3),
            seconds_reference=round(t_ref, 3),
            seconds_pairs=round(t_pairs, 3),
            pairs_per_s=round(n / t_pairs, 3) if t_pairs > 0 else None,
            device=str(dev),
            num_processes=procs.world,
        )
        for k, v in list(results.items()):  # JSON has no NaN/inf
            if isinstance(v, float) and not math.isfinite(v):
                results[k] = None
        if out is not None:
            write_text_atomic(Path(out), json.dumps(results, indent=2, allow_nan=False) + "\n")
    return procs.broadcast(results)


def _score_plan(plan: list[PlannedPair], size: tuple[int, int], batch_size: int,
                dev: torch.device, parts_dir: Path | None, lpips_net: torch.nn.Module,
                extractors: dict[str, torch.nn.Module], ref_gt: dict[str, FIDStatistics] | None,
                progress: bool, procs: Processes
                ) -> tuple[Scores, dict[str, FIDStatistics], dict[tuple[int, int], int]] | None:
    """Score the planned pairs, batch ``k`` on process ``k % N``; the main process adds every
    batch in order (scores, FID statistics of the generated images — and of the ground truth
    into ``ref_gt`` — and generated-size counts) and returns them; the others return None."""
    metrics = protocol_metrics(lpips_net) + (procedural_metrics() if parts_dir else [])
    gen_stats = {k: FIDStatistics(e.dim) for k, e in extractors.items()}
    size_counts: dict[tuple[int, int], int] = {}
    bar = tqdm(total=len(plan), desc="evaluate", unit="pair",
               disable=not (progress and procs.is_main), leave=False)

    def add(measured: MeasuredBatch) -> None:
        for k, features in measured.probes["features"].items():
            gen_stats[k].update(features)
        for k, features in measured.probes.get("gt_features", {}).items():
            ref_gt[k].update(features)
        for hw in measured.probes["sizes"]:
            size_counts[hw] = size_counts.get(hw, 0) + 1
        bar.update(measured.num_pairs)

    def make(k: int) -> PairBatch:
        return _folder_batch(plan[k * batch_size:(k + 1) * batch_size], size, dev, parts_dir)

    scores = score_sharded(make, -(-len(plan) // batch_size), metrics, procs,
                           _probes(extractors, ref_gt is not None), add)
    bar.close()
    return None if scores is None else (scores, gen_stats, size_counts)


def format_table(results: dict[str, Any]) -> str:
    """A labelled text table of the main scores (both FIDs, both SSIMs)."""

    def fmt(v: float | None, digits: int = 4) -> str:
        return "null" if v is None else f"{v:.{digits}f}"

    h, w = results.get("size", ["?", "?"])
    rows = [
        ("FID (standard, TF-Inception)", fmt(results.get("fid"), 3)),
        ("FID_cfld (authors', torchvision Inception)", fmt(results.get("fid_cfld"), 3)),
        ("LPIPS (AlexNet v0.1) ↓", fmt(results.get("lpips"))),
        ("SSIM (win 51, uniform: the paper's tables) ↑", fmt(results.get("ssim"))),
        ("SSIM_256 (Gaussian win 11: the authors' 2nd) ↑", fmt(results.get("ssim_256"))),
        ("PSNR (dB) ↑", fmt(results.get("psnr"), 3)),
    ]
    if "silhouette_iou" in results:
        rows.append(("silhouette IoU ↑", fmt(results.get("silhouette_iou"))))
        rows.append(("silhouette IoU of the GT (ceiling)", fmt(results.get("silhouette_iou_gt"))))
        rows.append(("part colour error ↓", fmt(results.get("part_colour_error"))))
    rows.append(("pairs", str(results.get("num_pairs"))))
    width = max(len(r[0]) for r in rows)
    lines = [f"CFLD evaluation at {h}x{w} (FID reference: {results.get('fid_reference')})"]
    lines += [f"  {name:<{width}}  {val}" for name, val in rows]
    return "\n".join(lines)
