"""The shipped small model: present, small, loads offline, and clearly beats copying the source.

The full figures (200 unseen pairs, DDPM-50) come from benchmarks/shipped_model_quality.py; here
a few pairs with the demo's fast sampler keep CI short.
"""

from __future__ import annotations

import json

import pytest
import torch

from cfld.demo import make_held_out_root, run_demo, score_pairs
from cfld.shipped import DEMO_SETTINGS, SHIPPED_DIR, load_pipeline, shipped_model_dir


def test_shipped_model_is_in_the_package_and_small():
    folder = shipped_model_dir()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= 25 * 2**20, f"shipped model is {size / 2**20:.1f} MiB"
    assert (SHIPPED_DIR / "model" / "diffusion_pytorch_model.safetensors").is_file()


@pytest.fixture(scope="module")
def pipe():
    p = load_pipeline(None, scheduler=DEMO_SETTINGS["scheduler"])
    p.set_progress_bar_config(disable=True)
    return p


def test_shipped_model_beats_copying_the_source(pipe, tmp_path):
    root = make_held_out_root(tmp_path / "held_out", 2)  # 2 unseen people, 24 pairs
    result = score_pairs(pipe, root, 12, DEMO_SETTINGS["steps"], seed=0, batch_size=12)
    model, copy = result.model, result.copy_source
    assert model.ssim >= copy.ssim + 0.05
    assert model.silhouette_iou >= copy.silhouette_iou + 0.2
    assert model.silhouette_iou >= 0.5
    assert model.psnr > copy.psnr


def test_shipped_model_is_deterministic(pipe):
    from cfld.pose import Keypoints

    kp = Keypoints.from_json(SHIPPED_DIR.parent / "poses" / "02_walking.json")
    src = torch.rand(1, 3, 64, 64) * 2 - 1
    a = pipe(src, kp, num_inference_steps=3, generator=torch.Generator().manual_seed(1),
             output_type="pt").images
    b = pipe(src, kp, num_inference_steps=3, generator=torch.Generator().manual_seed(1),
             output_type="pt").images
    assert torch.equal(a, b)


def test_demo_writes_grid_and_metrics(tmp_path):
    metrics = run_demo(tmp_path / "demo", num_pairs=3)
    saved = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert saved["num_pairs"] == 3 == metrics["num_pairs"]
    assert set(saved["model"]) == {"ssim", "psnr", "silhouette_iou"}
    assert (tmp_path / "demo" / "grid.png").stat().st_size > 1000
