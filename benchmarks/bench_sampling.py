"""Sampling speed: a naive port of the authors' loop vs CFLDPipeline and its speed options.

Measures seconds per image, seconds per denoising step and UNet evaluations per image for the
full-size model (``fashion_256``: SD-1.5 UNet + Swin-B conditioning stack, random weights) at
the given batch sizes, for

* ``naive_fp32`` — what a careless port of the authors' sampler does (written below): the
  conditions (Swin-B + H_D + φ_A + H_P) recomputed at every step, the three guidance branches as
  three separate UNet calls, the pose-residual lists deep-copied per branch and step, fp32;
* ``ours_fp32`` — CFLDPipeline defaults: conditions once per image, branches in one batched call;
* ``ours_*`` — the pipeline with each speed option (autocast bf16 on CPU / fp16 on GPU,
  channels-last, both, optionally ``torch.compile``, VAE slicing).

The naive loop and ``ours_fp32`` start from the same z_T and the same generator seed; the script
checks in the same run that their outputs agree (relative error ≤ 1e-5).

On a CPU use few steps (default 2): the per-step time is measured and the per-image time at 50
steps is extrapolated (fixed cost + 50 × per-step cost).

    python benchmarks/bench_sampling.py                   # full size, batch 1 and 8, 2 steps
    python benchmarks/bench_sampling.py --batch-sizes 1   # batch 1 only
    python benchmarks/bench_sampling.py --quick           # tiny preset (CI smoke test)
"""

from __future__ import annotations

import copy
import time
import timeit
from typing import Any

import torch

import common
from cfld.models.cfld import CFLDConditions
from cfld.pipelines import speed
from cfld.pipelines.guidance import GuidanceScales, branch_conditions, get_guidance

EQUAL_TOL = 1e-5
PAPER_STEPS = 50


# --------------------------------------------------------------------------- the naive loop
@torch.no_grad()
def naive_sample(pipe, source: torch.Tensor, pose: torch.Tensor, latents: torch.Tensor,
                 steps: int, generator: torch.Generator | None,
                 scales: GuidanceScales = GuidanceScales(),  # noqa: B008 - frozen, never mutated
                 on_step_end: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' default sampler (uc_down_full, Eq. 7) ported carelessly.

    Returns (final latents, images (B, 3, H, W) in [0, 1]).
    """
    model, scheduler = pipe.model, pipe.scheduler
    device = pipe._execution_device
    source, pose = source.to(device), pose.to(device)
    scheduler.set_timesteps(steps, device=device)
    z = latents.to(device).clone()
    batch = z.shape[0]
    for t in scheduler.timesteps:
        cond = model.encode(source, pose)  # recomputed at every step although t-independent
        uncond = model.uncond_prompt.expand(batch, -1, -1)
        residuals = list(cond.pose_residuals)
        # three separate UNet calls, each with its own deep copy of the pose-residual list
        e_uc = model.predict_noise(z, t, CFLDConditions(uncond))
        e_down = model.predict_noise(
            z, t, CFLDConditions(uncond, tuple(copy.deepcopy(residuals))))
        e_full = model.predict_noise(
            z, t, CFLDConditions(cond.prompt, tuple(copy.deepcopy(residuals)),
                                 copy.deepcopy(cond.app_biases)))
        eps = e_uc + scales.down * (e_down - e_uc) + scales.full * (e_full - e_down)
        z = scheduler.step(eps, t, z, generator=generator).prev_sample
        if on_step_end is not None:
            on_step_end()
    images = pipe.decode_latents(z)
    return z, images


# --------------------------------------------------------------------------- variants
def variants(device: torch.device, with_compile: bool, batch: int) -> list[dict[str, Any]]:
    """The configurations measured, in order (options are switched on/off around each run)."""
    amp = "fp16" if device.type == "cuda" else "bf16"
    out = [
        {"name": "naive_fp32", "naive": True},
        {"name": "ours_fp32"},
        {"name": "ours_channels_last", "channels_last": True},
        {"name": f"ours_{amp}", "autocast": amp},
        {"name": f"ours_{amp}_channels_last", "autocast": amp, "channels_last": True},
    ]
    if batch > 1:
        out.append({"name": f"ours_{amp}_vae_slicing", "autocast": amp, "vae_slicing": True})
    if with_compile:
        out.append({"name": f"ours_{amp}_compile", "autocast": amp, "compile": True})
    return out


def run_variant(pipe, spec: dict[str, Any], source: torch.Tensor, pose: torch.Tensor,
                latents: torch.Tensor, steps: int, seed: int,
                device: torch.device, runs: int = 1) -> tuple[dict[str, Any], torch.Tensor,
                                                              torch.Tensor]:
    """Run one configuration ``runs`` times; returns (row, final latents, images).  Times are
    the median over the runs (``*_runs`` lists every run); the breakdown is the last run's."""
    batch = latents.shape[0]
    if spec.get("channels_last"):
        pipe.enable_channels_last()
    if spec.get("vae_slicing"):
        pipe.enable_vae_slicing()
    compile_s = None
    if spec.get("compile"):
        pipe.compile_unet()
    final: list[torch.Tensor] = []
    step_ends: list[float] = []
    cpu_times: list[float] = []

    def mark() -> None:
        common.sync(device)
        step_ends.append(time.perf_counter())

    def capture(p, i, t, d):
        final[:] = [d["latents"]]
        mark()

    def once() -> tuple[common.Timers, float, common.PeakRSS, torch.Tensor, torch.Tensor]:
        timers = common.Timers(device)
        timers.wrap(pipe.model, "encode")
        timers.wrap(pipe.model, "predict_noise")
        timers.wrap(pipe.vae, "decode")
        samples: list[int] = []
        inner = pipe.model.predict_noise

        def count(z, t, c):
            samples.append(z.shape[0])
            return inner(z, t, c)

        object.__setattr__(pipe.model, "predict_noise", count)
        g = torch.Generator(device="cpu").manual_seed(seed)
        step_ends.clear()
        if device.type == "cuda":  # each run's own GPU peak (issue 19: memory in every JSON)
            torch.cuda.reset_peak_memory_stats()
        try:
            with common.PeakRSS() as mem:
                common.sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
                if spec.get("naive"):
                    z, images = naive_sample(pipe, source, pose, latents, steps, g,
                                             on_step_end=mark)
                else:
                    images = pipe(source_image=source, target_pose=pose,
                                  num_inference_steps=steps, latents=latents, generator=g,
                                  output_type="pt", keep_square=True,
                                  autocast=spec.get("autocast"),
                                  callback_on_step_end=capture).images
                    z = final[0]
                common.sync(device)
                total = time.perf_counter() - t0
                cpu_times.append(time.process_time() - c0)
        finally:
            timers.restore()
        timers.calls["samples"] = samples  # type: ignore[assignment]
        return timers, total, mem, z, images

    try:
        if spec.get("compile"):
            t0 = time.perf_counter()
            once()  # first call compiles
            first = time.perf_counter() - t0
        totals, per_steps = [], []
        for _ in range(runs):
            timers, total, mem, z, images = once()
            totals.append(total)
            per_steps.append(step_ends[-1] - step_ends[-2] if len(step_ends) >= 2 else None)
        if spec.get("compile"):
            compile_s = first - totals[0]
    finally:
        if spec.get("channels_last"):
            pipe.disable_channels_last()
        if spec.get("vae_slicing"):
            pipe.disable_vae_slicing()
        if spec.get("compile"):
            pipe.model.unet._compiled_call_impl = None  # back to eager for later variants

    encode_s = timers.total("encode")
    decode_s = timers.total("decode")
    unet_s = timers.total("predict_noise")
    samples = timers.calls["samples"]
    naive = bool(spec.get("naive"))
    fixed = decode_s + (0.0 if naive else encode_s)  # paid once per image batch
    total = common.median(totals)
    if per_steps[-1] is not None:
        # steady state: the last step (the first one also pays one-off kernel set-up)
        per_step = common.median(per_steps)
        est50 = total + (PAPER_STEPS - steps) * per_step
    else:
        per_step = (total - fixed) / steps
        est50 = fixed + PAPER_STEPS * per_step
    row = {
        "variant": spec["name"],
        "batch": batch,
        "steps": steps,
        "total_s": total,
        "runs": runs,
        "total_s_runs": totals,
        "total_s_min": min(totals),
        "total_s_max": max(totals),
        "s_per_step_runs": per_steps,
        # process CPU time (all threads): less sensitive than wall time to other processes
        # competing for the cores, though not immune (cache and spin-wait effects)
        "cpu_s": cpu_times[-1],
        "s_per_image": total / batch,
        "s_per_step": per_step,
        "s_per_step_per_image": per_step / batch,
        "encode_s": encode_s,
        "encode_calls": timers.count("encode"),
        "unet_s": unet_s,
        "unet_calls": timers.count("predict_noise"),
        "unet_samples_per_image": sum(samples) / batch,
        "unet_samples_per_image_per_step": sum(samples) / batch / steps,
        "decode_s": decode_s,
        "est_s_per_image_at_50_steps": est50 / batch,
        "peak_rss_delta_gb": mem.delta / 2**30,
        "cuda_max_allocated_gb": (torch.cuda.max_memory_allocated() / 2**30
                                  if device.type == "cuda" else None),
        "compile_s": compile_s,
    }
    return row, z.detach().float().cpu(), images.detach().float().cpu()


# --------------------------------------------------------------------------- per-step overheads
def step_overheads(pipe, batch: int) -> dict[str, float]:
    """Cost of the per-step bookkeeping that is not the UNet (seconds per step)."""
    from cfld.models.hybrid_attention import unet_bias_layers

    model = pipe.model
    z = torch.randn(batch, *pipe.latent_shape)
    n = len(get_guidance("uc_down_full").branches)
    reps = 200
    cat_s = timeit.timeit(lambda: torch.cat([z] * n), number=reps) / reps
    block_idx = model.appearance_encoder.block_idx
    lookup_s = timeit.timeit(lambda: unet_bias_layers(model.unet, block_idx), number=reps) / reps
    proc_s = timeit.timeit(lambda: model._set_biases(None), number=reps) / reps
    src, pose = common.make_inputs(pipe, batch)
    with torch.no_grad():
        cond = model.encode(src, pose)
    guidance = get_guidance("uc_down_full")
    branch_s = timeit.timeit(lambda: branch_conditions(guidance, cond, model.uncond_prompt),
                             number=20) / 20
    return {"cat_latents_per_step_s": cat_s, "unet_bias_layers_lookup_s": lookup_s,
            "set_biases_per_call_s": proc_s,
            "branch_conditions_once_per_call_s": branch_s}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default 2)")
    p.add_argument("--batch-sizes", default=None, help="comma-separated (default 1,8; quick 2)")
    p.add_argument("--compile", action="store_true",
                   help="also measure torch.compile of the UNet (slow to compile on CPU)")
    p.add_argument("--variants", default=None,
                   help="comma-separated subset of variant names (naive_fp32 and ours_fp32 are "
                        "always run: they carry the equality check)")
    p.add_argument("--runs", type=int, default=None,
                   help="timed runs per variant; the median is reported (default 3; quick 1)")
    p.add_argument("--reverse", action="store_true",
                   help="run the variants in reverse order (naive last): with a forward run, "
                        "balances a drifting background load on a shared machine")
    args = p.parse_args(argv)
    device = common.setup(args, "bench_sampling")
    steps = args.steps or 2
    batches = [int(b) for b in (args.batch_sizes or ("2" if args.quick else "1,8")).split(",")]
    result: dict[str, Any] = {"benchmark": "bench_sampling", "preset": args.preset,
                              "quick": args.quick, "steps": steps, "batch_sizes": batches,
                              "order": "reverse" if args.reverse else "forward",
                              "guidance_type": "uc_down_full", "scheduler": "DDPM (authors')",
                              "machine": common.machine_info(device)}
    if device.type != "cuda":
        result["note"] = common.NO_GPU_NOTE
    common.log(f"building {args.preset} pipeline (random weights)")
    t0 = time.perf_counter()
    pipe = common.build_pipeline(args.preset, device, args.seed)
    result["build_s"] = time.perf_counter() - t0
    result["attention"] = pipe.attention_report()
    result["autocast_bf16_native_on_cpu"] = speed.cpu_supports_bf16()
    rows: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    wanted = set(args.variants.split(",")) if args.variants else None
    for batch in batches:
        source, pose = common.make_inputs(pipe, batch, args.seed)
        latents = common.initial_latents(pipe, batch, args.seed)
        outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        specs = variants(device, args.compile, batch)
        for spec in reversed(specs) if args.reverse else specs:
            if wanted and spec["name"] not in wanted | {"naive_fp32", "ours_fp32"}:
                continue
            common.log(f"batch {batch}: {spec['name']} ({steps} steps)")
            row, z, images = run_variant(pipe, spec, source, pose, latents, steps, args.seed,
                                         device, runs=args.runs or (1 if args.quick else 3))
            outputs[spec["name"]] = (z, images)
            rows.append(row)
            common.log(f"  {row['total_s']:.2f} s total, {row['s_per_step']:.2f} s/step")
        ref_z, ref_img = outputs["ours_fp32"]
        naive_row = next(r for r in rows if r["batch"] == batch and r["variant"] == "naive_fp32")
        for row in rows:
            if row["batch"] != batch:
                continue
            z, images = outputs[row["variant"]]
            row["rel_err_latents_vs_ours_fp32"] = common.rel_error(z, ref_z)
            row["rel_err_images_vs_ours_fp32"] = common.rel_error(images, ref_img)
            row["speedup_vs_naive"] = naive_row["s_per_image"] / row["s_per_image"]
            row["speedup_vs_naive_cpu_time"] = naive_row["cpu_s"] / row["cpu_s"]
            row["speedup_vs_naive_at_50_steps"] = (naive_row["est_s_per_image_at_50_steps"]
                                                   / row["est_s_per_image_at_50_steps"])
        naive_z, naive_img = outputs["naive_fp32"]
        checks.append({
            "batch": batch,
            "naive_vs_ours_rel_err_latents": common.rel_error(naive_z, ref_z),
            "naive_vs_ours_rel_err_images": common.rel_error(naive_img, ref_img),
            "tolerance": EQUAL_TOL,
        })
        checks[-1]["same_outputs"] = (checks[-1]["naive_vs_ours_rel_err_latents"] <= EQUAL_TOL
                                      and checks[-1]["naive_vs_ours_rel_err_images"] <= EQUAL_TOL)
    result["rows"] = rows
    result["equality"] = checks
    result["same_outputs"] = all(c["same_outputs"] for c in checks)
    result["per_step_overheads"] = step_overheads(pipe, batches[0])
    best = {}
    for batch in batches:
        cands = [r for r in rows if r["batch"] == batch and r["variant"] != "naive_fp32"]
        fastest = min(cands, key=lambda r: r["s_per_image"])
        best[str(batch)] = {"variant": fastest["variant"],
                            "speedup_vs_naive": fastest["speedup_vs_naive"],
                            "speedup_vs_naive_at_50_steps": fastest["speedup_vs_naive_at_50_steps"]}
    result["fastest"] = best
    path = common.write_json(result, args.out)
    print(common.table(rows, ["variant", "batch", "s_per_image", "s_per_step",
                              "est_s_per_image_at_50_steps", "unet_calls",
                              "unet_samples_per_image", "encode_calls", "speedup_vs_naive",
                              "rel_err_latents_vs_ours_fp32"]))
    print(f"naive == ours (≤{EQUAL_TOL:g} relative): {result['same_outputs']}   → {path}")
    return result


if __name__ == "__main__":
    main()
