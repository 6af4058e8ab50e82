"""Registry of the README's figures: each one names the stored result it comes from.

tests/test_readme_claims.py reads README.md and checks every entry below: the value at ``key``
in ``source`` (a JSON file under benchmarks/results/, or a ``live:`` source computed at test
time), formatted with ``fmt``, must be what the README shows at that place. In the STRICT
sections every number of every table cell (first column excepted: it names the row) must be
covered by an entry, or its column declared in QUOTED.

How to register a figure:

- a table cell:  ``Cell(section, row, column, source, key, fmt)`` — ``section`` is the text of
  a ``##`` heading, ``row`` a piece of the row's first cell (``"DDPM|25"``: pieces of its first
  cells, when the first cell repeats), ``column`` a piece of the column header, ``index`` the
  position among the cell's numbers ("0.67 / 0.74": 0 and 1);
  ``table`` (0, 1, ...) picks among the section's tables when a row label repeats.
- a number in prose:  ``Prose(section, text, source, key, fmt)`` — ``text`` is the sentence
  piece around the figure with ``{}`` where it goes; the README must contain it verbatim
  (spaces and line breaks normalised); section ``TOP`` is the introduction.
- ``key`` may end in ``[*]...``: the list over every item (or dict value); ``max_sci1`` formats
  its largest.
- ``key`` is a path into the JSON: ``a.b.c``, list items ``rows[0]``, or a list item picked by
  its fields ``rows[variant=ours_fp32]`` (``,`` joins conditions). ``fmt`` is a format string
  ("{:.3f}", "{:,}") or one of FORMATS ("sci1": 1.9e-7, "pct": 92 for 0.92, "tflop3": 2.394 for
  2.394e12 FLOP). ``scale`` multiplies the value first.

A new benchmark result: write it to benchmarks/results/<name>.json with the command, thread
count, CPU and load (benchmarks/common.py does), put its figures in the README, add one entry
per figure here, and run ``pytest tests/test_readme_claims.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOP = "(before the first section)"  # the introduction above ``## Set-up``
PARAMS = "The model (paper Fig. 2) and its parameter counts"
FIDELITY = "Fidelity to the authors' code"
SHIPPED = "The shipped small model"
PERF = "Performance"
SCALING = "Scaling out"
WEIGHTS = "Real weights"
FEW = "Few-step sampling (distillation)"

# Sections in which every number of a table cell must be registered.
STRICT_SECTIONS = (PARAMS, FIDELITY, PERF, SCALING, WEIGHTS, SHIPPED, FEW)

# (section, column piece) → why that column's numbers need no stored result.
QUOTED = {
    (FEW, "UNet evaluations"): "the sampler's setting: 3 per DDPM step (Eq. 7), 1 per student "
                               "step",
    (PARAMS, "paper"): "quoted from the paper's Table 1",
    (PERF, "steps"): "a setting of the run (the number of denoising steps asked for)",
    (PERF, "quoted from issue 19"): "measured side by side with the authors' code by the "
                                    "session that filed issue 19; not a result of benchmarks/",
    (WEIGHTS, "CFLD#37"): "quoted from CFLD issue 37: the authors' test script on their released "
                          "checkpoint",
    (WEIGHTS, "size"): "the publishers' files (fp32 parameter counts x 4 bytes)",
    (WEIGHTS, "source"): "identifiers (hub ids, repositories), not figures",
    (WEIGHTS, "licence"): "licence names (BSD-3-Clause), not figures",
    (WEIGHTS, "flag"): "flag names, not figures",
}


@dataclass(frozen=True)
class Cell:
    section: str
    row: str
    column: str
    source: str
    key: str
    fmt: str = "{}"
    index: int = 0
    table: int | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class Prose:
    section: str
    text: str
    source: str
    key: str
    fmt: str = "{}"
    scale: float = 1.0
    per: str | None = None  # a ratio: the value at ``key`` divided by the value at ``per``


def _sci(v: float, digits: int) -> str:
    if v == 0:
        return "0"
    mantissa, exp = f"{v:.{digits}e}".split("e")
    return f"{mantissa}e{int(exp)}"


FORMATS = {
    "sci0": lambda v: _sci(v, 0),
    "sci1": lambda v: _sci(v, 1),
    "pct": lambda v: f"{100 * v:.0f}",
    "int_commas": lambda v: f"{int(v):,}",
    "count": lambda v: str(len(v)),
    "met": lambda v: "met" if v else "NOT met",  # a target's flag
    "max_sci1": lambda v: _sci(max(v), 1),  # the largest of a list (a ``[*]`` key)
}


def format_value(value: Any, fmt: str, scale: float = 1.0) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and scale != 1.0:
        value = value * scale
    if fmt in FORMATS:
        return FORMATS[fmt](value)
    return fmt.format(value)


# ------------------------------------------------------------------------------ live sources
def _parameter_table(preset: str) -> dict[str, int]:
    import torch

    from cfld import CFLDModel
    from cfld.presets import get_preset

    with torch.device("meta"):
        return CFLDModel(**get_preset(preset).model).parameter_table()


LIVE = {"live:parameters/fashion_256": lambda: _parameter_table("fashion_256"),
        "live:parameters/synthetic": lambda: _parameter_table("synthetic")}


# ------------------------------------------------------------------------------ the registry
def _params() -> list:
    src = "live:parameters/fashion_256"
    col = "parameters"
    rows = {"source encoder": "source_encoder", "hybrid-granularity": "appearance_encoder",
            "perception-refined": "decoder", "pose adapter": "pose_adapter",
            "learnable unconditional": "uncond_prompt"}
    out = [Cell(PARAMS, r, col, src, k, "int_commas") for r, k in rows.items()]
    out += [Cell(PARAMS, "UNet H_N", col, src, "unet_trainable", "int_commas", 0),
            Cell(PARAMS, "UNet H_N", col, src, "unet_total", "int_commas", 1),
            Cell(PARAMS, "trainable total", col, src, "trainable_total", "int_commas")]
    return out


def _fidelity() -> list:
    src = "fidelity_official_tiny.json"
    rows = {"Swin features": "swin_features", "coarse prompt": "prompt_c",
            "3 pose residuals": "pose_residuals", "9 appearance biases": "appearance_biases",
            "(full conditions)": "noise_pred", "(learnable prompt": "noise_pred_learnable_prompt",
            "first guided": "sampling_first_guided_eps",
            "5 DDIM steps": "sampling_final_latent_ddim",
            "5 DDPM steps": "sampling_final_latent_ddpm"}
    out = []
    for r, k in rows.items():
        out.append(Cell(FIDELITY, r, "max relative", src, f"rows.{k}.max_rel_error", "sci1"))
        out.append(Cell(FIDELITY, r, "required", src, f"rows.{k}.required", "sci0"))
    out += [Prose(TOP, "reproduced to a relative error of at most {} in float32", src,
                  "rows[*].max_rel_error", "max_sci1"),
            Prose(FIDELITY, "`python benchmarks/fidelity.py --threads {}`", src,
                  "machine.torch_threads"),
            Cell(FIDELITY, "train mode", "max relative", src,
                 "rows.train_noise_pred.max_rel_error", "sci1", 0),
            Cell(FIDELITY, "train mode", "max relative", src,
                 "rows.train_loss.max_rel_error", "sci1", 1),
            Cell(FIDELITY, "train mode", "required", src, "rows.train_loss.required", "sci0")]
    return out


#: The quality columns of the 200-pair tables: (column header piece, JSON key, format).
QUALITY_COLS = (("SSIM", "model.ssim", "{:.4f}"), ("PSNR", "model.psnr", "{:.2f}"),
                ("silhouette IoU", "model.silhouette_iou", "{:.3f}"),
                ("LPIPS", "model.lpips", "{:.4f}"),
                ("part colour error", "model.part_colour_error", "{:.3f}"),
                ("swapped source", "swapped_source.part_colour_error", "{:.3f}"),
                ("true ÷ swapped", "part_colour_ratio_to_swapped", "{:.2f}"))


def _shipped() -> list:
    files = {"shipped, DDPM-50, people 90210": "shipped_model_quality.json",
             "shipped, DDPM-50 seed 1": "shipped_model_quality_seed1.json",
             "shipped, DDPM-20 (demo), people 90210": "shipped_model_quality_ddpm20.json",
             "shipped, DDPM-50, people 4242": "shipped_model_quality_people4242.json",
             "shipped, DDPM-20 (demo), people 4242": "shipped_model_quality_ddpm20_people4242.json"}
    cols = QUALITY_COLS
    out = [Cell(SHIPPED, row, col, src, key, fmt)
           for row, src in files.items() for col, key, fmt in cols]
    q, v1 = "shipped_model_quality.json", "v1/v1_shipped_model_quality.json"
    out += [Cell(SHIPPED, "copy the source", col, q, key.replace("model.", "copy_source."), fmt)
            for col, key, fmt in cols[:5]]
    out += [Cell(SHIPPED, "before (v1)", col, v1, key, fmt) for col, key, fmt in cols[:3]]
    v2 = "v2/v2_shipped_model_quality.json"  # the model this one replaced
    out += [Cell(SHIPPED, "v2 (previous)", col, v2, key, fmt) for col, key, fmt in cols]
    out.append(Cell(SHIPPED, "ground truth through", "silhouette IoU", q,
                    "ground_truth_through_model_size.silhouette_iou", "{:.3f}"))
    return out + _shipped_stage8()


def _few_step() -> list:
    """Both distilled students against the teacher's two DDPM-50 seeds (200 test pairs), and
    the validation figures they were chosen on."""
    cols = [c for c in QUALITY_COLS if c[0] not in ("PSNR", "true ÷ swapped")]  # not shown
    rows = {"teacher, DDPM-50, seed 0": "shipped_model_quality.json",
            "teacher, DDPM-50, seed 1": "shipped_model_quality_seed1.json",
            **{f"stage 1 (guidance), {k} step": f"distill/student_guidance300_lcm{k}.json"
               for k in (1, 2, 4, 8)},
            **{f"stage 2 (LCD, EMA target), {k} step":
               f"distill/student_lcd_ema400_lr1e-5_lcm{k}.json" for k in (1, 2, 4, 8)}}
    out = [Cell(FEW, row, col, src, key, fmt) for row, src in rows.items()
           for col, key, fmt in cols]
    val, key, f3 = "appearance/sampled_parts_student_{}_lcm4_people2024.json", \
        "results.own.model.part_colour_error", "{:.3f}"
    return out + [
        Prose(FEW, "part-colour error {} at LR 1e-5", val.format("lcd_ema400_lr1e-5"), key, f3),
        Prose(FEW, "and {} at LR 2e-5 after 400", val.format("lcd_ema400"), key, f3),
        Prose(FEW, "and {} when the\nLR 2e-5 run", val.format("lcd_ema1000"), key, f3),
        Prose(FEW, "the stage-1 student {} at 300", val.format("guidance300"), key, f3)]


def _shipped_stage8() -> list:
    """The sampled per-part figures and the stage-8 A/B (validation people 2024)."""
    v3, f3 = "appearance/sampled_parts_v3_people2024.json", "{:.3f}"
    pb = "appearance/sampled_parts_stage8_part_balance_people2024.json"
    plain = "appearance/sampled_parts_stage8_plain_people2024.json"
    eq7, none = "results.uc_down_full.model.", "results.none.model."
    return [
        Prose(SHIPPED, "part-colour error {} against", v3, none + "part_colour_error", f3),
        Prose(SHIPPED, "against {} at the same SSIM", v3, eq7 + "part_colour_error", f3),
        Prose(SHIPPED, "IoU ({} against 0.796)", v3, none + "silhouette_iou", f3),
        Prose(SHIPPED, "(DDPM-20, 48 pairs: 0.197 → {} /", plain, eq7 + "part_colour_error", f3),
        Prose(SHIPPED, "0.197 → 0.194 / {}),", pb, eq7 + "part_colour_error", f3),
        Prose(SHIPPED, "(SSIM 0.822 → {},", pb, eq7 + "ssim", f3),
        Prose(SHIPPED, "IoU 0.796 → {}).", pb, eq7 + "silhouette_iou", f3),
        Prose(SHIPPED, "the face scores {}, hands", v3, eq7 + "part/head/face", f3),
        Prose(SHIPPED, "hands {} and", v3, eq7 + "part/hands", f3),
        Prose(SHIPPED, "top, arms and trousers score {}, 0.114", v3, eq7 + "part/torso/top", f3),
        Prose(SHIPPED, "source the face\nscores {}:", v3,
              "results.uc_down_full.swapped_source.part/head/face", f3),
    ]


LIM, SMP, TRN, SQ = ("bench_limit.json", "bench_sampling.json", "bench_training.json",
                     "bench_sampler_quality.json")


CL = "bench_sampling_channels_last_full.json"


def _perf_vs_authors() -> list:
    """The authors'-loop table: 3 alternating repeats at full size (bench_vs_authors.json)."""
    src, bva = "bench_fast_quality.json", "bench_vs_authors.json"
    labels = {"authors' loop, exact attention, fp32": "authors_exact_fp32",
              "**authors' loop, fused attention, fp32 (the baseline)**": "authors_fused_fp32",
              "ours, fp32 (`autocast=None`)": "ours_fp32",
              "authors' loop, exact attention, bf16": "authors_exact_bf16",
              "authors' loop, fused attention, bf16": "authors_fused_bf16",
              "**ours, default (bf16 on this CPU)**": "ours_default",
              "ours, fast setting (end to end)": "ours_fast"}
    out: list = []
    for label, v in labels.items():
        row = f"rows[variant={v}]"
        out += [Cell(PERF, label, "UNet evaluations per image", bva, f"{row}.unet_evals_per_image"),
                Cell(PERF, label, "conditions s", bva, f"{row}.conditions_s", "{:.2f}"),
                Cell(PERF, label, "VAE decode s", bva, f"{row}.decode_s", "{:.1f}"),
                Cell(PERF, label, "per image s", bva, f"{row}.per_image_s", "{:.0f}"),
                Cell(PERF, label, "× the authors'", bva, f"vs_authors_fused_fp32.{v}", "{:.2f}")]
        if v != "ours_fast":
            out += [Cell(PERF, label, "one step s", bva, f"{row}.{k}", "{:.1f}", i)
                    for i, k in enumerate(("step_s", "step_s_min", "step_s_max"))]
    out += [Cell(PERF, "ours, fast setting (end to end)", "one step s", bva,
                 "rows[variant=ours_fast].run_s", "{:.0f}"),
            Cell(PERF, "ours, fast setting (end to end)", "one step s", bva,
                 "rows[variant=ours_fast].steps", "{}", 1),
            Cell(PERF, "ours, fast setting (end to end)", "UNet evaluations per image", bva,
                 "rows[variant=ours_fast].shallow_unet_evals_per_image", "{}", 1)]
    return out + [
        Prose(PERF, "configuration and {} alternating repeats", bva, "repeats"),
        Prose(PERF, "Load average {} at the start", bva, "machine.load_average_at_start[0]",
              "{:.2f}"),
        Prose(PERF, "and {} at the end;", bva, "load_average_at_end[0]", "{:.2f}"),
        Prose(PERF, "**Default: {}× the authors' fused", bva, "speedup_default", "{:.2f}"),
        Prose(PERF, "the ≥ 2× target is {}.**", bva, "met.speedup_default", "met"),
        Prose(PERF, "(fp32 {}×,", bva, "speedup_fp32", "{:.2f}"),
        Prose(PERF, "bf16 {}×), because", bva, "speedup_bf16_same_precision", "{:.2f}"),
        Prose(PERF, "(relative difference {} in fp32;", bva,
              "equality.authors_fused_fp32_vs_ours_fp32", "sci1"),
        Prose(PERF, "{} against the exact attention)", bva,
              "equality.authors_exact_fp32_vs_ours_fp32", "sci1"),
        Prose(PERF, "either: {} s per bf16 step", CL,
              "rows[variant=ours_bf16_channels_last].s_per_step", "{:.1f}"),
        Prose(PERF, "against {} s without them", CL, "rows[variant=ours_bf16].s_per_step",
              "{:.1f}"),
        Prose(PERF, "(medians of {} runs of 2 steps,", CL, "rows[variant=ours_bf16].runs"),
        Prose(PERF, "**Fast setting: {}× —", bva, "speedup_fast", "{:.2f}"),
        Prose(PERF, "the ≥ 5× target is {}**", bva, "met.speedup_fast", "met"),
        Prose(PERF, "{} cores of an AMD EPYC CPU", LIM, "machine.cpu_count"),
        Prose(PERF, "bf16, {} full UNet evaluations per image", src, "fast_unet_evals_per_image"),
        Prose(PERF, "(+{} shallow ones) instead of 150.", src,
              "fast_shallow_unet_evals_per_image")]


def _perf_fast_quality() -> list:
    """Quality of the fast setting and of bf16 on the shipped model (bench_fast_quality.json)."""
    src, rep = "bench_fast_quality.json", "report"
    rows = {"DDPM-50, bf16 autocast": "ddpm50_bf16", "fast setting, fp32": "ddpm10_gi100-700_dc2",
            "fast setting, bf16": "ddpm10_gi100-700_dc2_bf16"}
    metrics = {"SSIM": "ssim", "silhouette IoU": "silhouette_iou",
               "part-colour error": "part_colour_error"}
    out: list = []
    for col, m in metrics.items():
        out += [Cell(PERF, "seed 0 (the reference)", col, src, f"{rep}.ddpm50.means.{m}", "{:.3f}"),
                Cell(PERF, "seed 1000", col, src, f"{rep}.ddpm50_seed1000.{m}", "{:.3f}")]
        out += [Cell(PERF, r, col, src, f"{rep}.rows[name={n}].means.{m}", "{:.3f}")
                for r, n in rows.items()]
    evals = "UNet evaluations per image"
    out += [Cell(PERF, "seed 0 (the reference)", evals, src, f"{rep}.ddpm50.unet_evals_per_image"),
            Cell(PERF, "seed 1000", evals, src, f"{rep}.ddpm50.unet_evals_per_image")]
    out += [Cell(PERF, r, evals, src, f"{rep}.rows[name={n}].unet_evals_per_image")
            for r, n in rows.items()]
    out += [
        Prose(PERF, "on {} pairs of validation people", src, "selection.pairs"),
        Prose(PERF, "validation people (seed {})", src, "selection.people_seed"),
        Prose(PERF, "cheapest of its {} candidates", src, "selection.rows", "count"),
        Prose(PERF, "All {} were within it", src, "selection.rows", "count"),
        Prose(PERF, "report below is on {} pairs", src, "report.pairs"),
        Prose(PERF, "(seed {}). Every", src, "report.people_seed"),
        Prose(PERF, "The spread is {} SSIM", src, "report.spread.ssim", "{:.3f}"),
        Prose(PERF, "SSIM, {} IoU", src, "report.spread.silhouette_iou", "{:.3f}"),
        Prose(PERF, "IoU and {} part-colour error", src, "report.spread.part_colour_error",
              "{:.3f}"),
        Prose(PERF, "With {} pairs the spread is wide", src, "report.pairs"),
    ]
    return out


def _perf_compile() -> list:
    """torch.compile at the shipped model's size (bench_sampling_synthetic_compile.json)."""
    src = "bench_sampling_synthetic_compile.json"
    c, e, f = ("rows[variant=ours_bf16_compile]", "rows[variant=ours_bf16]",
               "rows[variant=ours_fp32]")
    return [
        Prose(PERF, "compiling took {} s of wall time", src, f"{c}.compile_s", "{:.0f}"),
        Prose(PERF, "(load average {} at the start)", src, "machine.load_average_at_start[0]",
              "{:.1f}"),
        Prose(PERF, "a compiled step took {} s against", src, f"{c}.s_per_step", "{:.2f}"),
        Prose(PERF, "against {} s eager (medians", src, f"{e}.s_per_step", "{:.2f}"),
        Prose(PERF, "and the last 4-step run {} s of CPU time", src, f"{c}.cpu_s", "{:.2f}"),
        Prose(PERF, "CPU time against {} s eager", src, f"{e}.cpu_s", "{:.2f}"),
        Prose(PERF, "at this size: {} s per step", src, f"{e}.s_per_step", "{:.2f}"),
        Prose(PERF, "per step against {} s in fp32", src, f"{f}.s_per_step", "{:.2f}"),
    ]


def _perf_machine() -> list:
    """The one-UNet-step paragraph's prose figures (bench_limit.json)."""
    lim = LIM
    return [
        Prose(PERF, "One guided UNet step (3 samples) is {} TFLOP", lim, "flops.step_flops",
              "{:.3f}", 1e-12),
        Prose(PERF, "The conditions are {} TFLOP, computed once", lim, "flops.encode_flops",
              "{:.3f}", 1e-12),
        Prose(PERF, "with {} torch thread (load", lim, "machine.torch_threads"),
        Prose(PERF, "(load average {} at the start)", lim, "machine.load_average_at_start[0]",
              "{:.1f}"),
        Prose(PERF, "a {}³ matmul timed in the same run", lim, "matmul_peak.fp32.n"),
        Prose(PERF, "`python benchmarks/bench_limit.py --threads {} --variants", lim,
              "machine.torch_threads"),
    ]


def _perf_limit() -> list:
    """One UNet step against the machine (bench_limit.json: medians of 3 runs)."""
    lim, out = LIM, []
    for r, p in (("**fp32**", "fp32"), ("bf16 autocast", "bf16")):
        sel = f"rows[precision={p},channels_last=false]"
        out += [Cell(PERF, r, "step s", lim, f"{sel}.step_s", "{:.1f}", 0),
                Cell(PERF, r, "step s", lim, f"{sel}.step_s_min", "{:.1f}", 1),
                Cell(PERF, r, "step s", lim, f"{sel}.step_s_max", "{:.1f}", 2),
                Cell(PERF, r, "achieved", lim, f"{sel}.achieved_tflops", "{:.3f}"),
                Cell(PERF, r, "matmul peak", lim, f"{sel}.peak_tflops", "{:.3f}"),
                Cell(PERF, r, "fraction of peak", lim, f"{sel}.fraction_of_peak", "pct")]
    out.append(Prose(PERF, "median of {} runs after a warm-up", lim,
                     "rows[precision=fp32,channels_last=false].step_s_runs", "count"))
    return out


def _perf_training() -> list:
    """Training memory (two stored runs) and the GPU estimate."""
    trn, out = TRN, []
    for r, c in (("fp32, UNet gradient checkpointing", "fp32_checkpointing"),
                 ("bf16 autocast, checkpointing", "bf16_checkpointing"),
                 ("fp32, no checkpointing", "fp32")):
        for src, col in ((trn, "(`bench_training.json`)"), ("bench_training_run1.json",
                                                              "(`bench_training_run1.json`)")):
            out.append(Cell(PERF, r, col, src, f"rows[config={c}].peak_rss_gb", "{:.2f}"))
    est = "gpu_estimate[basis=fp32_checkpointing]"
    est16 = "gpu_estimate[basis=bf16_checkpointing]"
    out += [
        Prose(PERF, "batch {} pair (2 UNet samples)", trn, "batch"),
        Prose(PERF, "{} trainable parameters, one", trn, "rows[0].params_trainable",
              "int_commas"),
        Prose(PERF, "run with {} torch threads, load", trn, "machine.torch_threads"),
        Prose(PERF, "load average {} at the start)", trn, "machine.load_average_at_start[0]",
              "{:.1f}"),
        Prose(PERF, "{} GB of fp32 weights", trn, f"{est}.weights_fp32_gb", "{:.2f}"),
        Prose(PERF, "{} GB of gradients", trn, f"{est}.grads_fp32_gb", "{:.2f}"),
        Prose(PERF, "{} GB of Adam state", trn, f"{est}.adam_states_gb", "{:.2f}"),
        Prose(PERF, "{} GB of fp16 weight copies", trn, f"{est}.fp16_weight_copies_gb", "{:.2f}"),
        Prose(PERF, "batch-1 activations, scaled ×{}", trn, f"{est}.target_batch"),
        Prose(PERF, "It comes to {}–", trn, f"{est}.total_gb_low", "{:.0f}"),
        Prose(PERF, "–{} GB when the activations are taken from the fp32", trn,
              f"{est}.total_gb", "{:.0f}"),
        Prose(PERF, "It comes to {}–", trn, f"{est16}.total_gb_low", "{:.0f}"),
        Prose(PERF, "–{} GB when they are taken from the bf16", trn, f"{est16}.total_gb", "{:.0f}"),
    ]
    return out


def _perf_samplers() -> list:
    """Fast samplers (bench_sampler_quality.json): the table and the pick from the validation
    people (top-level keys), the reported figures from the test people (``test``)."""
    sq, out = SQ, []
    out += [Prose(PERF, "`python benchmarks/bench_sampler_quality.py --threads {}`", sq,
                  "machine.torch_threads"),
            Prose(PERF, "on {} pairs of validation people", sq, "pairs"),
            Prose(PERF, "validation people ({} people, seed", sq, "held_out_people"),
            Prose(PERF, "people, seed {}) and *reported*", sq, "validation_people_seed"),
            Prose(PERF, "on {} pairs of other, test people", sq, "test.pairs"),
            Prose(PERF, "test people (seed {}), so the reported", sq, "test.people_seed")]
    table = [("DDPM (paper)", "ddpm", [50]), ("DDPM|10 / 15", "ddpm", [10, 15]),
             ("**DDPM**", "ddpm", [20]), ("DDPM|25", "ddpm", [25]),
             ("DDIM", "ddim", [10, 20]), ("DPM-Solver++", "dpm", [10, 20]),
             ("UniPC", "unipc", [10, 20])]
    for label, sampler, steps in table:
        for i, n in enumerate(steps):
            sel = f"rows[sampler={sampler},steps={n}]"
            out += [Cell(PERF, label, "steps", sq, f"{sel}.steps", "{}", i),
                    Cell(PERF, label, "UNet evaluations", sq, f"{sel}.unet_evals_per_image",
                         "{}", i),
                    Cell(PERF, label, "SSIM", sq, f"{sel}.ssim", "{:.3f}", i),
                    Cell(PERF, label, "silhouette IoU", sq, f"{sel}.iou", "{:.3f}", i)]
    ref, pick, demo = ("test.rows[sampler=ddpm,steps=50]", "test.rows[sampler=ddim,steps=10]",
                       "test.rows[sampler=ddpm,steps=20]")
    out += [
        Prose(PERF, "validation people is {} SSIM", sq, "seed_spread.ssim", "{:.4f}"),
        Prose(PERF, "SSIM and {} IoU. That is", sq, "seed_spread.iou", "{:.4f}"),
        Prose(PERF, "`cfld demo` uses): {}× fewer UNet calls than DDPM-50", sq,
              "rows[sampler=ddpm,steps=50].unet_evals_per_image", "{:.1f}",
              per="rows[sampler=ddpm,steps=20].unet_evals_per_image"),
        Prose(PERF, "spread, is DDIM-{} (", sq, "pick.steps"),
        Prose(PERF, "({}× fewer UNet calls; it", sq, "pick.speedup_vs_ddpm50", "{:.0f}"),
        Prose(PERF, "SSIM, {} against", sq, "rows[sampler=ddim,steps=10].ssim", "{:.3f}"),
        Prose(PERF, "against {}). On the test", sq, "rows[sampler=ddpm,steps=10].ssim", "{:.3f}"),
        Prose(PERF, "DDPM-50 scores {} SSIM and", sq, f"{ref}.ssim", "{:.3f}"),
        Prose(PERF, "SSIM and {} IoU (spread", sq, f"{ref}.iou", "{:.3f}"),
        Prose(PERF, "(spread {} /", sq, "test.seed_spread.ssim", "{:.4f}"),
        Prose(PERF, "/ {}): the pick", sq, "test.seed_spread.iou", "{:.4f}"),
        Prose(PERF, "the pick DDIM-10 scores {} and", sq, f"{pick}.ssim", "{:.3f}"),
        Prose(PERF, "and {}, **outside**", sq, f"{pick}.iou", "{:.3f}"),
        Prose(PERF, "DDPM-20 {} and", sq, f"{demo}.ssim", "{:.3f}"),
        Prose(PERF, "0.794 and {}, inside it", sq, f"{demo}.iou", "{:.3f}"),
    ]
    return out


def _scaling() -> list:
    """Scaling out (bench_scaling.json, 3 launches each): speed with 1 and 2 processes, what
    batch invariance costs, the memory estimate."""
    src, out = "bench_scaling.json", []
    out += [Prose(SCALING, "load average {} at the\nstart", src,
                  "machine.load_average_at_start[0]", "{:.1f}"),
            Prose(SCALING, "Each configuration was launched {} times", src, "settings.repeats"),
            Prose(SCALING, "total batch of {} pairs", src, "settings.total_batch"),
            Prose(SCALING, "DDPM with {} steps", src, "settings.gen_steps"),
            Prose(SCALING, "steps, on\n{} pairs", src, "settings.pairs"),
            Prose(SCALING, "(load average {},", "v1/bench_scaling_loaded.json",
                  "machine.load_average_at_start[0]", "{:.1f}")]
    for label, (procs, threads) in {"1 × 1": (1, 1), "2 × 1": (2, 1), "1 × 2": (1, 2)}.items():
        row = f"rows[processes={procs},threads_per_process={threads}]"
        for col, part, stat in (("training steps/s", "train", "steps_per_s_stats"),
                                ("generated images/s", "generate", "images_per_s_stats")):
            out += [Cell(SCALING, label, col, src, f"{row}.{part}.{stat}.{key}", "{:.2f}", i)
                    for i, key in enumerate(("median", "spread[0]", "spread[1]"))]
        out.append(Cell(SCALING, label, "pixel values", src,
                        f"{row}.generate.pixel_values_differing"))
    two, one2 = "rows[processes=2,threads_per_process=1]", "rows[processes=1,threads_per_process=2]"
    bi = "batch_invariance."
    out += [Prose(SCALING, "Two processes trained {}×", src, f"{two}.train_speedup_vs_first",
                  "{:.2f}"),
            Prose(SCALING, "and generated {}× as fast", src, f"{two}.generate_speedup_vs_first",
                  "{:.2f}"),
            Prose(SCALING, "({} against 1.52 steps/s", src, f"{one2}.train.steps_per_s", "{:.2f}"),
            Prose(SCALING, "(1.36 against {} images/s)", src, f"{two}.generate.images_per_s",
                  "{:.2f}"),
            Prose(SCALING, "`--batch-size 4`, {} launches each)", src, "settings.repeats"),
            Prose(SCALING, "each): {} (", src, f"{bi}batch_invariant.images_per_s", "{:.2f}"),
            Prose(SCALING, "against\n{} (", src, f"{bi}no_batch_invariant.images_per_s", "{:.2f}"),
            Prose(SCALING, "without, {}× slower", src, f"{bi}slowdown", "{:.2f}")]
    mem = "memory_per_gpu_at_authors_batch.estimates"
    out += [Prose(SCALING, "checkpointing need {}–", src,
                  f"{mem}.28.fp32_checkpointing.total_gb_low", "{:.0f}"),
            Prose(SCALING, "–{} GB per GPU, that", src,
                  f"{mem}.28.fp32_checkpointing.total_gb", "{:.0f}"),
            Prose(SCALING, "is estimated at {}–", src, f"{mem}.7.fp32_checkpointing.total_gb_low",
                  "{:.0f}"),
            Prose(SCALING, "–{} GB.", src, f"{mem}.7.fp32_checkpointing.total_gb", "{:.0f}")]
    return out


CLAIMS: list[Cell | Prose] = [*_params(), *_fidelity(), *_shipped(), *_few_step(),
                              *_perf_vs_authors(), *_perf_fast_quality(),
                              *_perf_compile(), *_perf_machine(),
                              *_perf_limit(), *_perf_training(), *_perf_samplers(),
                              *_scaling()]
