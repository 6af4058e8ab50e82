"""Market-1501: PATN's pairs and keypoints (128×64) in Market's layout, read by the same data sets,
checks, batch generation and evaluation.  The data are procedural people written in that
layout (`cfld data synth --layout market1501`)."""

from __future__ import annotations

import shutil

import pytest
import torch
from PIL import Image

from cfld.cli import main
from cfld.data.layouts import MARKET1501, detect_layout


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp("market") / "root"
    assert main(["data", "synth", "--out", str(root), "--layout", "market1501", "--people", "3",
                 "--poses", "3", "--test-people", "1"]) == 0
    return root


def test_synth_writes_the_market_layout(market):
    names = sorted(p.name for p in market.iterdir())
    for split in ("train", "test"):
        assert f"market-pairs-{split}.csv" in names and f"market-annotation-{split}.csv" in names
        images = sorted((market / f"bounding_box_{split}").iterdir())
        assert images and all(Image.open(p).size == (64, 128) for p in images)
    assert not any(n.endswith(".lst") for n in names)
    assert (market / "market-pairs-test.csv").read_text().startswith("from,to\n")
    assert detect_layout(market) is MARKET1501


def test_datasets_read_market_keypoints_in_their_frame(market):
    from cfld.data import DeepFashionTest
    from cfld.data.datasets import Market1501Test, Market1501Train

    train = Market1501Train(market, gen_size=(64, 64), cond_size=(64, 64), pose_size=(64, 64))
    test = Market1501Test(market, gen_size=(64, 64), cond_size=(64, 64), pose_size=(64, 64))
    assert next(iter(train.annotations.values())).frame == (128, 64)
    item = test[0]
    assert item["img_gt"].shape == (3, 128, 64)  # evaluated at 128x64
    assert item["pose_img_tgt"].shape == (21, 64, 64)
    auto = DeepFashionTest(market, gen_size=(64, 64), cond_size=(64, 64), pose_size=(64, 64),
                           test_size=(128, 64))  # the layout is detected from the files
    assert torch.equal(auto[0]["pose_img_src"], item["pose_img_src"])


def _raw_market(market, raw):
    """What a user downloads: Market-1501 (here at 256x128, to be resized) + PATN's csvs."""
    base = raw / "Market-1501-v15.09.15"
    for split in ("train", "test"):
        (base / f"bounding_box_{split}").mkdir(parents=True)
        for p in (market / f"bounding_box_{split}").iterdir():
            Image.open(p).resize((128, 256)).save(base / f"bounding_box_{split}" / p.name)
        Image.new("RGB", (64, 128)).save(base / f"bounding_box_{split}" / "-1_c1s1_000000_00.jpg")
    (raw / "patn").mkdir()
    for f in market.glob("market-*.csv"):
        shutil.copy(f, raw / "patn" / f.name)


def test_prepare_and_check(market, tmp_path, capsys):
    _raw_market(market, tmp_path / "raw")
    out = tmp_path / "prepared"
    args = ["data", "prepare", "--dataset", "market1501", "--src", str(tmp_path / "raw"),
            "--annotations", str(tmp_path / "raw" / "patn"), "--out", str(out)]
    assert main(args) == 0
    assert "resized to 128x64" in capsys.readouterr().out
    for split in ("train", "test"):
        have = sorted(p.name for p in (out / f"bounding_box_{split}").iterdir())
        assert have == sorted(p.name for p in (market / f"bounding_box_{split}").iterdir())
        assert all(Image.open(out / f"bounding_box_{split}" / n).size == (64, 128) for n in have)
    assert main(["data", "check", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Market-1501" in text and "official 12,000" in text and "OK" in text
    assert main(args) == 0 and "0 images copied" in capsys.readouterr().out  # idempotent
    # A wrong-size image and a missing csv are named problems.
    victim = next((out / "bounding_box_test").iterdir())
    Image.new("RGB", (88, 128)).save(victim)
    (out / "market-annotation-train.csv").unlink()
    assert main(["data", "check", str(out), "--layout", "market1501"]) == 1
    text = capsys.readouterr().out
    assert "market-annotation-train.csv" in text and f"{victim.name}: 128x88" in text


def test_prepare_without_the_csvs_is_one_line(market, tmp_path, capsys):
    (tmp_path / "raw" / "bounding_box_train").mkdir(parents=True)
    (tmp_path / "raw" / "bounding_box_test").mkdir()
    assert main(["data", "prepare", "--dataset", "market1501", "--src", str(tmp_path / "raw"),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "market-pairs-train.csv" in err[0] and "--annotations" in err[0]


def test_generate_and_evaluate_at_128x64(market, tmp_path):
    from cfld.generation import generate_pairs
    from cfld.metrics.evaluate import evaluate_folder
    from conftest import make_pixel_pipeline

    pairs = [tuple(line.split(",")) for line in
             (market / "market-pairs-test.csv").read_text().split()[1:3]]
    summary = generate_pairs(make_pixel_pipeline(output_size=(128, 64)), market, pairs,
                             tmp_path / "gen", batch_size=2, num_inference_steps=1,
                             progress=False)
    assert len(summary.done) == 2 and not summary.failed
    # The ground truth itself as the generated images: a perfect score at 128x64.
    gt = tmp_path / "gt"
    gt.mkdir()
    for s, t in {tuple(r.split(",")) for r in
                 (market / "market-pairs-test.csv").read_text().split()[1:]}:
        Image.open(market / "bounding_box_test" / t).save(gt / f"{s[:-4]}___{t[:-4]}.png")
    res = evaluate_folder(gt, market, "128x64", batch_size=8, progress=False,
                          fid_reference="test-gt")
    # Scored as they are (no resampling, no re-quantisation): every pair pixel-identical, so
    # SSIM 1, LPIPS 0, and PSNR +inf counted as the documented cap.
    from cfld.metrics.ssim_psnr import PSNR_CAP_DB

    n = len((market / "market-pairs-test.csv").read_text().split()[1:])
    assert res["size"] == [128, 64] and res["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert res["psnr_identical_pairs"] == n and res["psnr"] == PSNR_CAP_DB
    assert res["lpips"] == pytest.approx(0.0, abs=1e-7)
