"""The authors' sampling loop, re-created from the fact sheet, against CFLDPipeline at full size.

The authors' code itself needs CUDA and xformers (fidelity §10), so this script re-creates its
sampling loop (``pose_transfer_test.py``'s default ``uc_down_full`` sampler, written by us from
the facts of fidelity §7) on our networks, with the procedure that decides its cost:

* the conditions once per batch (Swin-B → φ_A biases and H_D prompt, H_P pose maps), the prompt
  returned as [learnable vector; c] (fidelity §7.1);
* one batched 3-branch UNet call per step: (P, 0, 0), (P, pose, 0), (C, pose, A), built anew at
  every step from deep copies of the pose-map list and the bias dict (the official UNet pops from
  them; fidelity §7.3 and §12 item 8);
* attention ``exact``: the score matrix written out (softmax(q kᵀ/√d) v, no fused kernel), as
  the authors' code runs without xformers; or ``fused``: PyTorch SDPA in its place (on a GPU the
  authors run xformers' fused kernel, so ``fused`` is the fair baseline);
* fp32, and bf16 autocast where the CPU has bf16 instructions (the authors use fp16 autocast on
  GPUs).

Against it: our pipeline at its default (``ours_default``: mixed precision, bf16 autocast on a
CPU with bf16 instructions, fp16 on CUDA), in fp32 (``ours_fp32``), and at the recommended fast
setting (``bench_fast_quality.json``'s pick: fewer DDPM steps + guidance interval + DeepCache +
bf16), whose quality flag comes from that script's measurement on the shipped model.

A full-size guided step takes seconds to tens of seconds on one CPU thread, so the step variants
run ``--steps`` steps (default 2) of the 50-step schedule per repeat, the repeats alternating
between variants (odd repeats in reverse order); the figure per image at 50 DDPM steps is
*extrapolated*: median conditions time + 50 × median step time + median VAE decode time.  The
fast setting runs end to end (all its steps), plus the decode.

    python benchmarks/bench_vs_authors.py --threads 1            # full size, 2 steps, 3 repeats
    python benchmarks/bench_vs_authors.py --quick                # tiny preset (CI smoke test)
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import common
from cfld.pipelines import speed
from cfld.pipelines.guidance import GuidanceScales

PAPER_STEPS = 50
AUTHORS_EVALS = 3 * PAPER_STEPS  # one 3-branch batch per step
TARGETS = {"speedup_default": 2.0, "speedup_fast": 5.0}
#: Used when bench_fast_quality.json is missing (then the quality flag is null: not measured).
FALLBACK_FAST = {"num_inference_steps": 20, "guidance_interval": [100, 700],
                 "deep_cache_interval": 2, "autocast": "bf16"}
EQUAL_TOL = 1e-5


class _Stop(Exception):
    """Raised from the step callback to end a pipeline run after ``steps`` steps."""


# --------------------------------------------------------------------------- attention
def math_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                   is_causal: bool = False, scale: float | None = None,
                   **_: Any) -> torch.Tensor:
    """softmax(q kᵀ·scale + mask) v with the score matrix materialised (no fused kernel)."""
    if is_causal or dropout_p:
        raise ValueError("math_attention: causal masks and dropout are not used by CFLD")
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(query, key.transpose(-2, -1)) * scale
    if attn_mask is not None:
        scores = (scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool
                  else scores + attn_mask)
    return torch.matmul(scores.float().softmax(-1).to(value.dtype), value)


@contextlib.contextmanager
def attention(kind: str) -> Iterator[None]:
    """``exact``: every ``F.scaled_dot_product_attention`` call (UNet, Swin, H_D, φ_A) runs
    :func:`math_attention` instead; ``fused``: unchanged (SDPA)."""
    if kind not in ("exact", "fused"):
        raise ValueError(f"attention must be 'exact' or 'fused', got {kind!r}")
    original = F.scaled_dot_product_attention
    if kind == "exact":
        F.scaled_dot_product_attention = math_attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


# --------------------------------------------------------------------------- the authors' loop
def authors_conditions(model, source: torch.Tensor, pose: torch.Tensor) -> dict[str, Any]:
    """Conditions once per batch, as the authors' ``build_model`` returns them (fidelity §7.1):
    prompt [learnable vector ×B; c] (2B), the pose-map list and the bias dict, in fp32."""
    feats = list(model.source_encoder(source))
    biases = model.appearance_encoder(feats[:-1])
    prompt = model.decoder(feats[-1])
    maps = list(model.pose_adapter(pose))
    uncond = model.uncond_prompt.to(prompt.dtype).expand(source.shape[0], -1, -1)
    return {"prompt": torch.cat([uncond, prompt]).float(), "pose": [m.float() for m in maps],
            "biases": {k: v.float() for k, v in biases.items()}}


def authors_step(model, scheduler, z: torch.Tensor, t: torch.Tensor, cond: dict[str, Any],
                 amp: torch.dtype | None, generator: torch.Generator,
                 scales: GuidanceScales = GuidanceScales()) -> torch.Tensor:  # noqa: B008
    """One step of the ``uc_down_full`` sampler: one UNet call on the 3B batch, Eq. (7)."""
    p_uncond, p_cond = cond["prompt"].chunk(2)
    maps = copy.deepcopy(cond["pose"])  # the official UNet pops from this list
    biases = copy.deepcopy(cond["biases"])
    pose3 = [torch.cat([torch.zeros_like(m), m, m]) for m in maps]
    bias3 = {k: torch.cat([torch.zeros_like(v), torch.zeros_like(v), v])
             for k, v in biases.items()}
    with speed.autocast_context(z.device, amp):
        model._set_biases(bias3)  # the query bias of fidelity §2.3 (set on our processors)
        eps = model.unet(torch.cat([z] * 3), t,
                         encoder_hidden_states=torch.cat([p_uncond, p_uncond, p_cond]),
                         down_intrablock_additional_residuals=pose3, return_dict=False)[0]
    e_uc, e_down, e_full = eps.float().chunk(3)
    eps = e_uc + scales.down * (e_down - e_uc) + scales.full * (e_full - e_down)
    return scheduler.step(eps, t, z, generator=generator).prev_sample


def run_authors(pipe, spec: dict[str, Any], source, pose, z0, steps: int,
                seed: int) -> dict[str, Any]:
    """Conditions + the first ``steps`` steps of the 50-step schedule, each timed."""
    model, scheduler = pipe.model, pipe.scheduler
    amp = speed.resolve_autocast(spec["autocast"], z0.device)
    g = torch.Generator().manual_seed(seed)
    with attention(spec["attention"]), torch.no_grad():
        t0, c0 = time.perf_counter(), time.process_time()
        with speed.autocast_context(z0.device, amp):
            cond = authors_conditions(model, source, pose)
        common.sync(z0.device)
        cond_s, cond_cpu = time.perf_counter() - t0, time.process_time() - c0
        scheduler.set_timesteps(PAPER_STEPS)
        z, step_s, step_cpu = z0.clone(), [], []
        for t in scheduler.timesteps[:steps]:
            t1, c1 = time.perf_counter(), time.process_time()
            z = authors_step(model, scheduler, z, t, cond, amp, g)
            common.sync(z0.device)
            step_s.append(time.perf_counter() - t1)
            step_cpu.append(time.process_time() - c1)
    model._set_biases(None)
    return {"conditions_s": cond_s, "step_s": step_s, "latents": z,
            "conditions_cpu_s": cond_cpu, "step_cpu_s": step_cpu}


# --------------------------------------------------------------------------- our pipeline
def run_ours(pipe, spec: dict[str, Any], source, pose, z0, steps: int | None,
             seed: int) -> dict[str, Any]:
    """Our pipeline with ``spec["kwargs"]``: stopped after ``steps`` steps of the 50-step schedule
    (``None``: the whole run).  Conditions time = call start → end of the condition encode."""
    marks: list[float] = []
    cpu: list[float] = []
    final: list[torch.Tensor] = []
    inner = pipe.model.encode

    def encode(*a: Any, **k: Any) -> Any:
        out = inner(*a, **k)
        common.sync(z0.device)
        marks.append(time.perf_counter())
        cpu.append(time.process_time())
        return out

    def on_step(p, i, t, d):
        common.sync(z0.device)
        marks.append(time.perf_counter())
        cpu.append(time.process_time())
        final[:] = [d["latents"]]
        if steps is not None and i + 1 >= steps:
            raise _Stop

    kwargs = dict(spec.get("kwargs", {}))
    n_steps = kwargs.pop("num_inference_steps", PAPER_STEPS)
    object.__setattr__(pipe.model, "encode", encode)
    out = None
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        out = pipe(source_image=source, target_pose=pose, num_inference_steps=n_steps,
                   latents=z0, generator=torch.Generator().manual_seed(seed),
                   output_type="latent", callback_on_step_end=on_step, **kwargs)
    except _Stop:
        pass
    finally:
        object.__delattr__(pipe.model, "encode")
    end, cend = time.perf_counter(), time.process_time()
    step_s = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    row = {"conditions_s": marks[0] - t0, "step_s": step_s, "latents": final[0],
           "total_s": end - t0, "conditions_cpu_s": cpu[0] - c0, "total_cpu_s": cend - c0,
           "step_cpu_s": [b - a for a, b in zip(cpu, cpu[1:], strict=False)]}
    if out is not None:
        row["unet_evals_per_image"] = out.unet_evals_per_image
        row["shallow_unet_evals_per_image"] = out.shallow_unet_evals_per_image
    return row


# --------------------------------------------------------------------------- plan
def fast_setting(quick: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fast setting (pipeline kwargs) and where it and its quality flag come from."""
    path = common.RESULTS_DIR / "bench_fast_quality.json"
    if quick:
        return ({"num_inference_steps": 2, "guidance_interval": [0, 500],
                 "deep_cache_interval": 2, "autocast": "auto"},
                {"quality_within_spread": None, "source": "quick: not measured"})
    if path.is_file():
        q = json.loads(path.read_text())
        if q.get("fast_setting"):
            return dict(q["fast_setting"]), {
                "quality_within_spread": bool(q["fast_within_spread"]),
                "bf16_default_within_spread": q.get("bf16_default_within_spread"),
                "source": "benchmarks/results/bench_fast_quality.json",
                "model": q.get("model"), "measured_utc": q["machine"]["date_utc"],
                "report_pairs": q["report"]["pairs"], "selection_pairs": q["selection"]["pairs"],
                "report_people_seed": q["report"]["people_seed"]}
    return dict(FALLBACK_FAST), {"quality_within_spread": None,
                                 "source": "bench_fast_quality.json missing: not measured"}


def variant_specs(low: str | None, fast: dict[str, Any],
                  default_amp: str | None) -> list[dict[str, Any]]:
    """The timed configurations: fp32, and ``low`` (bf16 on a CPU with bf16 instructions, fp16
    on CUDA, None: fp32 only).  Our pipeline at ``low`` runs with no precision argument (its
    default, ``ours_default``) when the default resolves to ``low`` on this machine; where the
    default is fp32, :func:`collect` reports the ``ours_fp32`` run as the default one."""
    precisions = [None, low] if low else [None]
    out = []
    for amp in precisions:
        tag = amp or "fp32"
        for attn in ("exact", "fused"):
            out.append({"name": f"authors_{attn}_{tag}", "kind": "authors", "attention": attn,
                        "autocast": amp})
        if amp is not None and amp == default_amp:  # the default: called without the argument
            out.append({"name": "ours_default", "kind": "ours", "autocast": amp, "kwargs": {}})
        else:
            out.append({"name": f"ours_{tag}", "kind": "ours", "autocast": amp,
                        "kwargs": {"autocast": amp}})
    out.append({"name": "ours_fast", "kind": "fast", "autocast": fast.get("autocast"),
                "kwargs": fast})
    return out


def summarise(name: str, runs: list[dict[str, Any]], decode: dict[str, float],
              kind: str) -> dict[str, Any]:
    """Medians and spreads of one variant's repeats, and the per-image figure."""
    cond = [r["conditions_s"] for r in runs]
    warm = len(runs[0]["step_s"]) >= 2 and kind != "fast"  # leave the very first step out
    steps = [s for i, r in enumerate(runs) for j, s in enumerate(r["step_s"])
             if i or j or not warm]
    row: dict[str, Any] = {
        "variant": name, "repeats": len(runs),
        "conditions_s": common.median(cond), "conditions_s_min": min(cond),
        "conditions_s_max": max(cond),
        "step_s": common.median(steps), "step_s_min": min(steps), "step_s_max": max(steps),
        "step_s_all": steps, "first_step_s": runs[0]["step_s"][0], "decode_s": decode["median"],
        "peak_rss_delta_gb": max(r["rss_delta_gb"] for r in runs)}
    # process CPU time: less sensitive than wall time to other processes on a shared machine
    cond_cpu = common.median([r["conditions_cpu_s"] for r in runs])
    steps_cpu = [s for i, r in enumerate(runs) for j, s in enumerate(r["step_cpu_s"])
                 if i or j or not warm]
    row.update({"conditions_cpu_s": cond_cpu, "step_cpu_s": common.median(steps_cpu)})
    if "cuda_max_allocated_gb" in runs[0]:
        row["cuda_max_allocated_gb"] = max(r["cuda_max_allocated_gb"] for r in runs)
    if kind == "fast":
        totals = [r["total_s"] for r in runs]
        row.update({"run_s": common.median(totals), "run_s_min": min(totals),
                    "run_s_max": max(totals), "steps": len(runs[0]["step_s"]),
                    "unet_evals_per_image": runs[0]["unet_evals_per_image"],
                    "shallow_unet_evals_per_image": runs[0]["shallow_unet_evals_per_image"],
                    "per_image_s": common.median(totals) + decode["median"],
                    "per_image_cpu_s": common.median([r["total_cpu_s"] for r in runs])
                    + decode["cpu_median"],
                    "how": "measured end to end (all steps) + median decode"})
    else:
        row.update({"steps": PAPER_STEPS, "unet_evals_per_image": AUTHORS_EVALS,
                    "per_image_s": row["conditions_s"] + PAPER_STEPS * row["step_s"]
                    + decode["median"],
                    "per_image_cpu_s": cond_cpu + PAPER_STEPS * row["step_cpu_s"]
                    + decode["cpu_median"],
                    "how": "extrapolated: conditions + 50 x median step + decode"})
    return row


# --------------------------------------------------------------------------- main
def time_decode(pipe, z: torch.Tensor, amp: str | None) -> tuple[float, float]:
    """(wall, CPU) seconds of one VAE decode of ``z`` (in ``amp``)."""
    dtype = speed.resolve_autocast(amp, z.device)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad(), speed.autocast_context(z.device, dtype):
        pipe.decode_latents(z)
    common.sync(z.device)
    return time.perf_counter() - t0, time.process_time() - c0


def run_one(pipe, spec: dict[str, Any], source, pose, z0, steps: int,
            seed: int) -> dict[str, Any]:
    """One repeat of one variant, with its peak RSS above the level at its start."""
    cuda = z0.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    with common.PeakRSS(interval=0.05) as mem:
        if spec["kind"] == "authors":
            row = run_authors(pipe, spec, source, pose, z0, steps, seed)
        else:
            row = run_ours(pipe, spec, source, pose, z0, None if spec["kind"] == "fast"
                           else steps, seed)
    common.sync(z0.device)
    row["rss_delta_gb"] = mem.delta / 2**30
    if cuda:
        row["cuda_max_allocated_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def speedups(rows: dict[str, dict[str, Any]], low: str | None) -> dict[str, Any]:
    """Per-image ratios against the authors' fused loop (fp32; and at equal precision); a
    ratio whose configuration was not run is left out."""
    base = rows["authors_fused_fp32"]["per_image_s"]
    cpu = rows["authors_fused_fp32"]["per_image_cpu_s"]
    out: dict[str, Any] = {
        "cpu_time": {name: cpu / r["per_image_cpu_s"] for name, r in rows.items()},
        "cpu_time_note": "authors_fused_fp32's per-image CPU seconds / each variant's",
        "vs_authors_fused_fp32": {name: base / r["per_image_s"] for name, r in rows.items()}}
    t = {name: r["per_image_s"] for name, r in rows.items()}
    pairs = {"speedup_default": ("authors_fused_fp32", "ours_default"),
             "speedup_fp32": ("authors_fused_fp32", "ours_fp32"),
             "speedup_fast": ("authors_fused_fp32", "ours_fast"),
             "speedup_exact_attention_vs_fused_fp32": ("authors_exact_fp32", "authors_fused_fp32")}
    if low:
        ours_low = f"ours_{low}" if f"ours_{low}" in rows else "ours_default"
        pairs.update({f"speedup_{low}_vs_authors_fused_fp32": ("authors_fused_fp32", ours_low),
                      f"speedup_{low}_same_precision": (f"authors_fused_{low}", ours_low),
                      "speedup_fast_same_precision": (f"authors_fused_{low}", "ours_fast")})
    out.update({k: t[a] / t[b] for k, (a, b) in pairs.items() if a in t and b in t})
    return out


def equality(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The authors' loops' latents after the first repeat against ours in fp32."""
    first = {k: v[0]["latents"] for k, v in runs.items()}
    out: dict[str, Any] = {"tolerance": EQUAL_TOL}
    for name in ("authors_fused_fp32", "authors_exact_fp32"):
        if name in first:
            out[f"{name}_vs_ours_fp32"] = common.rel_error(first[name], first["ours_fp32"])
    out["same_outputs"] = all(v <= EQUAL_TOL for k, v in out.items() if k.startswith("authors_"))
    return out


def collect(specs: list[dict[str, Any]], runs: dict[str, list[dict[str, Any]]],
            decode: dict[str, list[tuple[float, float]]], low: str | None) -> dict[str, Any]:
    """Rows and speed-ups from the repeats so far."""
    dec = {k: {"median": common.median([w for w, _ in v]), "min": min(w for w, _ in v),
               "max": max(w for w, _ in v), "cpu_median": common.median([c for _, c in v])}
           for k, v in decode.items() if v}
    rows = {s["name"]: summarise(s["name"], runs[s["name"]],
                                 dec[low if s["autocast"] and low else "fp32"], s["kind"])
            for s in specs}
    if "ours_default" not in rows:  # fp32 is the default here: the fp32 run is the default run
        rows["ours_default"] = {**rows["ours_fp32"], "variant": "ours_default"}
    return {"decode_s": dec, "rows": list(rows.values()),
            "unet_evals_per_image": {"authors": AUTHORS_EVALS,
                                     "default": rows["ours_default"]["unet_evals_per_image"],
                                     "fast": rows["ours_fast"]["unet_evals_per_image"]},
            "shallow_unet_evals_per_image_fast":
                rows["ours_fast"]["shallow_unet_evals_per_image"],
            **speedups(rows, low)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="steps per repeat (default 2)")
    p.add_argument("--repeats", type=int, default=None, help="alternating repeats (default 3)")
    p.add_argument("--variants", default=None, help="comma-separated subset (default: all)")
    p.add_argument("--first-repeat", type=int, default=0,
                   help="index of the first repeat (its parity sets the order): with --merge, "
                        "lets several processes share the repeats")
    p.add_argument("--decode-once", action="store_true", help="time the decode in the last "
                   "repeat only")
    p.add_argument("--merge", nargs="+", type=Path, default=None,
                   help="combine the raw runs of these result files (written with the same "
                        "settings and --first-repeat 0, 1, ...) into --out; measures nothing")
    args = p.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out or common.RESULTS_DIR / "bench_vs_authors.json")
    device = common.setup(args, "bench_vs_authors")
    steps, repeats = args.steps or 2, args.repeats or (1 if args.quick else 3)
    low = "fp16" if device.type == "cuda" else ("bf16" if speed.cpu_supports_bf16() else None)
    fast, quality = fast_setting(args.quick)
    if device.type == "cuda" and fast.get("autocast"):
        fast["autocast"] = "fp16"  # the CUDA half type (its quality was measured in bf16)
    resolved = speed.resolve_autocast(speed.DEFAULT_AUTOCAST, device)
    default_amp = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(resolved)
    specs = variant_specs(low, fast, default_amp)
    if args.variants:  # the speed-ups need the authors' fused fp32 loop, ours_fp32 and default
        keep = set(args.variants.split(",")) | {"authors_fused_fp32", "ours_fp32", "ours_default",
                                                "ours_fast"}
        specs = [s for s in specs if s["name"] in keep]
    common.log(f"building {args.preset} (random weights)")
    pipe = common.build_pipeline(args.preset, device, args.seed)
    source, pose = (x.to(device) for x in common.make_inputs(pipe, 1, args.seed))
    z0 = common.initial_latents(pipe, 1, args.seed).to(device)
    result: dict[str, Any] = {
        "benchmark": "bench_vs_authors", "preset": args.preset, "quick": args.quick,
        "batch": 1, "steps_timed": steps, "repeats": repeats, "paper_steps": PAPER_STEPS,
        "variants": [s["name"] for s in specs],
        "extrapolation": (f"per image at {PAPER_STEPS} DDPM steps = median conditions time + "
                          f"{PAPER_STEPS} x median step time (each variant timed for {steps} "
                          f"step(s) of the {PAPER_STEPS}-step schedule per repeat, {repeats} "
                          "alternating repeats; with 2 or more steps per repeat the very first "
                          "step is left out as warm-up) + median VAE decode; the fast setting "
                          "is timed end to end"),
        "baseline": "authors_fused_fp32 (the authors' loop with SDPA in place of xformers, fp32)",
        "default_setting": (f"CFLDPipeline defaults: DDPM-50, uc_down_full, autocast "
                            f"{speed.DEFAULT_AUTOCAST!r} = {default_amp or 'fp32'} here"),
        "default_precision": default_amp or "fp32",
        "fast_setting": json.dumps(fast), "fast_setting_kwargs": fast,
        "quality": quality, "quality_within_spread": quality["quality_within_spread"],
        "low_precision": low, "cpu_bf16": speed.cpu_supports_bf16(), "targets": TARGETS,
        "machine": common.machine_info(device)}
    if device.type != "cuda":
        result["note"] = common.NO_GPU_NOTE
    runs: dict[str, list[dict[str, Any]]] = {s["name"]: [] for s in specs}
    decode: dict[str, list[tuple[float, float]]] = {"fp32": [], **({low: []} if low else {})}
    result["specs"], result["first_repeat"] = specs, args.first_repeat
    for r in range(args.first_repeat, args.first_repeat + repeats):
        for spec in specs if r % 2 == 0 else specs[::-1]:
            common.log(f"repeat {r}: {spec['name']}")
            runs[spec["name"]].append(run_one(pipe, spec, source, pose, z0, steps, args.seed))
        if not args.decode_once or r == args.first_repeat + repeats - 1:
            for amp in decode:
                decode[amp].append(time_decode(pipe, z0, None if amp == "fp32" else amp))
        result["equality"] = equality(runs)
        result["raw"] = {k: [{f: x for f, x in run.items() if f != "latents"} for run in v]
                         for k, v in runs.items()}
        result["raw_decode"] = decode
        if all(decode.values()):
            result.update(collect(specs, runs, decode, low))
        result["met"] = {k: result[k] >= v for k, v in TARGETS.items() if k in result}
        result["repeats_done"] = r + 1 - args.first_repeat
        result["partial"] = result["repeats_done"] < repeats
        result.pop("load_average_at_end", None)
        result.pop("peak_memory", None)
        path = common.write_json(result, args.out)  # after every repeat: a long run keeps its data
    print(common.table(result["rows"], ["variant", "conditions_s", "step_s", "step_s_min",
                                        "step_s_max", "decode_s", "per_image_s",
                                        "unet_evals_per_image"]))
    print({k: result.get(k) for k in ("speedup_default", "speedup_fast",
                                      "speedup_fast_same_precision", "quality_within_spread")},
          f"→ {path}")
    return result


def merge(paths: list[Path], out: Path) -> dict[str, Any]:
    """One result from the raw runs of several (partial) results of the same settings: the
    runs in repeat order, the equality check of the file that ran repeat 0."""
    parts = sorted((json.loads(Path(p).read_text()) for p in paths),
                   key=lambda d: d["first_repeat"])
    base = {k: v for k, v in parts[0].items() if k not in ("peak_memory", "load_average_at_end")}
    specs = max((d["specs"] for d in parts), key=len)  # a part may have run fewer variants
    runs = {s["name"]: [r for d in parts for r in d["raw"].get(s["name"], [])] for s in specs}
    base["equality"] = {k: v for d in parts[::-1] for k, v in d["equality"].items()}
    base["equality"]["same_outputs"] = all(d["equality"]["same_outputs"] for d in parts)
    base["repeats_per_variant"] = {k: len(v) for k, v in runs.items()}
    decode = {k: [tuple(x) for d in parts for x in d["raw_decode"][k]]
              for k in base["raw_decode"]}
    base.update(collect(specs, runs, decode, base["low_precision"]))
    base.update({"raw": runs, "raw_decode": decode, "repeats": len(runs["ours_fp32"]),
                 "repeats_done": len(runs["ours_fast"]), "partial": False,
                 "merged_from": [{"command": d["machine"]["command"],
                                  "first_repeat": d["first_repeat"],
                                  "repeats_done": d["repeats_done"],
                                  "load_average_at_start": d["machine"]["load_average_at_start"],
                                  "load_average_at_end": d.get("load_average_at_end"),
                                  "peak_memory": d.get("peak_memory")} for d in parts]})
    base["extrapolation"] = base["extrapolation"].replace(
        f"{parts[0]['repeats']} alternating repeats",
        f"{base['repeats']} alternating repeats (shared by {len(parts)} processes that ran at the "
        "same time, each alternating the order)")
    base["met"] = {k: base[k] >= v for k, v in TARGETS.items() if k in base}
    base["peak_memory"] = max((d["peak_memory"] for d in parts if d.get("peak_memory")),
                              key=lambda m: m["peak_rss_gb"])
    base["machine"]["command"] = " && ".join(d["machine"]["command"] for d in parts) + (
        " && python benchmarks/bench_vs_authors.py --merge " + " ".join(map(str, paths)))
    common.write_json(base, out)
    return base


if __name__ == "__main__":
    main()
