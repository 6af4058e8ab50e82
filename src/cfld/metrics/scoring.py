"""The one evaluation loop: per-pair metrics over batches of images, means over the pairs.

Every report of the project scores pairs the same way:

* ``cfld evaluate`` (:func:`cfld.metrics.evaluate.evaluate_folder`) reads a folder of generated
  images;
* the demo, the tests and the shipped-model benchmark (:func:`cfld.demo.score_pairs`) generate
  held-out procedural pairs with a pipeline and also score the copy-the-source baseline.

Both turn their pairs into :class:`PairBatch` values (ground truth, one image batch per
*method*, optional part maps) and hand them to :func:`score_batches` with a list of
:class:`PairMetric`.  The loop calls every metric on every method's images and keeps running
means (:class:`Scores`); ``hooks`` see each batch too (FID statistics, grid rows, size counts).

With several processes (``torchrun``, :mod:`cfld.distributed`), :func:`score_sharded` measures
batch ``k`` on process ``k % N`` (:func:`measure_batch`: the per-pair values, and whatever the
caller's *probes* compute, e.g. FID features) and the main process adds the measurements in
batch order — the order of a single-process run, so the means and statistics are the same.

Extending it: a new per-pair score is one more :class:`PairMetric` (a function
``(pred, batch) -> (B,)`` values, NaN where a pair cannot be scored); a new control — another
way of making images for the same pairs, e.g. a swapped source — is one more entry of
:attr:`PairBatch.predictions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from cfld.distributed import Processes, map_ordered
from cfld.metrics.parts import DEFAULT_ERODE, part_colour_error, silhouette_iou
from cfld.metrics.ssim_psnr import PSNR_CAP_DB, psnr, ssim, ssim_256

__all__ = [
    "PART_COLOUR_ERROR",
    "PSNR",
    "MeasuredBatch",
    "SILHOUETTE_IOU",
    "SILHOUETTE_IOU_GT",
    "SSIM",
    "SSIM_256",
    "PairBatch",
    "PairMetric",
    "Scores",
    "lpips_metric",
    "measure_batch",
    "part_metric",
    "protocol_metrics",
    "procedural_metrics",
    "report_erosion",
    "score_batches",
    "score_sharded",
]


@dataclass
class PairBatch:
    """One batch of scored pairs; every image is (B, 3, H, W) in [0, 1] at the evaluation size.

    Attributes:
        gt: The ground-truth targets.
        predictions: Method name → its images for these pairs (e.g. ``"model"``,
            ``"copy_source"``).
        parts: (B, H, W) int64 part labels of the targets, or None.
        has_parts: (B,) bool: which pairs have a part map (None: all of them when ``parts`` is
            given).
        pairs: The ``(source, target)`` names.
        extras: Anything a hook needs (e.g. the PIL images of a grid).
    """

    gt: Tensor
    predictions: dict[str, Tensor]
    parts: Tensor | None = None
    has_parts: Tensor | None = None
    pairs: list[tuple[str, str]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.gt.shape[0])


@dataclass(frozen=True)
class PairMetric:
    """A per-pair score.

    Attributes:
        name: Key of the score in the results.
        fn: ``(pred, batch) -> (B,)`` values; NaN marks a pair that cannot be scored (it is
            left out of the mean and counted).
        cap: ``+inf`` values are replaced by this value in the mean (and counted), e.g. the PSNR
            of identical images.
    """

    name: str
    fn: Callable[[Tensor, PairBatch], Tensor]
    cap: float | None = None


@dataclass
class _Running:
    total: float = 0.0
    count: int = 0  # pairs in the mean
    nan: int = 0  # pairs left out (NaN)
    capped: int = 0  # +inf values replaced by the cap


class Scores:
    """Running means per (method, metric), with the counts behind them."""

    def __init__(self) -> None:
        self._runs: dict[str, dict[str, _Running]] = {}
        self.num_pairs = 0

    def add(self, method: str, metric: PairMetric, values: Tensor) -> None:
        """Add one batch of a metric's per-pair values."""
        run = self._runs.setdefault(method, {}).setdefault(metric.name, _Running())
        v = values.detach()
        if metric.cap is not None:
            inf = torch.isposinf(v)
            run.capped += int(inf.sum())
            v = v.clamp(max=metric.cap)
        finite = torch.isfinite(v)
        run.nan += int((~finite).sum())
        run.count += int(finite.sum())
        run.total += float(torch.where(finite, v, torch.zeros_like(v)).sum())

    def add_measured(self, measured: MeasuredBatch, metrics: Sequence[PairMetric]) -> None:
        """Add one measured batch (every method, every metric, in that order)."""
        for method, values in measured.values.items():
            for metric in metrics:
                self.add(method, metric, values[metric.name])
        self.num_pairs += measured.num_pairs

    def mean(self, method: str, metric: str) -> float | None:
        """The mean over the scored pairs (None when no pair was scored)."""
        run = self._runs.get(method, {}).get(metric)
        if run is None or run.count == 0:
            return None
        value = run.total / run.count
        return value if math.isfinite(value) else None

    def count(self, method: str, metric: str, kind: str = "count") -> int:
        """``count`` (pairs in the mean), ``nan`` (left out) or ``capped`` of a score."""
        run = self._runs.get(method, {}).get(metric)
        return 0 if run is None else int(getattr(run, kind))

    def methods(self) -> list[str]:
        """Method names in the order they were first seen."""
        return list(self._runs)

    def as_dict(self, method: str) -> dict[str, float | None]:
        """``{metric: mean}`` of one method, in the order the metrics were given."""
        return {name: self.mean(method, name) for name in self._runs.get(method, {})}


def score_batches(batches: Iterable[PairBatch], metrics: Sequence[PairMetric],
                  hooks: Sequence[Callable[[PairBatch], None]] = ()) -> Scores:
    """Run every metric on every method of every batch (the evaluation loop).

    Args:
        batches: The pairs, batch by batch (any iterable, e.g. a generator that samples).
        metrics: The per-pair scores.
        hooks: Called with every batch after it is scored.

    Returns:
        The running means.
    """
    scores = Scores()
    with torch.no_grad():
        for batch in batches:
            scores.add_measured(measure_batch(batch, metrics), metrics)
            for hook in hooks:
                hook(batch)
    return scores


@dataclass
class MeasuredBatch:
    """What one batch contributes, detached and on the CPU (it may travel between processes).

    Attributes:
        num_pairs: Pairs in the batch.
        values: Method → metric name → (B,) per-pair values.
        probes: Probe name → what the probe returned (e.g. FID features).
    """

    num_pairs: int
    values: dict[str, dict[str, Tensor]]
    probes: dict[str, Any] = field(default_factory=dict)


def measure_batch(batch: PairBatch, metrics: Sequence[PairMetric],
                  probes: Mapping[str, Callable[[PairBatch], Any]] | None = None
                  ) -> MeasuredBatch:
    """Every metric on every method of one batch, and every probe."""
    with torch.no_grad():
        values = {method: {m.name: m.fn(pred, batch).detach().cpu() for m in metrics}
                  for method, pred in batch.predictions.items()}
        found = {name: probe(batch) for name, probe in (probes or {}).items()}
    return MeasuredBatch(len(batch), values, found)


def score_sharded(make_batch: Callable[[int], PairBatch], num_batches: int,
                  metrics: Sequence[PairMetric], procs: Processes,
                  probes: Mapping[str, Callable[[PairBatch], Any]] | None = None,
                  on_batch: Callable[[MeasuredBatch], None] | None = None) -> Scores | None:
    """The evaluation loop over several processes: batch ``k`` (``make_batch(k)``) is measured
    by process ``k % world``; the main process adds the measurements in batch order and passes
    each to ``on_batch`` (e.g. to update FID statistics with its probes' features).

    Returns:
        The scores on the main process, None on the others.
    """
    scores = Scores()
    measure = lambda k: measure_batch(make_batch(k), metrics, probes)  # noqa: E731
    for measured in map_ordered(measure, num_batches, procs):
        scores.add_measured(measured, metrics)
        if on_batch is not None:
            on_batch(measured)
    return scores if procs.is_main else None


# ----------------------------------------------------------------------------- the metrics
def lpips_metric(net: nn.Module) -> PairMetric:
    """LPIPS (AlexNet v0.1) against the ground truth, summed in float64 (fidelity §8)."""
    return PairMetric("lpips", lambda pred, b: net(pred, b.gt).double())


def part_metric(name: str, fn: Callable[[Tensor, PairBatch, Tensor], Tensor]) -> PairMetric:
    """A score that needs the targets' part maps: ``fn(pred, batch, parts)`` on the pairs that
    have one; the others (and batches without maps) get NaN."""

    def scored(pred: Tensor, batch: PairBatch) -> Tensor:
        nan = torch.full((len(batch),), float("nan"), dtype=torch.float64)
        if batch.parts is None:
            return nan
        if batch.has_parts is None or bool(batch.has_parts.all()):
            return fn(pred, batch, batch.parts)
        idx = batch.has_parts.nonzero().flatten()
        if idx.numel() == 0:
            return nan
        sub = PairBatch(gt=batch.gt[idx], predictions={}, parts=batch.parts[idx])
        values = fn(pred[idx], sub, batch.parts[idx])
        out = torch.full((len(batch),), float("nan"), dtype=values.dtype, device=values.device)
        out[idx.to(values.device)] = values
        return out

    return PairMetric(name, scored)


#: SSIM with the authors' uniform 51×51 window (their main SSIM, fidelity §8).
SSIM = PairMetric("ssim", lambda pred, b: ssim(pred, b.gt))
#: SSIM_256: Gaussian window, data range from the prediction (NaN for a flat prediction).
SSIM_256 = PairMetric("ssim_256", lambda pred, b: ssim_256(pred, b.gt))
#: PSNR in dB; identical pairs (+inf) count as :data:`PSNR_CAP_DB` in the mean.
PSNR = PairMetric("psnr", lambda pred, b: psnr(pred, b.gt), cap=PSNR_CAP_DB)
#: IoU of the generated person's silhouette with the target's (procedural people).
SILHOUETTE_IOU = part_metric("silhouette_iou",
                             lambda pred, b, parts: silhouette_iou(pred, parts))
#: The same IoU measured on the ground truth: the ceiling of the background-based silhouette.
SILHOUETTE_IOU_GT = part_metric("silhouette_iou_gt",
                                lambda pred, b, parts: silhouette_iou(b.gt, parts))
def report_erosion(height: int) -> int:
    """Part-mask erosion of our reports: :data:`DEFAULT_ERODE` pixels at 128 rows, scaled with
    the evaluation height (at least 1)."""
    return max(1, round(DEFAULT_ERODE * height / 128))


#: Mean colour error per body part against the ground truth (procedural people), with every
#: part mask eroded by :func:`report_erosion` pixels so that a 1–2 pixel misregistration of a
#: boundary does not dominate the part's mean colour.
PART_COLOUR_ERROR = part_metric(
    "part_colour_error",
    lambda pred, b, parts: part_colour_error(pred, b.gt, parts,
                                             erode=report_erosion(pred.shape[-2])))


def protocol_metrics(lpips_net: nn.Module | None = None) -> list[PairMetric]:
    """The authors' per-pair scores (fidelity §8): LPIPS (given its network), SSIM, SSIM_256
    and PSNR."""
    return ([lpips_metric(lpips_net)] if lpips_net is not None else []) + [SSIM, SSIM_256, PSNR]


def procedural_metrics() -> list[PairMetric]:
    """Scores that need the procedural people's part maps (design §5)."""
    return [SILHOUETTE_IOU, SILHOUETTE_IOU_GT, PART_COLOUR_ERROR]
