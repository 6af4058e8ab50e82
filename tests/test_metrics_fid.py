"""Fréchet distance, streamed statistics and the two Inception feature extractors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cfld.metrics import FIDStatistics, frechet_distance
from cfld.metrics.fid import (
    CFLDInceptionFeatures,
    FIDInceptionFeatures,
    InceptionV3,
    MissingWeightsError,
    _legacy_tf_bilinear_matrix,
)


# ------------------------------------------------------------------ distance and statistics
@pytest.mark.parametrize("method", ["eigh", "sqrtm"])
def test_frechet_closed_form_diagonal(method):
    rng = np.random.default_rng(0)
    d = 64
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.1, 2, d), rng.uniform(0.1, 2, d)
    want = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * np.sqrt(v1 * v2)).sum()
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2), method=method)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_frechet_general_covariances_both_methods_agree_and_commuting_case():
    rng = np.random.default_rng(1)
    d = 32
    a, b = rng.normal(size=(d, 2 * d)), rng.normal(size=(d, 2 * d))
    s1, s2 = a @ a.T / (2 * d), b @ b.T / (2 * d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    e = frechet_distance(mu1, s1, mu2, s2, method="eigh")
    s = frechet_distance(mu1, s1, mu2, s2, method="sqrtm")
    assert e == pytest.approx(s, rel=1e-8)
    # Commuting covariances (same eigenvectors): tr sqrt(S1 S2) = sum sqrt(l1 l2).
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    l1, l2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    want = ((mu1 - mu2) ** 2).sum() + (l1 + l2 - 2 * np.sqrt(l1 * l2)).sum()
    got = frechet_distance(mu1, q @ np.diag(l1) @ q.T, mu2, q @ np.diag(l2) @ q.T)
    assert got == pytest.approx(want, rel=1e-9)


def test_frechet_singular_equal_sets_is_zero_and_bad_shapes():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(5, 40))  # fewer samples than dimensions: singular covariance
    mu, sig = f.mean(0), np.cov(f, rowvar=False)
    assert frechet_distance(mu, sig, mu, sig) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(mu, sig, mu[:3], sig)
    with pytest.raises(ValueError, match="method"):
        frechet_distance(mu, sig, mu, sig, method="nope")


def test_streamed_statistics_equal_numpy(tmp_path):
    rng = np.random.default_rng(3)
    feats = rng.normal(loc=5.0, scale=0.3, size=(103, 16)).astype(np.float32)
    st = FIDStatistics(16)
    for i in range(0, 103, 10):  # uneven batches, numpy and torch input
        chunk = feats[i : i + 10]
        st.update(torch.from_numpy(chunk) if i % 20 else chunk)
    np.testing.assert_allclose(st.mu, feats.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(
        st.sigma, np.cov(feats.astype(np.float64), rowvar=False), rtol=1e-9, atol=1e-12
    )
    st.save(tmp_path / "s.npz", {"key": "abc"})
    back, meta = FIDStatistics.load(tmp_path / "s.npz")
    assert meta == {"key": "abc"} and back.n == 103
    np.testing.assert_array_equal(back.sigma, st.sigma)
    with pytest.raises(ValueError, match="features"):
        st.update(np.zeros((2, 15)))
    with pytest.raises(ValueError, match="at least 2"):
        _ = FIDStatistics(4).sigma


# ------------------------------------------------------------------ torchvision-layout Inception
@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    torch.manual_seed(0)
    net = InceptionV3()
    for m in net.modules():  # non-trivial BN statistics so eval mode matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    # A plain dict without num_batches_tracked, like torchvision's released file.
    sd = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("w") / "inception_v3_google-0cc3c7bd.pth"
    torch.save(sd, path)
    return path, sd


def test_inception_layout_matches_torchvision_names(random_inception_file):
    _, sd = random_inception_file
    net = InceptionV3()
    assert sum(p.numel() for p in net.parameters()) == 27_161_264  # torchvision inception_v3()
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_var",
                "Mixed_5b.branch_pool.bn.bias", "Mixed_7c.branch3x3dbl_3b.conv.weight",
                "AuxLogits.fc.weight", "fc.bias"):  # fmt: skip
        assert key in sd
    assert net.Conv2d_1a_3x3.bn.eps == 0.001
    assert tuple(sd["Mixed_6e.branch7x7_2.conv.weight"].shape) == (192, 192, 1, 7)


def test_cfld_extractor_loads_strictly_and_is_deterministic(random_inception_file):
    path, sd = random_inception_file
    ext = CFLDInceptionFeatures(path)
    assert torch.equal(
        ext.net.Mixed_7c.branch_pool.bn.running_var, sd["Mixed_7c.branch_pool.bn.running_var"]
    )
    x = torch.rand(2, 3, 64, 48)
    f = ext(x)
    assert f.shape == (2, 2048) and f.dtype == torch.float32 and torch.isfinite(f).all()
    # Preprocessing = bilinear 299 (no antialias) + transform_input on [0,1] (facts §8); the
    # second forward also shows the extractor is deterministic (eval-mode BatchNorm).
    y = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    t = torch.stack([y[:, 0] * 0.458 - 0.03, y[:, 1] * 0.448 - 0.088, y[:, 2] * 0.45 - 0.188], 1)
    ext.net.transform_input = False
    torch.testing.assert_close(ext.net(t), f, atol=1e-4, rtol=1e-4)


def test_cfld_extractor_missing_or_wrong_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("CFLD_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(MissingWeightsError, match="inception_v3_google-0cc3c7bd.pth"):
        CFLDInceptionFeatures()
    with pytest.raises(MissingWeightsError, match="--inception-weights"):
        CFLDInceptionFeatures(tmp_path / "absent.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not torchvision's Inception-v3"):
        CFLDInceptionFeatures(bad)


# ------------------------------------------------------------------ standard FID extractor
def test_tf_bilinear_resize_matches_the_half_pixel_free_grid():
    # TF-1 legacy bilinear: output i samples input i*in/out; checked against grid_sample with
    # the equivalent affine grid.
    x = torch.rand(2, 3, 40, 28, dtype=torch.float64)
    h, w, n = 40, 28, 299
    theta = torch.eye(2, 3, dtype=torch.float64)
    theta[0, 2] += 1 / w - 1 / n
    theta[1, 2] += 1 / h - 1 / n
    grid = F.affine_grid(theta[None].repeat(2, 1, 1), [2, 3, n, n], align_corners=False)
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    got = (
        _legacy_tf_bilinear_matrix(h, n, torch.float64)
        @ x
        @ _legacy_tf_bilinear_matrix(w, n, torch.float64).T
    )
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)


class _TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 2048, 3, stride=8)
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x)
        return self.conv(x).mean(dim=(2, 3))


def test_fid_extractor_feeds_its_net_tf_resized_tf_scaled_images():
    """What the standard-FID extractor gives its network, computed by hand: the TF-1 legacy
    bilinear 299² (output pixel i samples input i·in/out, border-clamped; grid_sample with the
    shifted affine grid), then TF's scaling (255x − 128)/128 onto [−1, 0.992]; values outside
    [0, 1] are clipped first; a 299² input is not resampled.  The features are the net's output
    on that, one row per image.  (The real TF-Inception's features are checked against
    fid-helper's own extraction in test_metrics_fid_reference.py.)"""
    net = _TinyNet()
    ext = FIDInceptionFeatures(net=net)
    x = torch.rand(2, 3, 64, 44, dtype=torch.float64)
    x[0, 0, 0, 0], x[1, 2, 0, 0] = 1.5, -0.25  # clipped to 1 and 0 (pixel 0 is sampled as is)
    h, w, n = 64, 44, 299
    theta = torch.eye(2, 3, dtype=torch.float64)
    theta[0, 2] += 1 / w - 1 / n
    theta[1, 2] += 1 / h - 1 / n
    grid = F.affine_grid(theta[None].repeat(2, 1, 1), [2, 3, n, n], align_corners=False)
    resized = F.grid_sample(x.clamp(0, 1), grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
    by_hand = (resized * 255 - 128) / 128
    f = ext(x.float())
    torch.testing.assert_close(net.seen[-1].double(), by_hand, atol=2e-6, rtol=0)
    assert float(by_hand.min()) == -1.0 and float(by_hand.max()) == 127 / 128
    with torch.no_grad():
        torch.testing.assert_close(f, net(by_hand.float()), atol=1e-6, rtol=1e-5)
    sq = torch.rand(1, 3, 299, 299)
    ext(sq)
    torch.testing.assert_close(net.seen[-1], (sq * 255 - 128) / 128, atol=0, rtol=0)


def test_fid_torchscript_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CFLD_FID_INCEPTION", str(tmp_path / "gone.pt"))
    with pytest.raises(MissingWeightsError, match="gone.pt"):
        FIDInceptionFeatures()
