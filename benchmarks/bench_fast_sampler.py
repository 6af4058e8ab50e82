"""Few-step sampling: UNet evaluations and seconds per image, teacher vs distilled student.

Side by side in ONE run, on the same source photos and poses (procedural people, seed 0):

* ``teacher_ddpm50`` — the paper's sampler: DDPM 50 steps, Eq. 7 (3 UNet samples per step);
* ``teacher_ddpm20`` — the demo's sampler (DDPM 20 steps, Eq. 7);
* ``student_lcm{1,2,4,8}`` — a distilled student (``cfld distill``): LCM steps of ONE UNet
  evaluation, the scales given to it as an embedding;

and seconds per frame of a `cfld animate`-style run (one source through 16 interpolated
example poses, shared initial noise) with the teacher at DDPM-20 and the student at its own
default.  UNet evaluations come from the pipeline's own count (``unet_evals_per_image``).

Without ``--student`` the student is the teacher plus a zero guidance embedding (the student at
the start of distillation): its TIMINGS are a student's, its images are not.  With
``--quality-pairs N`` the first N unseen procedural pairs (``cfld.demo.HELD_OUT_SEED``) are also
scored for the teacher at DDPM-50 and the student at each step count (SSIM, silhouette IoU,
part-colour error for the true and the swapped source: :func:`cfld.demo.score_pairs`).

    python benchmarks/bench_fast_sampler.py                      # shipped model, untrained student
    python benchmarks/bench_fast_sampler.py --student runs/fast/model
    python benchmarks/bench_fast_sampler.py --teacher runs/f1/model --student runs/f1-fast/model
    python benchmarks/bench_fast_sampler.py --quick              # tiny random teacher, 1 image
"""

from __future__ import annotations

import time
from typing import Any

import torch

import common

STUDENT_STEPS = (1, 2, 4, 8)


def load(folder: str) -> Any:
    """A pipeline folder (or shipped name) in float32 (the shipped weights are stored fp16)."""
    from cfld import CFLDPipeline

    pipe = CFLDPipeline.from_pretrained(folder)
    for module in (pipe.model, pipe.vae):
        if isinstance(module, torch.nn.Module):
            torch.nn.Module.to(module, torch.float32)  # nn.Module.to: no fp16 warnings
    pipe.set_progress_bar_config(disable=True)
    return pipe


def untrained_student(teacher: Any) -> Any:
    """The teacher's network + a zero guidance embedding, with LCM and 4-step defaults."""
    from cfld import CFLDPipeline
    from cfld.models.guidance_embedding import make_student
    from cfld.pipelines.distilled import lcm_scheduler

    pipe = CFLDPipeline(model=make_student(teacher.model).eval(), vae=teacher.vae,
                        scheduler=lcm_scheduler(teacher.scheduler.config),
                        output_size=teacher.config.output_size,
                        sampling_defaults={"num_inference_steps": 4, "guidance_type": "none"})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def per_image(pipe: Any, source: torch.Tensor, pose: torch.Tensor, runs: int,
              **kwargs: Any) -> dict[str, Any]:
    """Seconds per image (median of ``runs`` calls on the batch / batch size) and evaluations."""
    evals: list[int] = []

    def call() -> None:
        out = pipe(source, pose, generator=torch.Generator().manual_seed(0), output_type="pt",
                   **kwargs)
        evals.append(out.unet_evals_per_image)

    timing = common.timed_runs(call, runs=runs, warmup=1 if runs > 1 else 0)
    n = source.shape[0]
    return {"unet_evals_per_image": evals[-1], "seconds_per_image": timing["median"] / n,
            "seconds_per_image_runs": [t / n for t in timing["runs"]], **kwargs}


def per_frame(pipe: Any, source: torch.Tensor, frames: int, steps: int | None) -> dict[str, Any]:
    """Seconds per frame of :func:`cfld.animation.animate` through ``frames`` poses."""
    from cfld.animation import animate, interpolate_sequence
    from cfld.pose.gallery import example_pose, example_pose_names

    keys = [example_pose(n) for n in example_pose_names()[:3]]
    poses = interpolate_sequence(keys, frames)
    kwargs = {} if steps is None else {"num_inference_steps": steps}
    if steps is None:  # the student's default, read as the pipeline reads it
        kwargs = {"num_inference_steps": pipe.config.sampling_defaults["num_inference_steps"]}
    t0 = time.perf_counter()
    animate(pipe, source[0], poses, generator=torch.Generator().manual_seed(0),
            output_type="pt", **kwargs)
    seconds = time.perf_counter() - t0
    return {"frames": frames, "seconds_per_frame": seconds / frames, **kwargs}


def quality(teacher: Any, student: Any, pairs: int, seed: int) -> dict[str, Any]:
    """Held-out scores of teacher DDPM-50 and the student at 1/2/4/8 steps on ``pairs`` pairs."""
    import tempfile
    from pathlib import Path

    from cfld.demo import make_held_out_root, score_pairs

    out: dict[str, Any] = {"pairs": pairs}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_held_out_root(Path(tmp) / "held_out", -(-pairs // 12))
        runs = [("teacher_ddpm50", teacher, 50)] + [(f"student_lcm{k}", student, k)
                                                    for k in STUDENT_STEPS]
        for name, pipe, steps in runs:
            scored = score_pairs(pipe, root, pairs, steps, seed).as_dict()
            out[name] = {"model": scored["model"], "swapped_source": scored["swapped_source"]}
    return out


def main(argv: list[str] | None = None) -> None:
    p = common.parser(__doc__.split("\n")[0], default_preset="synthetic")
    p.add_argument("--teacher", default=None,
                   help="guided pipeline folder or shipped model name (default: the shipped "
                        "model, src/cfld/assets/cfld-synthetic; --quick: the tiny preset with "
                        "random weights)")
    p.add_argument("--student", default=None,
                   help="distilled pipeline folder (default: the untrained student)")
    p.add_argument("--images", type=int, default=4, help="images per batch (default 4)")
    p.add_argument("--runs", type=int, default=3, help="timed calls per setting (default 3)")
    p.add_argument("--frames", type=int, default=16, help="animation frames (default 16)")
    p.add_argument("--student-note", default=None,
                   help="how the student was made (recorded in the result, e.g. its command)")
    p.add_argument("--quality-pairs", type=int, default=0,
                   help="also score N unseen pairs (default 0: timings only)")
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.runs, args.frames, args.quality_pairs = 1, 1, 2, 0
    device = common.setup(args, "bench_fast_sampler")
    if args.teacher is None and args.quick:  # proves the script works in seconds (CI)
        args.teacher, teacher = "tiny (random weights)", common.build_pipeline("tiny", device)
    else:
        args.teacher = args.teacher or "cfld-synthetic"
        teacher = load(args.teacher).to(device)
    student = (load(args.student) if args.student else untrained_student(teacher)).to(device)
    source, pose = common.make_inputs(teacher, args.images, args.seed)
    rows: dict[str, dict[str, Any]] = {
        "teacher_ddpm50": per_image(teacher, source, pose, args.runs, num_inference_steps=50),
        "teacher_ddpm20": per_image(teacher, source, pose, args.runs, num_inference_steps=20),
    }
    for k in STUDENT_STEPS:
        rows[f"student_lcm{k}"] = per_image(student, source, pose, args.runs,
                                            num_inference_steps=k)
    base = rows["teacher_ddpm50"]
    for row in rows.values():
        row["speedup_vs_ddpm50"] = base["seconds_per_image"] / row["seconds_per_image"]
        row["fewer_unet_evals_vs_ddpm50"] = (base["unet_evals_per_image"]
                                            / row["unet_evals_per_image"])
    animation = {"teacher_ddpm20": per_frame(teacher, source, args.frames, 20),
                 "student_default": per_frame(student, source, args.frames, None)}
    result = {
        "benchmark": "bench_fast_sampler",
        "quick": bool(args.quick),
        "teacher": args.teacher,
        "student": args.student or "untrained (teacher + zero guidance embedding): timings only",
        "student_note": args.student_note,
        "student_defaults": dict(student.config.sampling_defaults or {}),
        "images_per_batch": args.images,
        "runs": args.runs,
        "per_image": rows,
        "animation": animation,
        "quality": (quality(teacher, student, args.quality_pairs, args.seed)
                    if args.quality_pairs else "not measured (--quality-pairs 0)"),
        "machine": common.machine_info(device),
    }
    path = common.write_json(result, args.out)
    print(common.table([{"setting": k, **{c: v[c] for c in ("unet_evals_per_image",
                                                            "seconds_per_image",
                                                            "speedup_vs_ddpm50")}}
                        for k, v in rows.items()],
                       ["setting", "unet_evals_per_image", "seconds_per_image",
                        "speedup_vs_ddpm50"]))
    print({k: round(v["seconds_per_frame"], 4) for k, v in animation.items()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
