"""Evaluation metrics of the CFLD protocol (fidelity §8), plain torch, offline.

Example::

    from cfld.metrics import LPIPS, ssim, psnr
    d = LPIPS()(img0, img1)        # (B,3,H,W) in [0,1] -> (B,) distances

Names are imported lazily so that ``import cfld.metrics`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "LPIPS": "cfld.metrics.lpips",
    "ssim": "cfld.metrics.ssim_psnr",
    "ssim_256": "cfld.metrics.ssim_psnr",
    "psnr": "cfld.metrics.ssim_psnr",
    "PSNR_CAP_DB": "cfld.metrics.ssim_psnr",
    "frechet_distance": "cfld.metrics.fid",
    "FIDStatistics": "cfld.metrics.fid",
    "InceptionV3": "cfld.metrics.fid",
    "CFLDInceptionFeatures": "cfld.metrics.fid",
    "FIDInceptionFeatures": "cfld.metrics.fid",
    "MissingWeightsError": "cfld.metrics.fid",
    "silhouette_iou": "cfld.metrics.parts",
    "part_colour_error": "cfld.metrics.parts",
    "foreground_mask": "cfld.metrics.parts",
    "erode_labels": "cfld.metrics.parts",
    "DEFAULT_ERODE": "cfld.metrics.parts",
    "swapped_sources": "cfld.metrics.appearance",
    "person_key": "cfld.metrics.appearance",
    "PairBatch": "cfld.metrics.scoring",
    "PairMetric": "cfld.metrics.scoring",
    "Scores": "cfld.metrics.scoring",
    "score_batches": "cfld.metrics.scoring",
    "evaluate_folder": "cfld.metrics.evaluate",
    "format_table": "cfld.metrics.evaluate",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cfld.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
