"""The DeepFashion evaluation protocol (`cfld evaluate`) on a tiny procedural root."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
from PIL import Image

from cfld.cli import main
from cfld.metrics import evaluate_folder
from cfld.metrics.evaluate import generated_name, quantise_generated
from cfld.metrics.evaluate import parse_eval_size as parse_size
from cfld.metrics.fid import FIDInceptionFeatures

SIZE = (256, 176)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    synthetic = pytest.importorskip("cfld.data.synthetic")
    return synthetic.make_sample_root(
        tmp_path_factory.mktemp("data") / "root", people=2, poses=2, size=(128, 88), test_people=1
    )


def _pairs(root: Path) -> list[tuple[str, str]]:
    from cfld.data.deepfashion import PAIRS_TEST, read_pairs

    return read_pairs(root / PAIRS_TEST)


def _write_gt_as_generated(root: Path, out: Path, size=SIZE) -> Path:
    """Generated = ground truth (the protocol's sanity case)."""
    from cfld.data.deepfashion import load_image

    out.mkdir(parents=True, exist_ok=True)
    for s, t in _pairs(root):
        load_image(root / "test_highres" / t, size).save(out / f"{generated_name(s, t)}.png")
    return out


class _TinyNet(torch.nn.Module):
    """Stand-in for the 87 MB Inception where the network itself is not under test."""

    def __init__(self, seed: int, dim: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.proj = torch.nn.Parameter(torch.randn(3 * 16, dim, generator=g))

    def forward(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)  # (B, 48)
        return torch.relu(pooled @ self.proj)


def _tiny(seed: int = 0, dim: int = 32) -> FIDInceptionFeatures:
    ext = FIDInceptionFeatures(net=_TinyNet(seed, dim))
    ext.dim = dim  # small features keep the Fréchet distance's eigen-decompositions cheap
    return ext


def test_generated_equal_to_gt_via_cli_offline(root, tmp_path, capsys, monkeypatch):
    def no_network(*_a, **_k):
        raise AssertionError("evaluation tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.delenv("CFLD_INCEPTION_WEIGHTS", raising=False)
    gen = _write_gt_as_generated(root, tmp_path / "gen")
    out = tmp_path / "m.json"
    rc = main(["evaluate", "--generated", str(gen), "--data", str(root), "--size", "256x176",
               "--fid-reference", "test-gt", "--out", str(out), "--no-progress",
               "--batch-size", "4"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0
    m = json.loads(out.read_text())
    n = len(_pairs(root))
    assert m["num_pairs"] == n
    assert m["fid"] == pytest.approx(0.0, abs=1e-3)
    assert m["fid_cfld"] is None and any("fid_cfld is null" in s for s in m["notes"])
    assert m["lpips"] == pytest.approx(0.0, abs=1e-7)
    assert m["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert m["ssim_256"] == pytest.approx(1.0, abs=1e-9)
    assert m["psnr"] == m["psnr_cap_db"] and m["psnr_identical_pairs"] == n
    assert m["part_colour_error"] == pytest.approx(0.0, abs=1e-9)
    assert m["silhouette_iou"] == pytest.approx(m["silhouette_iou_gt"])
    for label in ("FID (standard", "FID_cfld", "SSIM (win 51", "SSIM_256", "LPIPS", "PSNR"):
        assert label in text
    assert "8,570" in text  # the real split's count is reported, not required


def test_train_reference_statistics_are_cached(root, tmp_path):
    gen = _write_gt_as_generated(root, tmp_path / "gen")
    cache = tmp_path / "cache"
    kw = dict(
        fid_stats_cache=cache, progress=False, fid_extractor=_tiny(0), fid_cfld_extractor=_tiny(1)
    )
    first = evaluate_folder(gen, root, SIZE, **kw)
    assert not first["fid_reference_cached"] and first["fid_reference_images"] == 4
    assert first["fid"] > 0 and first["fid_cfld"] > 0 and first["fid"] != first["fid_cfld"]
    assert len(list(cache.glob("*.npz"))) == 2
    second = evaluate_folder(gen, root, SIZE, **kw)
    assert second["fid_reference_cached"]
    assert second["fid"] == pytest.approx(first["fid"], rel=1e-12)
    # Any change of the training images invalidates the cache.
    img = sorted((root / "train_highres").iterdir())[0]
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = evaluate_folder(gen, root, SIZE, **kw)
    assert not third["fid_reference_cached"]


def test_fid_cfld_uses_the_user_weights(root, tmp_path, monkeypatch):
    import cfld.metrics.evaluate as ev

    gen = _write_gt_as_generated(root, tmp_path / "gen")
    weights = tmp_path / "inception_v3_google-0cc3c7bd.pth"
    weights.write_bytes(b"stand-in")  # only its path travels; the network is replaced below
    seen = []

    def fake_extractor(path):
        seen.append(path)
        return _tiny(7)

    monkeypatch.setattr(ev, "CFLDInceptionFeatures", fake_extractor)
    monkeypatch.setenv("CFLD_INCEPTION_WEIGHTS", str(weights))
    m = evaluate_folder(
        gen, root, SIZE, fid_reference="test-gt", progress=False, fid_extractor=_tiny(0)
    )
    assert seen == [weights]  # from the environment variable
    assert m["fid_cfld"] == pytest.approx(0.0, abs=1e-6)
    assert not any("fid_cfld is null" in note for note in m["notes"])


def test_square_outputs_are_squashed_and_truncated(root, tmp_path):
    """A 512x512 output is squashed (not cropped) to 256x176 as the authors do: torch bicubic
    with antialias, truncated to 8 bits; SSIM, PSNR and LPIPS equal that recipe written out."""
    import numpy as np
    import torch.nn.functional as F

    from cfld.data.deepfashion import load_image
    from cfld.metrics import LPIPS, psnr, ssim

    gen = tmp_path / "gen"
    gen.mkdir()
    hand_pred, hand_gt = [], []
    for s, t in _pairs(root):
        square = load_image(root / "test_highres" / t, (512, 512))  # the target, squashed square
        square.save(gen / f"{generated_name(s, t)}.png")
        x = torch.from_numpy(np.asarray(square).copy()).permute(2, 0, 1)[None].float() / 255
        x = F.interpolate(x, size=SIZE, mode="bicubic", align_corners=False, antialias=True)
        hand_pred.append(torch.floor((x * 255).clamp(0, 255)) / 255)
        gt = np.asarray(load_image(root / "test_highres" / t, SIZE))  # PIL bicubic (facts §5.3)
        hand_gt.append(torch.from_numpy(gt.copy()).permute(2, 0, 1)[None].float() / 255)
    pred, gt = torch.cat(hand_pred).double(), torch.cat(hand_gt).double()
    logs: list[str] = []
    m = evaluate_folder(gen, root, SIZE, fid_reference="test-gt", progress=False, log=logs.append,
                        fid_extractor=_tiny(0), out=tmp_path / "m.json")  # fmt: skip
    assert m["generated_sizes"] == {"512x512": len(_pairs(root))}
    assert any("squashed to 256x176" in line for line in logs)
    assert m["ssim"] == pytest.approx(ssim(pred, gt).mean().item(), abs=1e-9)
    assert m["psnr"] == pytest.approx(psnr(pred, gt).mean().item(), abs=1e-9)
    assert m["lpips"] == pytest.approx(LPIPS()(pred.float(), gt.float()).mean().item(), abs=1e-6)
    # cropping the square to the aspect instead (the other reading) scores far lower
    crops = []
    for s, t in _pairs(root):
        with Image.open(gen / f"{generated_name(s, t)}.png") as im:
            x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() / 255
        x = x[..., 80:432]  # the central 512x352 (aspect 176/256)
        crops.append(F.interpolate(x, size=SIZE, mode="bicubic", antialias=True).clamp(0, 1))
    assert m["ssim"] > ssim(torch.cat(crops).double(), gt).mean().item() + 0.1
    assert m["ssim"] < 1 and m["lpips"] > 0
    assert (tmp_path / "m.json").is_file()


def test_quantise_generated_follows_the_authors():
    img = torch.rand(3, 64, 64)
    got, resized = quantise_generated(img, (32, 22))
    ref = torch.nn.functional.interpolate(img[None], size=(32, 22), mode="bicubic", antialias=True)[
        0
    ]
    assert resized and got.shape == (3, 32, 22)
    assert torch.equal(
        got, torch.floor((ref * 255).clamp(0, 255)) / 255
    )  # truncation, not rounding
    same, resized = quantise_generated(got, (32, 22))
    assert not resized and same is got


def test_missing_extra_files_and_allow_missing(root, tmp_path, capsys):
    gen = _write_gt_as_generated(root, tmp_path / "gen")
    victim = sorted(gen.glob("*.png"))[0]
    victim.unlink()
    Image.new("RGB", (176, 256)).save(gen / "unrelated.png")
    rc = main(["evaluate", "--generated", str(gen), "--data", str(root), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "--allow-missing" in err and victim.stem in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    logs: list[str] = []
    m = evaluate_folder(gen, root, SIZE, allow_missing=True, fid_reference="test-gt",
                        progress=False, log=logs.append, fid_extractor=_tiny(0))  # fmt: skip
    assert m["num_pairs"] == len(_pairs(root)) - 1
    assert m["missing_generated"] == 1 and m["extra_generated"] == 1
    assert any("extra" in line and "unrelated.png" in line for line in logs)
    broken = sorted(gen.glob("*___*.png"))[0]
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read generated image"):
        evaluate_folder(gen, root, SIZE, allow_missing=True, fid_reference="test-gt",
                        progress=False, fid_extractor=_tiny(0))  # fmt: skip


def test_missing_weights_give_one_clear_line(root, tmp_path, capsys, monkeypatch):
    gen = _write_gt_as_generated(root, tmp_path / "gen")
    rc = main(["evaluate", "--generated", str(gen), "--data", str(root), "--no-progress",
               "--inception-weights", str(tmp_path / "absent.pth")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "inception_v3_google-0cc3c7bd.pth" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("CFLD_FID_INCEPTION", str(tmp_path / "gone.pt"))
    rc = main(["evaluate", "--generated", str(gen), "--data", str(root), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "gone.pt" in err and len(err.strip().splitlines()) == 1


def test_bad_arguments(root, tmp_path):
    with pytest.raises(ValueError, match="HxW"):
        parse_size("256-176")
    with pytest.raises(ValueError, match="too small"):
        parse_size("32x32")
    assert parse_size("512x352") == (512, 352)
    with pytest.raises(FileNotFoundError, match="generated-images folder"):
        evaluate_folder(tmp_path / "nope", root, SIZE, progress=False, fid_extractor=_tiny(0))
    with pytest.raises(ValueError, match="fid_reference"):
        evaluate_folder(tmp_path, root, SIZE, fid_reference="val", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            evaluate_folder(tmp_path, root, SIZE, device="cuda", progress=False)


def test_extensions_may_differ_between_csv_and_files(root, tmp_path):
    import shutil

    own = tmp_path / "root"
    shutil.copytree(root, own)
    s, t = _pairs(own)[0]
    gt = own / "test_highres" / t
    Image.open(gt).save(gt.with_suffix(".png"))  # csv says .jpg, the folder holds .png
    gt.unlink()
    gen = _write_gt_as_generated(root, tmp_path / "gen")
    png = gen / f"{generated_name(s, t)}.png"
    Image.open(png).save(png.with_suffix(".jpg"), quality=100)  # generated as .jpg is fine too
    png.unlink()
    m = evaluate_folder(
        gen, own, SIZE, fid_reference="test-gt", progress=False, fid_extractor=_tiny(0)
    )
    assert m["num_pairs"] == len(_pairs(own)) and m["missing_generated"] == 0
    assert m["ssim"] > 0.99
