"""Both FID feature extractors against features computed by the implementations they follow
(tests/fid_reference.py says how), and the FID of those features against scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cfld.metrics import FIDStatistics, frechet_distance
from cfld.metrics.fid import CFLDInceptionFeatures, FIDInceptionFeatures, InceptionV3
from fid_reference import IMAGES_SHAPE, LARGE_SHAPE, reference_images, seeded_inception_state

REFERENCE = Path(__file__).resolve().parent / "data" / "fid_reference.npz"


@pytest.fixture(scope="module")
def ref():
    with np.load(REFERENCE) as z:
        data = {k: z[k] for k in z.files}
    images = torch.from_numpy(data["images"])
    assert tuple(images.shape) == IMAGES_SHAPE
    torch.testing.assert_close(images, reference_images(), rtol=0, atol=0)  # same inputs
    return data, images, reference_images(LARGE_SHAPE, seed=7)


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_standard_fid_features_equal_fid_helpers_own_extraction(ref):
    """`fid`: our resize + scaling in front of fid-helper's TF-Inception gives the features
    fid-helper's own FidHelper.extract_feats gave."""
    data, images, large = ref
    ext = FIDInceptionFeatures()
    # upsampled, and shrunk to 299² (float32 interpolation weights: 1.2e-5 measured there)
    for x, key, tol in ((images, "fid", 1e-5), (large, "fid_large", 3e-5)):
        got = ext(x).numpy()
        assert got.shape == (len(x), 2048)
        assert rel(got, data[key]) <= tol, (key, rel(got, data[key]))


def test_cfld_fid_features_equal_torchvision_inception(ref, tmp_path):
    """`fid_cfld`: our torchvision-layout Inception-v3 with the authors' preprocessing gives
    torchvision's inception_v3 pool features on the same (seeded) weights."""
    data, images, large = ref
    shapes = {k: tuple(v.shape) for k, v in InceptionV3().state_dict().items()}
    weights = tmp_path / "inception_v3_google-0cc3c7bd.pth"
    torch.save(seeded_inception_state(shapes), weights)
    ext = CFLDInceptionFeatures(weights)
    for x, key in ((images, "fid_cfld"), (large, "fid_cfld_large")):
        got = ext(x).numpy()
        assert got.shape == (len(x), 2048)
        assert rel(got, data[key]) <= 1e-5, (key, rel(got, data[key]))
    # the two extractors are different networks: their features have nothing in common
    assert rel(ext(images).numpy(), data["fid"]) > 0.5


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 3 samples: a rank-2 covariance
@pytest.mark.parametrize("kind", ["fid", "fid_cfld"])
def test_frechet_distance_of_reference_features_equals_scipy(ref, kind):
    """The streamed statistics + distance on the reference features equal the textbook formula
    computed with numpy and scipy's sqrtm (the authors' FID code path); the first 256 feature
    dimensions keep scipy's sqrtm fast (the full 2048 take it tens of seconds)."""
    import scipy.linalg

    feats = ref[0][kind].astype(np.float64)[:, :256]
    a, b = feats[:3], feats[3:]
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    want = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))
    stats = []
    for part in (a, b):
        st = FIDStatistics(256)
        st.update(part.astype(np.float32))
        stats.append(st)
    got = frechet_distance(stats[0].mu, stats[0].sigma, stats[1].mu, stats[1].sigma)
    assert want > 0 and got == pytest.approx(want, rel=1e-4)
