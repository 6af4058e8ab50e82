"""Every benchmark script runs with --quick (tiny preset, 1–2 steps) and writes valid JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_limit
        import bench_sampler_quality
        import bench_sampling
        import bench_training
        import run_all
        import shipped_model_quality

        yield {"bench_sampling": bench_sampling, "bench_limit": bench_limit,
               "bench_training": bench_training, "bench_sampler_quality": bench_sampler_quality,
               "shipped_model_quality": shipped_model_quality, "run_all": run_all}
    finally:
        sys.path.remove(str(BENCH))


def run_quick(module, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "result.json"
    module.main(["--quick", "--out", str(out), *extra])
    data = json.loads(out.read_text())
    assert data["quick"] is True and data["machine"]["torch"]
    return data


def test_bench_sampling_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_sampling"], tmp_path)
    assert {"rows", "equality", "same_outputs", "fastest", "per_step_overheads",
            "attention"} <= set(data)
    assert data["same_outputs"] is True  # naive loop == pipeline (≤ 1e-5), same run
    assert data["attention"]["non_sdpa"] == []
    names = {r["variant"] for r in data["rows"]}
    assert {"naive_fp32", "ours_fp32", "ours_bf16", "ours_channels_last"} <= names
    for row in data["rows"]:
        assert {"s_per_image", "s_per_step", "unet_samples_per_image", "unet_calls",
                "est_s_per_image_at_50_steps", "speedup_vs_naive", "cpu_s"} <= set(row)
        assert row["unet_samples_per_image_per_step"] == 3
        assert row["encode_calls"] == (row["steps"] if row["variant"] == "naive_fp32" else 1)
        assert row["unet_calls"] == row["steps"] * (3 if row["variant"] == "naive_fp32" else 1)


def test_bench_limit_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_limit"], tmp_path)
    assert data["flops"]["step_flops"] > 0 and data["flops"]["encode_flops"] > 0
    assert {"fp32", "bf16"} <= set(data["matmul_peak"])
    for row in data["rows"]:
        assert row["step_s"] > 0 and 0 < row["fraction_of_peak"]
    assert "best_fraction_of_peak" in data and "meets_target" in data


def test_bench_training_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_training"], tmp_path)
    configs = {r["config"]: r for r in data["rows"]}
    assert {"fp32", "fp32_checkpointing"} <= set(configs)
    for row in configs.values():
        assert row["step_s"] > 0 and row["peak_rss_gb"] > 0 and row["params_trainable"] > 0
    est = data["gpu_estimate"][0]
    assert est["is_estimate"] is True and est["target_batch"] == 8 and est["total_gb"] > 0


def test_bench_sampler_quality_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_sampler_quality"], tmp_path)
    assert {"rows", "seed_spread", "pick", "reference_row"} <= set(data)
    samplers = {r["sampler"] for r in data["rows"]}
    # the shipped model predicts x0, which Euler ancestral cannot step: skipped and listed
    assert samplers == {"ddpm", "ddim", "dpm", "unipc"}
    assert data["skipped_samplers"] == ["euler_a"]
    for row in data["rows"]:
        assert 0 <= row["iou"] <= 1 and -1 <= row["ssim"] <= 1


def test_bench_sampler_quality_without_model_exits_clearly(bench_modules, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        bench_modules["bench_sampler_quality"].main(
            ["--model", str(tmp_path / "missing"), "--out", str(tmp_path / "r.json")])
    assert err.value.code == 2
    assert "no model to evaluate" in capsys.readouterr().err


def test_shipped_model_quality_resolution_ceiling(bench_modules, tmp_path):
    """The ceiling of the quality benchmark: true targets through the model's 64² size score
    below the untouched targets but far above copying the source."""
    resolution_ceiling = bench_modules["shipped_model_quality"].resolution_ceiling
    from cfld.demo import make_held_out_root
    from cfld.shipped import load_pipeline

    pipe = load_pipeline(None)
    root = make_held_out_root(tmp_path / "held", 1)
    ceiling = resolution_ceiling(pipe, root, 6)
    assert 0.7 < ceiling < 0.97
    assert resolution_ceiling(pipe, root, 6) == ceiling


def test_shipped_model_quality_refuses_the_training_people(bench_modules, capsys):
    module = bench_modules["shipped_model_quality"]
    with pytest.raises(SystemExit) as err:
        module.main(["--people-seed", str(module.TRAINING_DATA_SEED)])
    assert err.value.code == 2
    assert "draws the training people" in capsys.readouterr().err


def test_run_all_lists_every_script(bench_modules):
    assert set(bench_modules["run_all"].BENCHMARKS) == {
        "bench_sampling", "bench_limit", "bench_training", "bench_sampler_quality"}


def test_train_synthetic_refuses_a_finished_stage_with_other_settings(tmp_path):
    """A rerun with a changed recipe must not silently build on the old stage's weights."""
    sys.path.insert(0, str(BENCH))
    try:
        import train_synthetic
    finally:
        sys.path.remove(str(BENCH))
    stage = tmp_path / "finetune3"
    stage.mkdir()
    (stage / "config.json").write_text(json.dumps(
        {"max_steps": 4000, "lr": 1e-4, "prediction_type": "sample", "snr_gamma": 5.0,
         "low_noise_fraction": 0.5, "output_dir": "elsewhere"}))
    same = {"max_steps": 4000, "lr": float("1e-4"), "prediction_type": "sample",
            "snr_gamma": 5.0, "low_noise_fraction": 0.5}
    train_synthetic.check_finished_stage(stage, same)  # paths may differ; settings match
    with pytest.raises(SystemExit, match=r"low_noise_fraction: trained 0\.5, asked 0\.8"):
        train_synthetic.check_finished_stage(stage, {**same, "low_noise_fraction": 0.8})
    train_synthetic.check_finished_stage(tmp_path / "missing", same)  # no config: nothing to check
