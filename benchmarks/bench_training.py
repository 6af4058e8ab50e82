"""Training speed and memory: seconds per step and peak memory, with and without UNet
gradient checkpointing (the authors' training step: ``training_step_loss`` + backward + Adam on
the official trainable set of 248 M parameters).

Each configuration runs in its own subprocess, so that the peak resident memory
(``getrusage`` ``ru_maxrss``; ``torch.cuda.max_memory_allocated`` on a GPU) is that
configuration's alone.  Latents are random (the frozen VAE encoder is not part of the step).

From the measured CPU numbers the script also *estimates* the GPU memory of the authors' recipe
at batch 8 (fp16 autocast + UNet checkpointing) — only an estimate when no GPU was lent:

    fp32 weights + fp32 grads and Adam m, v of the trainable set
    + fp16 copies of the frozen weights made by autocast
    + activations measured at batch 1, scaled ×8 (and ×½ from fp32 to fp16 unless measured in
      bf16, which stores 2-byte activations like fp16)
    + 1 GiB CUDA context/allocator margin

    python benchmarks/bench_training.py                  # full size, batch 1, CPU
    python benchmarks/bench_training.py --quick          # tiny preset (CI smoke test)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

import common

GPU_BUDGET_GB = 24.0
TARGET_BATCH = 8
CONFIGS = {
    "fp32": {"checkpointing": False, "autocast": None},
    "fp32_checkpointing": {"checkpointing": True, "autocast": None},
    "bf16_checkpointing": {"checkpointing": True, "autocast": "bf16"},
}


# --------------------------------------------------------------------------- one configuration
def child(preset: str, config: str, batch: int, steps: int, seed: int,
          device: torch.device) -> dict[str, Any]:
    """Run ``steps`` training steps of one configuration in this process; returns numbers."""
    from cfld.pipelines import official_scheduler
    from cfld.pipelines.speed import autocast_context, resolve_autocast
    from cfld.training.objective import training_step_loss

    opts = CONFIGS[config]
    t0 = time.perf_counter()
    model = common.build_model(preset, device, seed).train()
    build_s = time.perf_counter() - t0
    if opts["checkpointing"]:
        model.unet.enable_gradient_checkpointing()
    params = model.trainable_parameters()
    optim = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
    scheduler = official_scheduler()
    amp = resolve_autocast(opts["autocast"], device)
    n_all = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in params)
    g = torch.Generator().manual_seed(seed)
    c, s = model.unet.config.in_channels, model.unet.config.sample_size
    f = model.pose_adapter.downscale_factor
    size = model.source_size

    def batch_inputs() -> dict[str, torch.Tensor]:
        return {
            "latents": torch.randn(2 * batch, c, s, s, generator=g),
            "noise": torch.randn(2 * batch, c, s, s, generator=g),
            "img_cond": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
            "pose_src": torch.rand(batch, model.pose_channels, s * f, s * f, generator=g),
            "pose_tgt": torch.rand(batch, model.pose_channels, s * f, s * f, generator=g),
            "timestep_u": torch.rand(2 * batch, generator=g),
            "drop_u": torch.rand(2 * batch, generator=g),
        }

    rss_before = common.PeakRSS.rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rows = []
    peak_fwd_bwd = peak_optim = 0
    for _ in range(steps):
        inputs = {k: v.to(device) for k, v in batch_inputs().items()}
        common.sync(device)
        # RSS sampled per phase: activations live in forward+backward; Adam's states and its
        # temporaries appear in the optimizer step (in step 1, after the activations are freed)
        with common.PeakRSS() as mem_fb:
            t0 = time.perf_counter()
            with autocast_context(device, amp):
                out = training_step_loss(model, scheduler, **inputs)
            common.sync(device)
            t1 = time.perf_counter()
            out.loss.backward()
            common.sync(device)
            t2 = time.perf_counter()
        loss = float(out.loss.detach())
        del out
        with common.PeakRSS() as mem_opt:
            optim.step()
            optim.zero_grad(set_to_none=True)
            common.sync(device)
            t3 = time.perf_counter()
        peak_fwd_bwd = max(peak_fwd_bwd, mem_fb.peak)
        peak_optim = max(peak_optim, mem_opt.peak)
        rows.append({"forward_s": t1 - t0, "backward_s": t2 - t1, "optimizer_s": t3 - t2,
                     "step_s": t3 - t0, "loss": loss})
    result = {
        "config": config, **opts, "batch": batch, "unet_samples_per_step": 2 * batch,
        "steps": rows, "step_s": min(r["step_s"] for r in rows), "build_s": build_s,
        "params_total": n_all, "params_trainable": n_train,
        "rss_after_build_gb": rss_before / 2**30,
        "peak_rss_gb": common.max_rss_bytes() / 2**30,
        "peak_rss_forward_backward_gb": peak_fwd_bwd / 2**30,
        "peak_rss_optimizer_gb": peak_optim / 2**30,
    }
    if device.type == "cuda":
        result["cuda_max_allocated_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return result


# --------------------------------------------------------------------------- the estimate
def estimate_gpu_memory(row: dict[str, Any], target_batch: int = TARGET_BATCH) -> dict[str, Any]:
    """GPU memory (GiB) of the authors' recipe at ``target_batch`` from one measured CPU row.

    Activations = peak RSS of forward + backward − RSS after building the model, at the row's
    batch (conservative: it includes the gradients being accumulated); fp32 activations count
    half in fp16.  (Rows without the per-phase peak fall back to the whole-step peak − grads.)
    """
    gib = 2**30
    weights = row["params_total"] * 4 / gib
    trainable = row["params_trainable"] * 4 / gib
    grads, adam = trainable, 2 * trainable
    frozen_fp16 = (row["params_total"] - row["params_trainable"]) * 2 / gib
    if "peak_rss_forward_backward_gb" in row:
        activations = max(0.0, row["peak_rss_forward_backward_gb"] - row["rss_after_build_gb"])
    else:
        activations = max(0.0, row["peak_rss_gb"] - row["rss_after_build_gb"] - grads)
    bytes_factor = 1.0 if row.get("autocast") else 0.5
    act_target = activations * target_batch / row["batch"] * bytes_factor
    margin = 1.0
    total = weights + grads + adam + frozen_fp16 + act_target + margin
    # low end: the gradients (counted once above) were already allocated at the peak
    act_low = max(0.0, activations - grads) * target_batch / row["batch"] * bytes_factor
    total_low = weights + grads + adam + frozen_fp16 + act_low + margin
    return {
        "basis": row["config"], "target_batch": target_batch, "precision": "fp16 autocast",
        "checkpointing": row["checkpointing"],
        "weights_fp32_gb": weights, "grads_fp32_gb": grads, "adam_states_gb": adam,
        "fp16_weight_copies_gb": frozen_fp16,
        "activations_measured_gb": activations,
        "activations_at_target_gb": act_target, "margin_gb": margin,
        "total_gb": total, "budget_gb": GPU_BUDGET_GB, "fits": total <= GPU_BUDGET_GB,
        "total_gb_low": total_low, "fits_low": total_low <= GPU_BUDGET_GB,
        "is_estimate": True,
    }


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1, help="pairs per step (default 1)")
    p.add_argument("--steps", type=int, default=1, help="training steps per configuration")
    p.add_argument("--configs", default=None,
                   help=f"comma-separated subset of {sorted(CONFIGS)} (default: all; quick: the "
                        "two fp32 ones)")
    p.add_argument("--child", default=None, help=argparse_hidden())
    p.add_argument("--reestimate", type=Path, default=None,
                   help="recompute the GPU estimate from the measured rows of a result JSON")
    args = p.parse_args(argv)
    device = common.setup(args, "bench_training")
    if args.reestimate:
        result = json.loads(args.reestimate.read_text())
        ckpt = [r for r in result["rows"] if r["checkpointing"]]
        result["gpu_estimate"] = [estimate_gpu_memory(r) for r in ckpt]
        result["fits_24gb_at_batch_8"] = all(e["fits"] for e in result["gpu_estimate"])
        common.write_json(result, args.out if args.out != args.reestimate else args.reestimate)
        for e in result["gpu_estimate"]:
            print(f"GPU estimate (from {e['basis']}): {e['total_gb']:.1f} GB")
        return result
    if args.child:
        out = child(args.preset, args.child, args.batch, args.steps, args.seed, device)
        print("RESULT " + json.dumps(out))
        return out
    configs = (args.configs.split(",") if args.configs
               else ["fp32", "fp32_checkpointing"] if args.quick else list(CONFIGS))
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        p.error(f"unknown config(s) {sorted(unknown)}; choose from {sorted(CONFIGS)}")
    result: dict[str, Any] = {"benchmark": "bench_training", "preset": args.preset,
                              "quick": args.quick, "batch": args.batch,
                              "machine": common.machine_info(device)}
    if device.type != "cuda":
        result["note"] = ("no GPU was lent: CPU seconds/step and CPU peak RSS are measured; the "
                          f"{GPU_BUDGET_GB:.0f} GB-GPU figure at batch {TARGET_BATCH} is an "
                          "ESTIMATE from them")
    rows = []
    for config in configs:
        if args.quick:
            # CI smoke test: in-process (no interpreter start-up per config); peak RSS is then
            # cumulative, so the quick numbers say nothing about memory.
            common.log(f"{config}: {args.steps} step(s) at batch {args.batch} (in-process)")
            t0 = time.perf_counter()
            row = child(args.preset, config, args.batch, args.steps, args.seed, device)
            row["wall_s"] = time.perf_counter() - t0
            rows.append(row)
            continue
        common.log(f"{config}: {args.steps} step(s) at batch {args.batch} in a subprocess")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", config,
               "--preset", args.preset, "--batch", str(args.batch), "--steps", str(args.steps),
               "--seed", str(args.seed), "--device", str(device)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{config} failed:\n{proc.stderr[-3000:]}")
        line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT "))
        row = json.loads(line[len("RESULT "):])
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        common.log(f"  {row['step_s']:.1f} s/step, peak RSS {row['peak_rss_gb']:.2f} GiB")
        common.write_json({**result, "rows": rows, "partial": True}, args.out)  # long runs
    result["rows"] = rows
    ckpt = [r for r in rows if r["checkpointing"]]
    if ckpt:
        result["gpu_estimate"] = [estimate_gpu_memory(r) for r in ckpt]
        result["fits_24gb_at_batch_8"] = all(e["fits"] for e in result["gpu_estimate"])
    path = common.write_json(result, args.out)
    print(common.table(rows, ["config", "batch", "step_s", "peak_rss_gb",
                              "peak_rss_forward_backward_gb", "peak_rss_optimizer_gb",
                              "rss_after_build_gb", "params_trainable"]))
    for e in result.get("gpu_estimate", []):
        print(f"GPU estimate (from {e['basis']}): batch {e['target_batch']} fp16 + checkpointing "
              f"≈ {e['total_gb']:.1f} GB (budget {e['budget_gb']:.0f} GB) — an estimate")
    print(f"→ {path}")
    return result


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
