"""`cfld generate` (single and batch) and `cfld demo`, end to end at small size."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from cfld.cli import main
from cfld.data import ANNOTATION_TEST, PAIRS_TEST, TEST_DIR, read_annotations, read_pairs
from cfld.data.synthetic import make_sample_root
from conftest import make_pixel_pipeline


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe") / "pipe"
    make_pixel_pipeline(output_size=(128, 88)).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_sample_root(tmp_path_factory.mktemp("data") / "root", people=2, poses=3,
                            size=(128, 88), seed=1, test_people=2)


def test_generate_single(model_dir, root, tmp_path):
    pairs = read_pairs(root / PAIRS_TEST)
    src, tgt = pairs[0]
    kp = read_annotations(root / ANNOTATION_TEST)[tgt]
    kp.to_json(tmp_path / "kp.json")
    out = tmp_path / "out.png"
    base = ["generate", "--model", str(model_dir), "--source", str(root / TEST_DIR / src),
            "--pose", str(tmp_path / "kp.json"), "--scheduler", "ddim"]
    args = [*base, "--out", str(out), "--steps", "2", "--grid"]
    assert main(args) == 0
    first = Image.open(out)
    assert first.size == (88, 128)
    assert (tmp_path / "out_grid.png").is_file()
    # the file is the pipeline's image for these settings (DDIM, 2 steps, Eq. 7 at 2/2, seed 0)
    import numpy as np
    import torch
    from diffusers import DDIMScheduler

    from cfld import CFLDPipeline

    pipe = CFLDPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    want = pipe(str(root / TEST_DIR / src), str(tmp_path / "kp.json"), num_inference_steps=2,
                guidance_type="uc_down_full", scale_pose=2.0, scale_app=2.0,
                generator=torch.Generator().manual_seed(0)).images[0]
    assert np.array_equal(np.asarray(first), np.asarray(want))
    first = first.copy()
    assert main(args) == 2  # an existing output is never replaced silently
    assert main([*args, "--overwrite"]) == 0  # same seed, same bytes
    assert list(first.getdata()) == list(Image.open(out).getdata())
    # folder output: name derived from the stems
    assert main([*base, "--out", str(tmp_path / "dir"), "--steps", "1"]) == 0
    assert (tmp_path / "dir" / f"{src.rsplit('.', 1)[0]}___kp.png").is_file()


def test_generate_precision_flag(model_dir, root, tmp_path, capsys):
    """--precision fp32 writes the fp32 pipeline's image, the default (auto) the mixed-precision
    one (they differ where the CPU has bf16), fp16 on a CPU is refused with exit code 2."""
    import numpy as np
    import torch

    from cfld import CFLDPipeline
    from cfld.pipelines import speed

    src, tgt = read_pairs(root / PAIRS_TEST)[0]
    read_annotations(root / ANNOTATION_TEST)[tgt].to_json(tmp_path / "kp.json")
    base = ["generate", "--model", str(model_dir), "--source", str(root / TEST_DIR / src),
            "--pose", str(tmp_path / "kp.json"), "--steps", "2"]
    pipe = CFLDPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    got = {}
    for precision, autocast in (("fp32", None), ("auto", "auto")):
        out = tmp_path / f"{precision}.png"
        assert main([*base, "--out", str(out), "--precision", precision]) == 0
        want = pipe(str(root / TEST_DIR / src), str(tmp_path / "kp.json"), num_inference_steps=2,
                    generator=torch.Generator().manual_seed(0), autocast=autocast).images[0]
        got[precision] = np.asarray(Image.open(out))
        assert np.array_equal(got[precision], np.asarray(want)), precision
    if speed.cpu_supports_bf16():
        assert not np.array_equal(got["fp32"], got["auto"])
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "h.png"), "--precision", "fp16",
                 "--device", "cpu"]) == 2
    assert "--precision fp16" in capsys.readouterr().err


def test_generate_batch_names_and_resume(model_dir, root, tmp_path, capsys):
    out = tmp_path / "gen"
    args = ["generate", "--model", str(model_dir), "--pairs", str(root / PAIRS_TEST),
            "--data", str(root), "--out", str(out), "--steps", "1", "--limit", "3",
            "--batch-size", "2", "--size", "64x44"]
    assert main(args) == 0
    names = sorted(p.name for p in out.iterdir())
    expected = sorted(f"{s.rsplit('.', 1)[0]}___{t.rsplit('.', 1)[0]}.png"
                      for s, t in read_pairs(root / PAIRS_TEST)[:3])
    assert names == expected
    assert Image.open(out / names[0]).size == (44, 64)
    capsys.readouterr()
    assert main(args) == 0
    assert "3 already generated, 0 to go" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--source", "x.png"], "needs both --source"),
    ([], "give either --source"),
    (["--pairs", "p.csv"], "needs --data"),
])
def test_generate_bad_arguments(model_dir, tmp_path, capsys, extra, message):
    assert main(["generate", "--model", str(model_dir), "--out", str(tmp_path / "o.png"),
                 *extra]) == 2
    assert message in capsys.readouterr().err


def test_generate_missing_model(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path / "nope"), "--source", "a.png", "--pose",
                 "b.json", "--out", str(tmp_path / "o.png")]) == 2
    assert "not found" in capsys.readouterr().err


def test_demo_with_a_model_folder_scores_what_score_pairs_scores(model_dir, tmp_path):
    """`cfld demo --model DIR --pairs 2 --steps 1 --seed 3`: metrics.json holds what the
    library's score_pairs gives for that model, those unseen people (one pair per person), that
    step count and seed, with the settings it used."""
    from cfld.demo import make_held_out_root, score_pairs
    from cfld.shipped import load_pipeline

    assert main(["demo", "--model", str(model_dir), "--out", str(tmp_path / "demo"), "--pairs",
                 "2", "--steps", "1", "--seed", "3"]) == 0
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert metrics["num_pairs"] == 2
    for key in ("model", "copy_source", "swapped_source"):
        assert set(metrics[key]) == {"ssim", "psnr", "silhouette_iou", "part_colour_error"}
    assert metrics["settings"] == {"scheduler": "ddpm", "steps": 1, "seed": 3,
                                   "image_size": [128, 88]}
    pipe = load_pipeline(str(model_dir), scheduler="ddpm")
    pipe.set_progress_bar_config(disable=True)
    root = make_held_out_root(tmp_path / "held_out", 2)
    want = score_pairs(pipe, root, 2, 1, 3, batch_size=2).as_dict()
    for key in ("model", "copy_source", "swapped_source"):
        assert metrics[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    grid = Image.open(tmp_path / "demo" / "grid.png")
    assert grid.width > 4 * 88
