"""How close one denoising step gets to the machine's physical limit.

1. FLOPs of one guided UNet step (``uc_down_full``: 3 UNet samples per image) and of the
   once-per-image conditions, counted with ``torch.utils.flop_counter.FlopCounterMode`` on the
   ``meta`` device (exact shapes, no compute).
2. The same step timed for real (fp32, and bf16 autocast on CPU / fp16 on GPU).
3. The machine's matmul peak measured in the same run: a large square ``torch.mm`` in fp32 and in
   the low-precision dtype, best of several.

Achieved FLOP/s ÷ peak FLOP/s of the same dtype = the fraction of the physical limit reached.

    python benchmarks/bench_limit.py            # full size (fashion_256)
    python benchmarks/bench_limit.py --quick    # tiny preset (CI smoke test)
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import common
from cfld.pipelines import speed
from cfld.pipelines.guidance import branch_conditions, get_guidance

TARGET_FRACTION = 0.5


def count_flops(preset: str, batch: int, guidance_type: str = "uc_down_full") -> dict[str, Any]:
    """FLOPs of the conditions (once per image) and of one guided UNet step, on ``meta``."""
    from cfld import CFLDModel
    from cfld.presets import get_preset

    with torch.device("meta"):
        # requires_grad off: FlopCounterMode's module tracker needs grad_fns otherwise
        model = CFLDModel(**get_preset(preset).model).eval().requires_grad_(False)
    guidance = get_guidance(guidance_type)
    n = len(guidance.branches)
    with torch.device("meta"), torch.no_grad():
        c, h, w = (model.unet.config.in_channels, *_latent_hw(model))
        pose_hw = (h * model.pose_adapter.downscale_factor, w * model.pose_adapter.downscale_factor)
        src = torch.empty(batch, 3, model.source_size, model.source_size)
        pose = torch.empty(batch, model.pose_channels, *pose_hw)
        counter = FlopCounterMode(display=False)
        with counter:
            cond = model.encode(src, pose)
        encode_flops = counter.get_total_flops()
        branched = branch_conditions(guidance, cond, model.uncond_prompt)
        z = torch.empty(n * batch, c, h, w)
        counter = FlopCounterMode(display=False)
        with counter:
            model.predict_noise(z, torch.tensor(500), branched)
        step_flops = counter.get_total_flops()
        by_op = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    return {"encode_flops": encode_flops, "step_flops": step_flops, "step_flops_by_op": by_op,
            "unet_samples_per_step": n * batch}


def _latent_hw(model) -> tuple[int, int]:
    size = model.unet.config.sample_size
    return (size, size) if isinstance(size, int) else tuple(size)


def matmul_peak(n: int, dtype: torch.dtype, device: torch.device, repeat: int) -> dict[str, Any]:
    """Best FLOP/s of an n×n×n ``torch.mm`` in ``dtype``."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    t = common.best_time(lambda: torch.mm(a, b), repeat=repeat, device=device)
    return {"n": n, "dtype": str(dtype), "seconds": t, "flops_per_s": 2 * n**3 / t}


def time_step(preset: str, batch: int, device: torch.device, amp: torch.dtype | None,
              repeat: int, model=None, channels_last: bool = False) -> dict[str, Any]:
    """Wall times of ``repeat`` guided UNet steps (``predict_noise`` on the branched batch)
    after one warm-up: median, spread and every run (:func:`common.timed_runs`)."""
    guidance = get_guidance("uc_down_full")
    n = len(guidance.branches)
    src, pose = _inputs(model, batch)
    with torch.no_grad():
        cond = model.encode(src.to(device), pose.to(device))
        branched = branch_conditions(guidance, cond, model.uncond_prompt)
        c, h, w = model.unet.config.in_channels, *_latent_hw(model)
        z = torch.randn(n * batch, c, h, w, device=device)
        if channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
        t = torch.tensor(500, device=device)

        def step() -> None:
            with speed.autocast_context(device, amp):
                model.predict_noise(z, t, branched)

        return common.timed_runs(step, runs=repeat, device=device)


def _inputs(model, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = _latent_hw(model)
    f = model.pose_adapter.downscale_factor
    g = torch.Generator().manual_seed(0)
    src = torch.rand(batch, 3, model.source_size, model.source_size, generator=g) * 2 - 1
    pose = torch.rand(batch, model.pose_channels, h * f, w * f, generator=g)
    return src, pose


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1, help="images per step (default 1)")
    p.add_argument("--repeat", type=int, default=None,
                   help="timed steps after one warm-up; the median is reported (default 3; "
                        "quick 1)")
    p.add_argument("--variants", default="fp32,low,fp32_cl,low_cl",
                   help="which steps to time: fp32, low (bf16 on CPU, fp16 on GPU), and their "
                        "channels-last forms fp32_cl, low_cl (default: all four)")
    p.add_argument("--mm-size", type=int, default=None, help="matmul side (default 4096)")
    args = p.parse_args(argv)
    device = common.setup(args, "bench_limit")
    repeat = args.repeat or (1 if args.quick else 3)
    mm = args.mm_size or (512 if args.quick else 4096)
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    result: dict[str, Any] = {"benchmark": "bench_limit", "preset": args.preset,
                              "quick": args.quick, "batch": args.batch,
                              "guidance_type": "uc_down_full",
                              "machine": common.machine_info(device),
                              "target_fraction": TARGET_FRACTION}
    if device.type != "cuda":
        result["note"] = common.NO_GPU_NOTE
    common.log("counting FLOPs on the meta device")
    result["flops"] = count_flops(args.preset, args.batch)
    step_flops = result["flops"]["step_flops"]

    common.log(f"matmul peak ({mm}³)")
    peaks = {"fp32": matmul_peak(mm, torch.float32, device, max(3, repeat + 1))}
    low_name = "fp16" if low == torch.float16 else "bf16"
    peaks[low_name] = matmul_peak(mm, low, device, max(3, repeat + 1))
    result["matmul_peak"] = peaks

    common.log(f"building {args.preset} model (random weights)")
    model = common.build_model(args.preset, device, args.seed)
    rows = []
    variants = {"fp32": ("fp32", None, False), "low": (low_name, low, False),
                "fp32_cl": ("fp32", None, True), "low_cl": (low_name, low, True)}
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(chosen) - set(variants)
    if unknown:
        p.error(f"unknown --variants {sorted(unknown)}; choose from {sorted(variants)}")
    for name, amp, channels_last in (variants[v] for v in chosen):
        layout = ", channels-last" if channels_last else ""
        common.log(f"timing one guided UNet step ({name}{layout})")
        if channels_last:
            speed.to_channels_last(model.unet, model.pose_adapter)
        try:
            timing = time_step(args.preset, args.batch, device, amp, repeat, model=model,
                               channels_last=channels_last)
        finally:
            speed.to_contiguous_format(model.unet, model.pose_adapter)
        t = timing["median"]
        achieved = step_flops / t
        rows.append({
            "precision": name,
            "channels_last": channels_last,
            "step_s": t,
            "step_s_min": timing["min"],
            "step_s_max": timing["max"],
            "step_s_runs": timing["runs"],
            "step_tflop": step_flops / 1e12,
            "achieved_tflops": achieved / 1e12,
            "peak_tflops": peaks[name]["flops_per_s"] / 1e12,
            "fraction_of_peak": achieved / peaks[name]["flops_per_s"],
            "fraction_of_fp32_peak": achieved / peaks["fp32"]["flops_per_s"],
        })
    result["rows"] = rows
    best = max(rows, key=lambda r: r["fraction_of_peak"])
    result["best_fraction_of_peak"] = best["fraction_of_peak"]
    result["meets_target"] = any(r["fraction_of_peak"] >= TARGET_FRACTION for r in rows)
    path = common.write_json(result, args.out)
    print(common.table(rows, ["precision", "channels_last", "step_s", "step_tflop",
                              "achieved_tflops",
                              "peak_tflops", "fraction_of_peak"]))
    print(f"conditions (once per image): {result['flops']['encode_flops'] / 1e9:.1f} GFLOP; "
          f"one guided step: {step_flops / 1e9:.1f} GFLOP   → {path}")
    return result


if __name__ == "__main__":
    main()
