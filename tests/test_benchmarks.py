"""Every benchmark script runs with --quick (tiny preset, 1–2 steps) and writes valid JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from cfld.pipelines import speed

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_fast_quality
        import bench_limit
        import bench_sampler_quality
        import bench_sampling
        import bench_training
        import bench_vs_authors
        import common
        import fidelity
        import gpu_suite
        import run_all
        import shipped_model_quality

        yield {"bench_sampling": bench_sampling, "bench_limit": bench_limit,
               "bench_training": bench_training, "bench_sampler_quality": bench_sampler_quality,
               "shipped_model_quality": shipped_model_quality, "run_all": run_all,
               "fidelity": fidelity, "bench_vs_authors": bench_vs_authors,
               "bench_fast_quality": bench_fast_quality, "gpu_suite": gpu_suite,
               "common": common}
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
        "bench_sampling", "bench_limit", "bench_training", "bench_sampler_quality",
        "bench_vs_authors", "bench_fast_quality", "bench_scaling"}


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


# ------------------------------------------------------------------------------ issue 19
def test_every_result_records_its_peak_memory(bench_modules, tmp_path):
    common = bench_modules["common"]
    path = common.write_json({"x": 1}, tmp_path / "r.json")
    mem = json.loads(path.read_text())["peak_memory"]
    # getrusage's peak of this process: at least what it holds now (torch alone is > 50 MB)
    assert mem["peak_rss_gb"] >= common.PeakRSS.rss() / 2**30 * 0.99 > 0.05
    assert ("cuda_max_memory_allocated_gb" in mem) == torch.cuda.is_available()


def test_math_attention_is_sdpa_written_out(bench_modules):
    bva = bench_modules["bench_vs_authors"]
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    mask = torch.randn(5, 5, generator=g)
    boolean = torch.rand(5, 5, generator=g) > 0.3
    boolean[:, 0] = True  # every row keeps one key
    F = torch.nn.functional
    for m in (None, mask, boolean):
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        assert torch.allclose(bva.math_attention(q, k, v, attn_mask=m), ref, atol=1e-6)
    original = F.scaled_dot_product_attention
    with bva.attention("exact"):
        assert F.scaled_dot_product_attention is bva.math_attention
    with bva.attention("fused"):
        assert F.scaled_dot_product_attention is original
    assert F.scaled_dot_product_attention is original
    with pytest.raises(ValueError, match="'exact' or 'fused'"):
        with bva.attention("xformers"):
            pass


def test_bench_vs_authors_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_vs_authors"], tmp_path, "--repeats", "2")
    assert data["unet_evals_per_image"]["authors"] == 150 == data["unet_evals_per_image"]["default"]
    assert data["unet_evals_per_image"]["fast"] < 150
    assert data["peak_memory"]["peak_rss_gb"] > 0 and "extrapolation" in data
    rows = {r["variant"]: r for r in data["rows"]}
    names = {"authors_exact_fp32", "authors_fused_fp32", "ours_fp32", "ours_default", "ours_fast"}
    assert names <= set(rows)
    assert data["default_precision"] == ("bf16" if speed.cpu_supports_bf16() else "fp32")
    # the re-created loop gives our pipeline's latents; the written-out attention is really used
    # (close to SDPA, not the same floats)
    eq = data["equality"]
    assert eq["authors_fused_fp32_vs_ours_fp32"] <= 1e-5 and eq["same_outputs"] is True
    assert 0 < eq["authors_exact_fp32_vs_ours_fp32"] <= 1e-5
    for name, row in rows.items():
        # 2 repeats: every fast step; the 2-step variants leave the very first step out
        assert len(row["step_s_all"]) == (2 * row["steps"] if name == "ours_fast" else 3)
        assert row["step_s_min"] <= row["step_s"] <= row["step_s_max"]
        if name != "ours_fast":  # per image at 50 steps = conditions + 50 x step + decode
            assert row["per_image_s"] == pytest.approx(
                row["conditions_s"] + 50 * row["step_s"] + row["decode_s"])
    base = rows["authors_fused_fp32"]["per_image_s"]
    # the default is our pipeline called without a precision argument (mixed precision here)
    assert data["speedup_default"] == pytest.approx(base / rows["ours_default"]["per_image_s"])
    assert data["speedup_fp32"] == pytest.approx(base / rows["ours_fp32"]["per_image_s"])
    assert data["speedup_fast"] == pytest.approx(base / rows["ours_fast"]["per_image_s"])
    assert data["met"]["speedup_fast"] == (data["speedup_fast"] >= 5)
    assert data["quality_within_spread"] is None  # quick: no quality measured, and it says so
    # two processes' halves of the repeats merge into the same figures as one process's run
    halves = []
    for k in (0, 1):
        half = {**data, "first_repeat": k, "repeats": 1, "repeats_done": 1,
                "raw": {v: runs[k:k + 1] for v, runs in data["raw"].items()},
                "raw_decode": {p: d[k:k + 1] for p, d in data["raw_decode"].items()}}
        halves.append(tmp_path / f"half{k}.json")
        halves[-1].write_text(json.dumps(half))
    merged = bench_modules["bench_vs_authors"].main(
        ["--merge", *map(str, halves[::-1]), "--out", str(tmp_path / "merged.json")])
    assert merged["rows"] == data["rows"] and merged["speedup_fast"] == data["speedup_fast"]
    assert merged["repeats"] == 2 and len(merged["merged_from"]) == 2


def test_bench_fast_quality_judges_against_the_spread(bench_modules):
    bfq = bench_modules["bench_fast_quality"]
    a = {"ssim": torch.tensor([0.8, 0.6]), "silhouette_iou": torch.tensor([0.7, 0.7]),
         "part_colour_error": torch.tensor([0.2, 0.3])}
    b = {"ssim": torch.tensor([0.7, 0.5]), "silhouette_iou": torch.tensor([0.7, 0.7]),
         "part_colour_error": torch.tensor([0.3, 0.3])}
    spread = bfq.seed_spread(a, b)
    # SSIM: means differ by 0.1, per-pair differences are constant (SEM 0): spread 0.1
    assert spread["ssim"] == pytest.approx(0.1) and spread["silhouette_iou"] == 0
    # part colour: mean difference 0.05, 2 SEM = 2 * std([-0.1, 0]) / sqrt(2) = 0.1
    assert spread["part_colour_error"] == pytest.approx(0.1)
    ref = {"ssim": 0.7, "silhouette_iou": 0.7, "part_colour_error": 0.25}
    row = bfq.judge({"means": {"ssim": 0.61, "silhouette_iou": 0.7, "part_colour_error": 0.34}},
                    ref, spread)
    assert row["within_spread"] is True
    # the colour error is lower-is-better: 0.36 is more than the spread above the reference
    worse = bfq.judge({"means": {"ssim": 0.9, "silhouette_iou": 0.8, "part_colour_error": 0.36}},
                      ref, spread)
    assert worse["within"] == {"ssim": True, "silhouette_iou": True, "part_colour_error": False}
    assert worse["within_spread"] is False


def test_bench_fast_quality_quick(bench_modules, tmp_path):
    data = run_quick(bench_modules["bench_fast_quality"], tmp_path)
    rep = data["report"]
    for row in rep["rows"] + data["selection"]["rows"]:
        assert row["unet_evals_per_image"] > 0 and set(row["within"]) == {
            "ssim", "silhouette_iou", "part_colour_error"}
        assert row["within_spread"] == all(row["within"].values())
    bf16 = next(r for r in rep["rows"] if r["name"].startswith("ddpm3_"))
    assert bf16["unet_evals_per_image"] == 9 and bf16["setting"]["autocast"] in ("bf16", "fp16")
    assert data[f"{data['autocast_candidate']}_default_within_spread"] == bf16["within_spread"]


def test_gpu_suite_without_a_gpu_skips_and_exits_0(bench_modules, tmp_path, capsys, monkeypatch):
    suite = bench_modules["gpu_suite"]
    monkeypatch.setattr(suite, "has_cuda", lambda: False)
    out = tmp_path / "gpu.json"
    assert suite.main(["--out", str(out)]) == 0
    assert "skipped" in capsys.readouterr().out and not out.exists()
    assert suite.main(["--dry-run"]) == 0
    printed = capsys.readouterr().out
    for name, _, _ in suite.SUITE:
        assert f"{name}.py --device cuda" in printed
    assert sum(limit for _, _, limit in suite.SUITE) <= suite.BUDGET_S == 480


def test_gpu_suite_arguments_parse_in_each_script(bench_modules, monkeypatch, tmp_path):
    """Each suite command's arguments are accepted by its script's parser (parsing only)."""
    import argparse

    class Parsed(Exception):
        pass

    original = argparse.ArgumentParser.parse_args

    def parse_only(self, args=None, namespace=None):
        original(self, args, namespace)  # an unknown option exits with status 2 here
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_only)
    suite = bench_modules["gpu_suite"]
    scripts = {name: bench_modules[name] for name, _, _ in suite.SUITE}
    for cmd in suite.commands(tmp_path):
        with pytest.raises(Parsed):
            scripts[cmd["script"]].main(cmd["argv"][2:])
    # bench_scaling: multi-process CPU launches, not a GPU bench; bench_fast_sampler: needs a
    # distilled student folder (--student), run on its own
    covered = set(scripts) | {"bench_scaling", "bench_fast_sampler"}
    assert {p.stem for p in BENCH.glob("bench_*.py")} <= covered


def test_the_fast_setting_is_the_measured_pick(monkeypatch):
    """speed.FAST_SETTING is bench_fast_quality.json's pick (its autocast as "auto"), and the
    pipeline with it evaluates the UNet as often as that measurement says, batch by batch."""
    from cfld.pipelines.speed import FAST_SETTING
    from conftest import make_tiny_pipeline

    stored = json.loads((BENCH / "results" / "bench_fast_quality.json").read_text())
    assert stored["fast_within_spread"] is True and stored["quick"] is False
    picked = dict(stored["fast_setting"])
    assert picked.pop("autocast") == stored["autocast_candidate"]
    ours = {k: list(v) if isinstance(v, tuple) else v for k, v in FAST_SETTING.items()}
    assert ours.pop("autocast") == "auto" and ours == picked
    pipe = make_tiny_pipeline()
    sizes: list[int] = []
    inner = pipe.model.predict_noise
    monkeypatch.setattr(pipe.model, "predict_noise",
                        lambda z, t, c: sizes.append(z.shape[0]) or inner(z, t, c))
    src = torch.rand(1, 3, pipe.model.source_size, pipe.model.source_size) * 2 - 1
    out = pipe(conditions=pipe.model.encode(src, torch.rand(1, 21, *pipe.pose_size)),
               output_type="latent", generator=torch.Generator().manual_seed(0),
               **{**FAST_SETTING, "autocast": None})
    assert out.unet_evals_per_image == stored["fast_unet_evals_per_image"] == 15
    assert out.shallow_unet_evals_per_image == stored["fast_shallow_unet_evals_per_image"] == 7
    # guided at 100 <= t <= 700: 901, 801, 701 and 1 run one branch, 601 … 101 three
    assert sizes == [1, 1, 1, 3, 3, 3, 3, 3, 3, 1]


def test_sampled_parts_per_part_metrics_hand_computed():
    """benchmarks/sampled_parts.py: each part's score is that part's mean-colour distance (the
    reports' erosion), NaN where the part is absent."""
    sys.path.insert(0, str(BENCH))
    try:
        import sampled_parts
    finally:
        sys.path.remove(str(BENCH))
    from cfld.metrics.scoring import PairBatch

    parts = torch.zeros(2, 128, 88, dtype=torch.long)
    parts[:, 20:60, 20:60] = 3  # top
    parts[0, 80:120, 20:60] = 6  # trousers, first image only
    gt = torch.zeros(2, 3, 128, 88)
    pred = gt.clone()
    pred[:, 0, 20:60, 20:60] = 0.3  # top off by 0.3 in red
    pred[0, 1, 80:120, 20:60] = 0.4  # trousers off by 0.4 in green
    batch = PairBatch(gt=gt, predictions={"model": pred}, parts=parts)
    scores = {m.name: m.fn(pred, batch) for m in sampled_parts.per_part_metrics()}
    top = torch.tensor([0.3, 0.3], dtype=torch.float64)
    torch.testing.assert_close(scores["part/torso/top"], top)
    assert scores["part/legs/bottom"][0].item() == pytest.approx(0.4)
    assert torch.isnan(scores["part/legs/bottom"][1]) and torch.isnan(scores["part/hands"]).all()
