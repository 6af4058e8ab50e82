"""SSIM, SSIM_256 and PSNR against scikit-image (the authors' implementation, facts §8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

skm = pytest.importorskip("skimage.metrics")

from cfld.metrics import psnr, ssim, ssim_256  # noqa: E402
from cfld.metrics.ssim_psnr import PSNR_CAP_DB  # noqa: E402


def _pairs(seed: int, shape=(3, 3, 96, 72), quantise=True):
    rng = np.random.default_rng(seed)
    gt = rng.random(shape)
    # A smooth-ish structure plus noise so SSIM is neither ~0 nor ~1.
    gt = (gt + np.roll(gt, 1, axis=-1) + np.roll(gt, 1, axis=-2)) / 3
    pred = np.clip(gt + 0.1 * rng.standard_normal(shape) + 0.05, 0, 1)
    if quantise:  # the protocol's inputs are 8-bit
        gt, pred = np.round(gt * 255) / 255, np.floor(pred * 255) / 255
    return pred, gt


@pytest.mark.parametrize(
    "seed,shape", [(0, (3, 3, 96, 72)), (1, (2, 3, 256, 176)), (2, (2, 3, 51, 60))]
)
def test_ssim_win51_matches_skimage(seed, shape):
    pred, gt = _pairs(seed, shape)
    got = ssim(torch.from_numpy(pred), torch.from_numpy(gt))
    want = [
        skm.structural_similarity(gt[i], pred[i], data_range=1, win_size=51, channel_axis=0)
        for i in range(len(gt))
    ]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("seed,shape", [(3, (3, 3, 96, 72)), (4, (2, 3, 256, 176))])
def test_ssim_256_matches_skimage_with_prediction_range(seed, shape):
    pred, gt = _pairs(seed, shape)
    pred[0] = 0.2 + 0.5 * pred[0]  # a narrower prediction range changes C1/C2
    got = ssim_256(torch.from_numpy(pred), torch.from_numpy(gt))
    want = []
    for i in range(len(gt)):
        p, g = pred[i] * 255, gt[i] * 255
        want.append(
            skm.structural_similarity(
                g, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                data_range=p.max() - p.min(), channel_axis=0,
            )
        )  # fmt: skip
    np.testing.assert_allclose(got.numpy(), want, atol=1e-9, rtol=1e-7)


def test_float32_inputs_close_to_skimage():
    pred, gt = _pairs(5, quantise=False)
    p32, g32 = torch.from_numpy(pred).float(), torch.from_numpy(gt).float()
    want = [
        skm.structural_similarity(gt[i], pred[i], data_range=1, win_size=51, channel_axis=0)
        for i in range(3)
    ]
    np.testing.assert_allclose(ssim(p32, g32).numpy(), want, atol=1e-5)


def test_psnr_matches_skimage_and_identical_is_inf():
    pred, gt = _pairs(6)
    got = psnr(torch.from_numpy(pred), torch.from_numpy(gt))
    want = [skm.peak_signal_noise_ratio(gt[i], pred[i], data_range=1) for i in range(len(gt))]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-9, rtol=1e-9)
    same = torch.from_numpy(gt)
    assert torch.isinf(psnr(same, same)).all()
    assert torch.equal(
        psnr(same, same, max_db=PSNR_CAP_DB), torch.full((3,), PSNR_CAP_DB, dtype=torch.float64)
    )


def test_identical_images_give_ssim_one():
    _, gt = _pairs(7)
    g = torch.from_numpy(gt)
    torch.testing.assert_close(ssim(g, g), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(ssim_256(g, g), torch.ones(3, dtype=torch.float64))


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 60))
    with pytest.raises(ValueError, match="window"):
        ssim(torch.rand(1, 3, 40, 64), torch.rand(1, 3, 40, 64))
    with pytest.raises(ValueError, match="odd"):
        ssim(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), win_size=50)
