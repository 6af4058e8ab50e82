"""LPIPS against the reference values of the real lpips package (fixtures/lpips_alex)."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
import torch

from cfld.metrics import LPIPS
from cfld.metrics.lpips import default_lpips_weights


@pytest.fixture(scope="module")
def lpips_ref(fixtures_dir):
    d = fixtures_dir / "lpips_alex"
    ref = json.loads((d / "lpips.json").read_text())
    with np.load(d / "pairs.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return ref, arrays


def _img(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None].to(torch.float32) / 255  # (1,3,H,W)


@pytest.fixture(scope="module")
def model():
    return LPIPS()


def test_every_fixture_value_one_pair_at_a_time(model, lpips_ref):
    ref, arrays = lpips_ref
    worst = 0.0
    for p in ref["pairs"]:
        total, per_layer = model(_img(arrays[p["img0"]]), _img(arrays[p["img1"]]), per_layer=True)
        assert len(per_layer) == 5
        torch.testing.assert_close(total, torch.tensor([p["total"]]), atol=1e-6, rtol=1e-5)
        for got, want in zip(per_layer, p["per_layer"]):
            torch.testing.assert_close(got, torch.tensor([want]), atol=1e-6, rtol=1e-5)
        worst = max(worst, abs(total.item() - p["total"]))
    assert worst < 1e-6


def test_batched_small_pairs_match(model, lpips_ref):
    ref, arrays = lpips_ref
    small = [p for p in ref["pairs"] if p["shape_hwc"][:2] == [256, 176]]
    x0 = torch.cat([_img(arrays[p["img0"]]) for p in small])
    x1 = torch.cat([_img(arrays[p["img1"]]) for p in small])
    got = model(x0, x1)
    assert got.shape == (len(small),)
    torch.testing.assert_close(got, torch.tensor([p["total"] for p in small]), atol=1e-6, rtol=1e-5)
    assert got[0].item() == 0.0  # pair a: identical images


def test_shipped_weights_are_the_fixture_tensors(fixtures_dir, lpips_ref):
    ref, _ = lpips_ref

    def tensor_bytes_sha(path):
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        return hashlib.sha256(raw[8 + n :]).hexdigest()

    shipped = tensor_bytes_sha(default_lpips_weights())
    assert shipped == tensor_bytes_sha(
        fixtures_dir / "lpips_alex" / "lpips_alex_weights.safetensors"
    )
    recorded = ref["weights"].get("safetensors_tensor_data_sha256")
    if recorded:
        assert shipped == recorded
    assert (default_lpips_weights().parent / "NOTICE.md").is_file()


def test_user_weight_file_pth_with_lins_names(tmp_path, model, lpips_ref):
    from safetensors.torch import load_file

    sd = load_file(str(default_lpips_weights()))
    sd = {k.replace("lin", "lins.", 1) if k.startswith("lin") else k: v for k, v in sd.items()}
    path = tmp_path / "alex.pth"
    torch.save(sd, path)
    other = LPIPS(weights=path)
    _, arrays = lpips_ref
    a, b = _img(arrays["img0_3"]), _img(arrays["img1_3"])
    assert torch.equal(other(a, b), model(a, b))


def test_normalize_false_takes_signed_input(model, lpips_ref):
    _, arrays = lpips_ref
    a, b = _img(arrays["img0_4"]), _img(arrays["img1_4"])
    signed = LPIPS(normalize=False)
    torch.testing.assert_close(signed(2 * a - 1, 2 * b - 1), model(a, b), atol=1e-7, rtol=0)


def test_missing_weights_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="alex_v0.1.safetensors"):
        LPIPS(weights=tmp_path / "nope.safetensors")


def test_wrong_weight_file_and_bad_input(tmp_path, model):
    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="missing"):
        LPIPS(weights=bad)
    with pytest.raises(ValueError, match="same shape"):
        model(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 48))
