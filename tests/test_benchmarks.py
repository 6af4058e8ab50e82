"""Every benchmark script runs with --quick (tiny preset, 1–2 steps) and writes valid JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_limit
        import bench_sampler_quality
        import bench_sampling
        import bench_training
        import fidelity
        import run_all
        import shipped_model_quality

        yield {"bench_sampling": bench_sampling, "bench_limit": bench_limit,
               "bench_training": bench_training, "bench_sampler_quality": bench_sampler_quality,
               "shipped_model_quality": shipped_model_quality, "run_all": run_all,
               "fidelity": fidelity}
    finally:
        sys.path.remove(str(BENCH))


def run_quick(module, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "result.json"
    module.main(["--quick", "--out", str(out), *extra])
    data = json.loads(out.read_text())
    assert data["quick"] is True and data["machine"]["torch"]
    return data


def test_bench_sampling_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_sampling"], tmp_path, "--runs", "2")
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
    rows = {r["variant"]: r for r in data["rows"]}
    naive, ours = rows["naive_fp32"], rows["ours_fp32"]
    # the derived figures are the ratios of the measured ones
    for row in rows.values():
        assert row["speedup_vs_naive"] == pytest.approx(naive["s_per_image"] / row["s_per_image"])
        runs = row["total_s_runs"]  # the reported time is the median of the runs
        assert len(runs) == row["runs"] == 2 and row["total_s"] == pytest.approx(sum(runs) / 2)
    # equality is measured, not asserted: the naive port's latents are close to ours but not the
    # same tensor; bf16 really changes them, channels-last does not (beyond fp32 rounding)
    check = data["equality"][0]
    assert 0 < check["naive_vs_ours_rel_err_latents"] <= check["tolerance"] == 1e-5
    assert naive["rel_err_latents_vs_ours_fp32"] == check["naive_vs_ours_rel_err_latents"]
    assert ours["rel_err_latents_vs_ours_fp32"] == 0
    assert 1e-4 < rows["ours_bf16"]["rel_err_latents_vs_ours_fp32"] < 5e-2
    assert rows["ours_channels_last"]["rel_err_latents_vs_ours_fp32"] <= 1e-4


def test_bench_limit_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_limit"], tmp_path)
    assert data["flops"]["step_flops"] > 0 and data["flops"]["encode_flops"] > 0
    assert {"fp32", "bf16"} <= set(data["matmul_peak"])
    peaks = data["matmul_peak"]
    for row in data["rows"]:
        # step time = median of the recorded runs; the fractions are those ratios
        runs = sorted(row["step_s_runs"])
        assert row["step_s"] == runs[len(runs) // 2] and row["step_s_min"] == runs[0]
        achieved = data["flops"]["step_flops"] / row["step_s"]
        assert row["achieved_tflops"] == pytest.approx(achieved / 1e12)
        peak = peaks[row["precision"]]["flops_per_s"]
        assert peak == pytest.approx(2 * peaks[row["precision"]]["n"] ** 3
                                     / peaks[row["precision"]]["seconds"])
        assert row["fraction_of_peak"] == pytest.approx(achieved / peak)
    assert data["best_fraction_of_peak"] == max(r["fraction_of_peak"] for r in data["rows"])
    assert data["machine"]["command"].startswith("python benchmarks/bench_limit.py --quick")


def test_bench_limit_flop_count_scales_with_the_batch(bench_modules):
    """FLOPs are counted on the real shapes: twice the images, twice the work; the guided step
    is three UNet samples per image."""
    count = bench_modules["bench_limit"].count_flops
    one, two = count("tiny", 1), count("tiny", 2)
    assert two["step_flops"] == 2 * one["step_flops"] > 0
    assert two["encode_flops"] == 2 * one["encode_flops"] > 0
    assert one["unet_samples_per_step"] == 3 and "aten.convolution" in one["step_flops_by_op"]
    assert sum(one["step_flops_by_op"].values()) == one["step_flops"]


def test_bench_training_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_training"], tmp_path)
    configs = {r["config"]: r for r in data["rows"]}
    assert {"fp32", "fp32_checkpointing"} <= set(configs)
    for row in configs.values():
        assert row["step_s"] > 0 and row["peak_rss_gb"] > 0 and row["params_trainable"] > 0
    est = data["gpu_estimate"][0]
    assert est["is_estimate"] is True and est["target_batch"] == 8 and est["total_gb"] > 0


def test_bench_training_gpu_estimate_arithmetic(bench_modules):
    """The 24 GB estimate, by hand: fp32 weights, fp32 grads and two Adam moments of the
    trainable part, fp16 copies of the frozen part, batch-1 activations ×8 (halved for an fp32
    row), 1 GiB margin."""
    gib = 2**30
    row = {"config": "fp32_checkpointing", "checkpointing": True, "autocast": None, "batch": 1,
           "params_total": gib // 4 * 3, "params_trainable": gib // 4,  # 3 GiB / 1 GiB in fp32
           "rss_after_build_gb": 4.0, "peak_rss_forward_backward_gb": 6.5, "peak_rss_gb": 7.0}
    est = bench_modules["bench_training"].estimate_gpu_memory(row)
    assert (est["weights_fp32_gb"], est["grads_fp32_gb"], est["adam_states_gb"]) == (3, 1, 2)
    assert est["fp16_weight_copies_gb"] == 1  # 2 GiB of frozen fp32 parameters, in fp16
    assert est["activations_measured_gb"] == 2.5 and est["activations_at_target_gb"] == 10
    assert est["total_gb"] == 3 + 1 + 2 + 1 + 10 + 1
    assert est["total_gb_low"] == 3 + 1 + 2 + 1 + (2.5 - 1) * 8 / 2 + 1
    bf16 = bench_modules["bench_training"].estimate_gpu_memory({**row, "autocast": "bf16"})
    assert bf16["activations_at_target_gb"] == 20


def test_bench_sampler_quality_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_sampler_quality"], tmp_path)
    assert {"rows", "seed_spread", "pick", "reference_row"} <= set(data)
    samplers = {r["sampler"] for r in data["rows"]}
    # the shipped model predicts x0, which Euler ancestral cannot step: skipped and listed
    assert samplers == {"ddpm", "ddim", "dpm", "unipc"}
    assert data["skipped_samplers"] == ["euler_a"]
    ref, spread = data["reference_row"], data["seed_spread"]
    for row in data["rows"]:
        assert 0 <= row["iou"] <= 1 and -1 <= row["ssim"] <= 1
        assert row["unet_evals_per_image"] == 3 * row["steps"]
        if row is not data["rows"][0]:
            assert row["within_spread"] == (row["ssim"] >= ref["ssim"] - spread["ssim"]
                                            and row["iou"] >= ref["iou"] - spread["iou"])
    inside = [r for r in data["rows"][1:] if r["within_spread"]]
    if inside:  # the pick: fewest steps inside the spread
        assert data["pick"]["steps"] == min(r["steps"] for r in inside)


def test_bench_sampler_quality_without_model_exits_clearly(bench_modules, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        bench_modules["bench_sampler_quality"].main(
            ["--model", str(tmp_path / "missing"), "--out", str(tmp_path / "r.json")])
    assert err.value.code == 2
    assert "no model to evaluate" in capsys.readouterr().err


def test_shipped_model_quality_resolution_ceiling(bench_modules, tmp_path):
    """The ceiling of the quality benchmark equals its recipe written out by hand: each true
    target PIL-bicubic to the model's 64², back to 128×88 with torch bicubic + antialias,
    truncated to 8 bits, scored against its part map.  A perfect 64² model gets no more."""
    import numpy as np
    import torch.nn.functional as F
    from PIL import Image

    from cfld.demo import evaluation_pairs, make_held_out_root
    from cfld.metrics import silhouette_iou
    from cfld.shipped import load_pipeline

    resolution_ceiling = bench_modules["shipped_model_quality"].resolution_ceiling
    pipe = load_pipeline(None)
    assert tuple(pipe.image_size) == (64, 64) and tuple(pipe.default_output_size) == (128, 88)
    root = make_held_out_root(tmp_path / "held", 1)
    hand, untouched = [], []
    for _, target in evaluation_pairs(root, 6):
        with Image.open(root / "test_highres" / target) as im:
            full = np.asarray(im.convert("RGB"))
            small = np.asarray(im.convert("RGB").resize((64, 64), Image.BICUBIC))
        with Image.open(root / "test_parts" / (Path(target).stem + ".png")) as im:
            parts = torch.from_numpy(np.asarray(im).astype(np.int64))[None]  # (1, 128, 88)
        x = torch.from_numpy(small.copy()).permute(2, 0, 1)[None].float() / 255
        back = F.interpolate(x, size=(128, 88), mode="bicubic", align_corners=False,
                             antialias=True).clamp(0, 1)
        back = torch.floor(back * 255) / 255
        hand.append(silhouette_iou(back, parts).item())
        orig = torch.from_numpy(full.copy()).permute(2, 0, 1)[None].float() / 255
        untouched.append(silhouette_iou(orig, parts).item())
    ceiling = resolution_ceiling(pipe, root, 6)
    assert ceiling == pytest.approx(sum(hand) / 6, abs=1e-9)
    assert ceiling < sum(untouched) / 6 - 0.05  # 64² costs IoU the original does not lose


def test_shipped_model_quality_refuses_the_training_people(bench_modules, capsys):
    module = bench_modules["shipped_model_quality"]
    with pytest.raises(SystemExit) as err:
        module.main(["--people-seed", str(module.TRAINING_DATA_SEED)])
    assert err.value.code == 2
    assert "draws the training people" in capsys.readouterr().err


def test_fidelity_script_measures_within_the_required_tolerances(bench_modules, tmp_path,
                                                               fixtures_dir):
    """benchmarks/fidelity.py (the README's fidelity table) measures the same outputs as the
    stored result, each within the tolerance the tests require."""
    data = bench_modules["fidelity"].main(["--threads", "1", "--out", str(tmp_path / "f.json"),
                                           "--fixture", str(fixtures_dir / "official_tiny")])
    stored = json.loads((BENCH / "results" / "fidelity_official_tiny.json").read_text())
    assert set(data["rows"]) == set(stored["rows"])
    for key, row in data["rows"].items():
        assert row["max_rel_error"] <= row["required"], key
        assert row["required"] == stored["rows"][key]["required"], key
        assert stored["rows"][key]["max_rel_error"] <= stored["rows"][key]["required"], key
    assert data["all_within_required"] and data["machine"]["torch_threads"] == 1


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
