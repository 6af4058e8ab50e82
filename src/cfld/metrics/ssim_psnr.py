"""SSIM (both of the authors' variants) and PSNR, batched in torch.

The CFLD authors score with scikit-image on one image at a time (fidelity §8):

- ``ssim``: ``structural_similarity(gt, pred, data_range=1, win_size=51, channel_axis=0)`` —
  uniform 51x51 window, sample covariance, K1 0.01, K2 0.03, mean over the window-valid interior,
  averaged over channels.
- ``ssim_256``: the same function on x255 arrays with ``gaussian_weights=True`` (sigma 1.5,
  truncate 3.5 -> 11x11), ``use_sample_covariance=False`` and ``data_range`` = max - min of the
  PREDICTION x255 (per image; fidelity §8 and §12.6).
- ``psnr``: ``peak_signal_noise_ratio(gt, pred, data_range=1)`` per image.

Here the same formulas run on whole batches with separable filters written as two small banded
matrix products (fast on CPU and GPU, float64 by default), and agree with scikit-image to ~1e-12
(tests/test_metrics_ssim_psnr.py).  Only the valid interior is ever needed, so the filters are
"valid" (no padding): that is exactly scikit-image's crop of the (win-1)/2 border.
"""

from __future__ import annotations

import torch

__all__ = ["ssim", "ssim_256", "psnr", "PSNR_CAP_DB"]

# PSNR of identical images is +inf (scikit-image agrees).  Aggregated reports cap per-image values
# at this level, which is above what two different 8-bit images of the evaluation sizes can reach
# (a single value off by 1/255 in a 512x352x3 image gives 10*log10(540672*255^2) = 105.5 dB).
PSNR_CAP_DB = 120.0


def _check_pair(pred: torch.Tensor, gt: torch.Tensor, name: str) -> None:
    if pred.shape != gt.shape or pred.ndim != 4:
        raise ValueError(
            f"{name} expects two (B,C,H,W) batches of the same shape, got {tuple(pred.shape)} "
            f"and {tuple(gt.shape)}"
        )


def _band_matrix(kernel: torch.Tensor, n: int) -> torch.Tensor:
    """(n - k + 1, n) matrix M, (M @ x)[i] = sum_j kernel[j] * x[i + j] ("valid" correlation)."""
    k = kernel.numel()
    m = torch.zeros(n - k + 1, n, dtype=kernel.dtype, device=kernel.device)
    rows = torch.arange(n - k + 1, device=kernel.device)
    for j in range(k):
        m[rows, rows + j] = kernel[j]
    return m


def _gaussian_kernel(sigma: float, truncate: float, dtype: torch.dtype) -> torch.Tensor:
    """scipy.ndimage's normalised 1-D Gaussian, radius int(truncate*sigma + 0.5)."""
    r = int(truncate * sigma + 0.5)
    x = torch.arange(-r, r + 1, dtype=dtype)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _ssim_core(
    x: torch.Tensor,
    y: torch.Tensor,
    kernel: torch.Tensor,
    data_range: torch.Tensor,
    sample_covariance: bool,
    k1: float = 0.01,
    k2: float = 0.03,
    chunk: int = 8,
) -> torch.Tensor:
    """Per-image SSIM (B,) of (B,C,H,W) inputs, scikit-image's formula with a separable window."""
    b, c, h, w = x.shape
    k = kernel.numel()
    if h < k or w < k:
        raise ValueError(
            f"SSIM window {k}x{k} is larger than the images ({h}x{w}); use images of at least "
            f"{k}x{k} pixels"
        )
    kernel = kernel.to(x.device)
    mh = _band_matrix(kernel, h)  # (H', H)
    mw = _band_matrix(kernel, w).T  # (W, W')
    win = k * k
    cov_norm = win / (win - 1) if sample_covariance else 1.0
    out = []
    for s in range(0, b, chunk):  # bounds memory: 5 float64 maps per image
        xs, ys = x[s : s + chunk], y[s : s + chunk]
        maps = torch.stack([xs, ys, xs * xs, ys * ys, xs * ys])  # (5,b,C,H,W)
        f = mh @ maps @ mw  # (5,b,C,H',W'): windowed means over the valid interior
        ux, uy, uxx, uyy, uxy = f.unbind(0)
        vx = cov_norm * (uxx - ux * ux)
        vy = cov_norm * (uyy - uy * uy)
        vxy = cov_norm * (uxy - ux * uy)
        r = data_range[s : s + chunk].view(-1, 1, 1, 1)
        c1, c2 = (k1 * r) ** 2, (k2 * r) ** 2
        smap = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        out.append(smap.mean(dim=(2, 3)).mean(dim=1))  # mean interior, then mean over channels
    return torch.cat(out)


def ssim(
    pred: torch.Tensor,
    gt: torch.Tensor,
    win_size: int = 51,
    data_range: float = 1.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The authors' "SSIM": uniform 51x51 window, sample covariance (fidelity §8).

    Equals ``skimage.metrics.structural_similarity(gt, pred, data_range=1, win_size=51,
    channel_axis=0)`` for every image of the batch.

    Args:
        pred: (B,C,H,W) generated images in [0, 1].
        gt: (B,C,H,W) ground-truth images in [0, 1].
        win_size: odd window side.
        data_range: dynamic range of the inputs.
        dtype: compute precision (float64 matches scikit-image on float64 arrays).

    Returns:
        (B,) per-image SSIM (float64 by default).
    """
    _check_pair(pred, gt, "ssim")
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"ssim win_size must be odd and >= 3, got {win_size}")
    kernel = torch.full((win_size,), 1.0 / win_size, dtype=dtype)
    r = torch.full((pred.shape[0],), float(data_range), dtype=dtype, device=pred.device)
    return _ssim_core(pred.to(dtype), gt.to(dtype), kernel, r, sample_covariance=True)


def ssim_256(
    pred: torch.Tensor, gt: torch.Tensor, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The authors' "SSIM_256": Gaussian window on x255 images, range from the prediction.

    Equals ``structural_similarity(gt*255, pred*255, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=(pred*255).max() - (pred*255).min(),
    channel_axis=0)`` per image (fidelity §8).  A constant prediction has data range 0 and gives NaN
    where both windows are flat, as in scikit-image.

    Args:
        pred: (B,C,H,W) generated images in [0, 1].
        gt: (B,C,H,W) ground-truth images in [0, 1].
        dtype: compute precision.

    Returns:
        (B,) per-image SSIM_256.
    """
    _check_pair(pred, gt, "ssim_256")
    p = pred.to(dtype) * 255
    g = gt.to(dtype) * 255
    flat = p.flatten(1)  # (B, C*H*W)
    r = flat.amax(dim=1) - flat.amin(dim=1)  # per-image range of the PREDICTION (fidelity §12.6)
    kernel = _gaussian_kernel(1.5, 3.5, dtype)  # 11 taps
    return _ssim_core(p, g, kernel, r, sample_covariance=False)


def psnr(
    pred: torch.Tensor,
    gt: torch.Tensor,
    data_range: float = 1.0,
    max_db: float | None = None,
) -> torch.Tensor:
    """Per-image PSNR in dB, ``skimage.metrics.peak_signal_noise_ratio(gt, pred, data_range=1)``.

    Identical images give ``+inf`` (as in scikit-image) unless ``max_db`` caps the values; the
    evaluation protocol reports the mean with the cap :data:`PSNR_CAP_DB` and counts identical
    pairs separately.

    Args:
        pred: (B,C,H,W) generated images.
        gt: (B,C,H,W) ground truth.
        data_range: peak value range (1 for [0, 1] images).
        max_db: optional upper cap on each value.

    Returns:
        (B,) float64 PSNR values.
    """
    _check_pair(pred, gt, "psnr")
    mse = (pred.double() - gt.double()).pow(2).flatten(1).mean(dim=1)  # (B,)
    with torch.no_grad():
        val = 10 * torch.log10(data_range**2 / mse)  # mse 0 -> +inf
    if max_db is not None:
        val = val.clamp(max=max_db)
    return val
