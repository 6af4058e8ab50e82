"""Few-step CFLD (issue 20): the guidance embedding, the distillation objectives, `cfld distill`
(exact resume, its exported folder and its defaults) on the shipped architecture with random
weights in pixel space (one thread, a few seconds each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cfld import CFLDPipeline
from cfld.cli import main
from cfld.models.guidance_embedding import (
    COND_PROJ_KEY,
    guidance_embedding,
    is_guidance_distilled,
    make_student,
    student_condition,
)
from cfld.pipelines.distilled import lcm_scheduler
from cfld.training.distill import distill
from cfld.training.distill_config import DistillConfig
from cfld.training.distill_objective import DistillLoss, split_uniform, teacher_guided
from conftest import branch_predictions, make_pixel_pipeline, torch_threads

WEIGHTS = Path("model") / "model" / "diffusion_pytorch_model.safetensors"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def teacher_pipe():
    return make_pixel_pipeline(perturb=True, seed=3)


@pytest.fixture(scope="module")
def teacher_dir(teacher_pipe, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "teacher"
    teacher_pipe.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    from cfld.data.synthetic import make_sample_root

    # 1 person × 2 poses → 2 training pairs; 1 held-out person for the grid.
    return make_sample_root(tmp_path_factory.mktemp("synth"), people=1, poses=2, size=(64, 44),
                            seed=0, test_people=1)


def _inputs(model, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    source = torch.rand(batch, 3, 64, 64, generator=g) * 2 - 1
    pose = torch.rand(batch, 21, 64, 64, generator=g)
    z = torch.randn(batch, 48, 16, 16, generator=g)
    with torch.no_grad():
        cond = model.encode(source, pose)
    return source, pose, z, cond


# ------------------------------------------------------------------------ guidance embedding
def test_student_at_init_is_the_teachers_conditional_branch_and_the_embedding_acts(teacher_pipe):
    teacher = teacher_pipe.model
    student = make_student(teacher, 64).eval()
    assert is_guidance_distilled(student) and not is_guidance_distilled(teacher)
    assert student.unet.config.time_cond_proj_dim == 64
    assert torch.count_nonzero(student.state_dict()[COND_PROJ_KEY]) == 0
    _, _, z, cond = _inputs(teacher)
    t = torch.tensor([999, 400])
    with torch.no_grad():
        full = branch_predictions(teacher, z, t, cond)["full"]
        at_init = student.predict_noise(z, t, cond, student_condition(student, 3.0, 1.5, 2))
    assert torch.equal(at_init, full)  # zero cond_proj: exactly ε(C, pose, A) of the teacher
    # The student's weights are a copy: training it leaves the teacher alone.
    assert all(a.data_ptr() != b.data_ptr() for a, b in
               zip(student.unet.parameters(), teacher.unet.parameters(), strict=False))
    with torch.no_grad():
        student.unet.time_embedding.cond_proj.weight.normal_(0, 0.5)
        lo = student.predict_noise(z, t, cond, student_condition(student, 1.0, 1.0, 2))
        hi = student.predict_noise(z, t, cond, student_condition(student, 3.0, 3.0, 2))
        app_only = student.predict_noise(z, t, cond, student_condition(student, 1.0, 3.0, 2))
    assert (lo - full).abs().max() > 1e-3 and (hi - lo).abs().max() > 1e-3
    assert (app_only - lo).abs().max() > 1e-3  # w_app alone changes it too
    e = guidance_embedding(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 2.0]), 64)
    assert e.shape == (2, 64) and torch.equal(e[0, 32:], e[1, 32:])
    assert not torch.equal(e[0, :32], e[1, :32])
    with pytest.raises(ValueError, match="multiple of 4"):
        make_student(teacher, 30)
    with pytest.raises(ValueError, match="already guidance-distilled"):
        make_student(student)


def test_teacher_target_is_the_samplers_eq7(teacher_pipe):
    """The distillation target is the pipeline's guidance code: Eq. 7 on the three branches,
    with per-sample scales."""
    teacher = teacher_pipe.model
    _, _, z, cond = _inputs(teacher)
    t = torch.tensor([700, 50])
    with torch.no_grad():
        e = branch_predictions(teacher, z, t, cond)
        got = teacher_guided(teacher, z, t, cond, torch.tensor([2.0, 1.5]),
                             torch.tensor([2.0, 3.0]))
    want0 = e["uc"] + 2.0 * (e["down"] - e["uc"]) + 2.0 * (e["full"] - e["down"])
    want1 = e["uc"] + 1.5 * (e["down"] - e["uc"]) + 3.0 * (e["full"] - e["down"])
    torch.testing.assert_close(got[0], want0[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], want1[1], atol=1e-5, rtol=1e-5)


def test_one_uniform_gives_two_independent_scales():
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0))
    a, b = split_uniform(u)
    assert 0 < float(a.min()) and float(a.max()) < 1 and 0 < float(b.min()) and float(b.max()) < 1
    assert abs(float(a.mean()) - 0.5) < 0.01 and abs(float(b.mean()) - 0.5) < 0.01
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.03


# ------------------------------------------------------------------------ objectives
@pytest.mark.parametrize("objective", ["lcd", "guidance"])
def test_distillation_steps_lower_the_loss_on_a_fixed_batch(teacher_pipe, objective):
    teacher = teacher_pipe.model
    torch.manual_seed(0)
    student = make_student(teacher, 64)
    student.requires_grad_(False)
    student.unet.requires_grad_(True)
    module = DistillLoss(student, teacher, lcm_scheduler(teacher_pipe.scheduler.config),
                         objective).train()
    assert student.unet.training and not student.decoder.training  # encoders: the teacher's
    assert not teacher.training
    source, pose, _, _ = _inputs(teacher, batch=2, seed=1)
    g = torch.Generator().manual_seed(2)
    latents = torch.randn(4, 48, 16, 16, generator=g).clamp(-1, 1)
    noise = torch.randn(4, 48, 16, 16, generator=g)
    t_u, w_u = torch.rand(4, generator=g), torch.rand(4, generator=g)
    batch = (latents, noise, source, pose, pose.flip(0), t_u, w_u)
    opt = torch.optim.Adam(student.trainable_parameters(), lr=1e-4)
    losses = []
    for _ in range(4):
        loss = module(*batch)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(float(module(*batch)))
    # Measured (× the first loss): guidance 1, .75, .61, .52, .46; lcd 1, .70, .53, .43, .36.
    assert losses[0] > 0 and losses[-1] < 0.6 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    proj = student.unet.time_embedding.cond_proj.weight.detach()
    assert float(proj.abs().max()) > 0  # it learns w
    teacher_after = make_pixel_pipeline(perturb=True, seed=3).model
    assert all(torch.equal(a, b) for a, b in
               zip(teacher.state_dict().values(), teacher_after.state_dict().values(),
                   strict=True))  # the teacher is untouched


# ------------------------------------------------------------------------ cfld distill runs
def _config(teacher_dir, data_root, out, **kw) -> DistillConfig:
    base = dict(teacher=str(teacher_dir), data_root=str(data_root), output_dir=str(out),
                batch_size=1, max_steps=2, lr=1e-3, warmup_steps=1, log_every=1,
                sample_every=-1, checkpoint_every=0, progress=False, seed=5)
    base.update(kw)
    return DistillConfig(**base)


@pytest.fixture(scope="module")
def straight(teacher_dir, data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    with torch_threads(1):  # a module fixture runs before the function-scoped one_thread
        return out, distill(_config(teacher_dir, data_root, out, sample_every=0, sample_count=1))


def test_resume_is_exact(straight, teacher_dir, data_root, tmp_path):
    out, result = straight
    assert result["steps"] == 2 and len(result["losses"]) == 2
    first = distill(_config(teacher_dir, data_root, tmp_path / "b", max_steps=1, export=False))
    second = distill(_config(teacher_dir, data_root, tmp_path / "b", resume="latest"))
    assert second["start_step"] == 1
    assert first["losses"] + second["losses"] == result["losses"]  # bit-identical floats
    wa, wb = load_file(str(out / WEIGHTS)), load_file(str(tmp_path / "b" / WEIGHTS))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(ValueError, match="objective"):
        distill(_config(teacher_dir, data_root, tmp_path / "b", resume="latest",
                        objective="guidance", max_steps=3))
    with pytest.raises(ValueError, match="ema_decay"):
        distill(_config(teacher_dir, data_root, tmp_path / "b", resume="latest",
                        ema_decay=0.5, max_steps=3))
    # the EMA target (default μ = 0.95) is what step 2 is measured against: the student itself
    # as target (μ = 0) gives the same first loss and another second one
    zero = distill(_config(teacher_dir, data_root, tmp_path / "z", ema_decay=0.0, export=False))
    assert result["losses"][0] == zero["losses"][0] != 0
    assert result["losses"][1] != zero["losses"][1]


def test_distilled_folder_loads_with_its_defaults_and_round_trips(straight, tmp_path):
    out, _ = straight
    folder = out / "model"
    index = json.loads((folder / "model_index.json").read_text())
    assert index["scheduler"] == ["diffusers", "LCMScheduler"]
    assert index["sampling_defaults"] == {"num_inference_steps": 4, "guidance_type": "none",
                                          "scale_pose": 2.0, "scale_app": 2.0}
    assert (out / "samples" / "step_00000002.png").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    pipe = CFLDPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe.scheduler).__name__ == "LCMScheduler"
    assert pipe.scheduler.config.original_inference_steps == 50
    source, pose, _, _ = _inputs(pipe.model, batch=1, seed=4)

    def run(p, **kw):
        return p(source, pose, generator=torch.Generator().manual_seed(0), output_type="pt",
                 **kw)

    default = run(pipe)
    assert default.unet_evals_per_image == 4  # 4 steps × ONE UNet evaluation
    explicit = run(pipe, num_inference_steps=4, guidance_type="none", scale_pose=2.0,
                   scale_app=2.0)
    assert torch.equal(default.images, explicit.images)
    other = run(pipe, scale_pose=1.0, scale_app=3.0)
    assert not torch.equal(default.images, other.images)  # the scales reach the student
    assert run(pipe, num_inference_steps=1).unet_evals_per_image == 1
    with pytest.raises(ValueError, match="guidance-distilled"):
        run(pipe, guidance_type="uc_down_full")
    pipe.save_pretrained(tmp_path / "again")
    again = CFLDPipeline.from_pretrained(tmp_path / "again")
    again.set_progress_bar_config(disable=True)
    assert again.config.sampling_defaults == pipe.config.sampling_defaults
    assert torch.equal(run(again).images, default.images)


def test_cli_distill_end_to_end(teacher_dir, data_root, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["distill", "--teacher", str(teacher_dir), "--data", str(data_root), "--out",
                 str(out), "--steps", "1", "--batch-size", "1", "--num-inference-steps", "2",
                 "--no-progress", "--sample-every", "-1", "--checkpoint-every", "0"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 1 and summary["model_dir"] == str(out / "model")
    assert json.loads((out / "config.json").read_text())["num_inference_steps"] == 2
    index = json.loads((out / "model" / "model_index.json").read_text())
    assert index["sampling_defaults"]["num_inference_steps"] == 2
    assert (out / "checkpoints" / "step_00000001").is_dir()
    # A finished run is never replaced: the same command again is refused before any work.
    again = ["distill", "--teacher", str(teacher_dir), "--data", str(data_root), "--out", str(out)]
    assert main(again) == 2
    assert "already holds a training run" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--teacher", "no/such/folder/x", "--data", "d", "--out", "o"], "not found"),
    (["--data", "d", "--out", "o"], "--teacher is required"),
    (["--teacher", "t", "--data", "d", "--out", "o", "--num-inference-steps", "9"],
     "argument --num-inference-steps: must be an integer from 1 to 8"),
    (["--teacher", "t", "--data", "d", "--out", "o", "--scale-pose-range", "3", "1"],
     "scale_pose_range must be (lo, hi) with lo <= hi"),
    (["--teacher", "t", "--data", "d", "--out", "o", "--objective", "magic"], "invalid choice"),
])
def test_bad_arguments_exit_2_in_one_line(capsys, args, message):
    assert main(["distill", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_defaults_resolution_keeps_the_papers_for_a_teacher(teacher_pipe):
    from cfld.pipelines.distilled import check_sampling_defaults, resolve_defaults

    teacher = teacher_pipe.model
    assert resolve_defaults(teacher, None) == {"num_inference_steps": 50,
                                               "guidance_type": "uc_down_full",
                                               "scale_pose": 2.0, "scale_app": 2.0}
    assert teacher_pipe.config.sampling_defaults is None
    recorded = {"num_inference_steps": 4, "scale_app": 3.0}
    got = resolve_defaults(teacher, recorded, num_inference_steps=7, scale_pose=None)
    assert got == {"num_inference_steps": 7, "guidance_type": "uc_down_full", "scale_pose": 2.0,
                   "scale_app": 3.0}  # given > recorded > the paper's
    with pytest.raises(ValueError, match="unknown sampling_defaults key"):
        check_sampling_defaults({"steps": 4})
    with pytest.raises(ValueError, match="num_inference_steps"):
        check_sampling_defaults({"num_inference_steps": 0})


def test_bench_fast_sampler_quick_counts_the_unet_evaluations(tmp_path):
    """benchmarks/bench_fast_sampler.py --quick (tiny random teacher, its untrained student): the
    evaluation counts are the pipeline's own (3 per teacher step, 1 per student step)."""
    import sys

    bench = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, bench)
    try:
        import bench_fast_sampler
    finally:
        sys.path.remove(bench)
    out = tmp_path / "fast.json"
    bench_fast_sampler.main(["--quick", "--threads", "1", "--out", str(out)])
    data = json.loads(out.read_text())
    evals = {k: v["unet_evals_per_image"] for k, v in data["per_image"].items()}
    assert evals == {"teacher_ddpm50": 150, "teacher_ddpm20": 60, "student_lcm1": 1,
                     "student_lcm2": 2, "student_lcm4": 4, "student_lcm8": 8}
    assert data["quick"] and data["machine"]["command"].startswith("python benchmarks/bench_fast")
    assert all(v["seconds_per_image"] > 0 for v in data["per_image"].values())
    assert data["animation"]["student_default"]["num_inference_steps"] == 4
    assert data["animation"]["teacher_ddpm20"]["frames"] == 2
