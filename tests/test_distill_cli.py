"""Issue 20, the product side: `cfld generate/animate/edit/demo/app` with a distilled folder as
--model sample as distilled (its LCMScheduler, one UNet evaluation per step, its steps) through
one rule (cfld.pipelines.distilled.resolve_sampling); explicit flags override; a multi-branch
guidance type on a student is exit 2; the fast shipped model is a clear exit 2 until it ships;
ordinary models keep the paper's 50 DDPM steps / uc_down_full / 2, 2 exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cfld import CFLDPipeline
from cfld.cli import main
from cfld.models.guidance_embedding import make_student
from cfld.pipelines.distilled import lcm_scheduler, resolve_sampling
from conftest import make_pixel_pipeline

STUDENT_DEFAULTS = {"num_inference_steps": 2, "guidance_type": "none", "scale_pose": 2.0,
                    "scale_app": 2.0}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "teacher"
    make_pixel_pipeline(perturb=True, seed=3).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    """A distilled folder as `cfld distill` exports it (student network, LCMScheduler on the
    teacher's schedule, sampling_defaults), untrained; its guidance embedding made non-zero so
    that the scales reach the output."""
    teacher = make_pixel_pipeline(perturb=True, seed=3)
    student = make_student(teacher.model, 64).eval()
    with torch.no_grad():
        student.unet.time_embedding.cond_proj.weight.normal_(0, 0.5,
                                                             generator=torch.Generator()
                                                             .manual_seed(1))
    pipe = CFLDPipeline(model=student, scheduler=lcm_scheduler(teacher.scheduler.config),
                        vae=teacher.vae, output_size=[64, 44], sampling_defaults=STUDENT_DEFAULTS)
    out = tmp_path_factory.mktemp("student") / "student"
    pipe.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "source.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 44, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def calls(monkeypatch):
    """Every pipeline call: (scheduler class, steps, guidance type, UNet evaluations/image)."""
    seen: list[tuple[str, int, str, int]] = []
    original = CFLDPipeline.__call__

    def recording(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        d = resolve_sampling(self, num_inference_steps=kwargs.get("num_inference_steps"),
                             guidance_type=kwargs.get("guidance_type"))
        seen.append((type(self.scheduler).__name__, d.num_inference_steps, d.guidance_type,
                     out.unet_evals_per_image))
        return out

    monkeypatch.setattr(CFLDPipeline, "__call__", recording)
    return seen


def _load(folder):
    pipe = CFLDPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------ the one rule
def test_resolution_the_folders_own_else_the_papers(student_dir, teacher_dir):
    student, teacher = _load(student_dir), _load(teacher_dir)
    s = resolve_sampling(student)
    assert (s.scheduler, s.scheduler_label, s.call_kwargs()) == (None, "LCMScheduler",
                                                                 STUDENT_DEFAULTS)
    t = resolve_sampling(teacher)
    assert (t.scheduler, t.call_kwargs()) == ("ddpm", {
        "num_inference_steps": 50, "guidance_type": "uc_down_full", "scale_pose": 2.0,
        "scale_app": 2.0})  # the paper's (what the flags defaulted to before)
    # A named scheduler without steps: 50 for ddpm/euler_a, 20 otherwise (as before), for a
    # student too (its recorded steps belong to its LCMScheduler); given values win.
    assert resolve_sampling(student, "ddpm").num_inference_steps == 50
    assert resolve_sampling(teacher, "ddim").num_inference_steps == 20
    assert resolve_sampling(student, "ddim", 3, scale_app=1.5).call_kwargs() == {
        "num_inference_steps": 3, "guidance_type": "none", "scale_pose": 2.0, "scale_app": 1.5}
    assert resolve_sampling(teacher, fallback={"scheduler": "ddpm", "steps": 20}
                            ).num_inference_steps == 20  # cfld demo's setting
    assert resolve_sampling(student, fallback={"steps": 20}).num_inference_steps == 2
    with pytest.raises(ValueError, match="guidance-distilled.*'uc_down_full' evaluates 3"):
        resolve_sampling(student, guidance_type="uc_down_full")
    with pytest.raises(ValueError, match="unknown scheduler 'magic'"):
        resolve_sampling(teacher, "magic")


# ------------------------------------------------------------------------ commands, student
def test_generate_with_a_distilled_model_samples_as_distilled(student_dir, source, tmp_path,
                                                              calls):
    out = tmp_path / "out.png"
    assert main(["generate", "--model", str(student_dir), "--source", str(source), "--pose",
                 "walking", "--out", str(out)]) == 0
    assert calls == [("LCMScheduler", 2, "none", 2)]  # 2 steps × ONE UNet evaluation
    want = _load(student_dir)(str(source), "walking", generator=torch.Generator().manual_seed(0))
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(want.images[0]))
    # An explicit flag still overrides: DDPM (the student's one branch), its steps.
    calls.clear()
    assert main(["generate", "--model", str(student_dir), "--source", str(source), "--pose",
                 "walking", "--out", str(tmp_path / "ddpm.png"), "--scheduler", "ddpm",
                 "--steps", "3", "--scale-pose", "1"]) == 0
    assert calls == [("DDPMScheduler", 3, "none", 3)]
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "ddpm.png")),
                              np.asarray(Image.open(out)))


@pytest.mark.parametrize("command", ["generate", "animate", "interpolate", "app"])
def test_multi_branch_guidance_on_a_student_is_exit_2(student_dir, source, tmp_path, capsys,
                                                      command):
    out = tmp_path / "o"
    args = {"generate": ["generate", "--source", str(source), "--pose", "walking", "--out",
                         str(out) + ".png"],
            "animate": ["animate", "--source", str(source), "--poses", "walking,side",
                        "--frames", "2", "--out", str(out)],
            "interpolate": ["edit", "interpolate", "--source-a", str(source), "--source-b",
                            str(source), "--pose", "walking", "--frames", "2", "--out",
                            str(out)],
            "app": ["app", "--port", "1"]}[command]
    assert main([*args, "--model", str(student_dir), "--guidance-type", "uc_down_full"]) == 2
    err = capsys.readouterr().err
    assert "guidance-distilled" in err and "'uc_down_full' evaluates 3 branches" in err, err
    assert not list(tmp_path.iterdir()) or command == "animate" and not list(out.glob("*.png"))


def test_animate_with_a_distilled_model(student_dir, source, tmp_path, calls):
    assert main(["animate", "--model", str(student_dir), "--source", str(source), "--poses",
                 "walking,side", "--frames", "2", "--out", str(tmp_path / "frames")]) == 0
    assert calls == [("LCMScheduler", 2, "none", 2)] * 2  # per frame: 2 steps × 1 evaluation
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == 2


def test_edit_interpolate_with_a_distilled_model(student_dir, source, tmp_path, calls):
    assert main(["edit", "interpolate", "--model", str(student_dir), "--source-a", str(source),
                 "--source-b", str(source), "--pose", "walking", "--frames", "2", "--out",
                 str(tmp_path / "interp")]) == 0
    assert calls == [("LCMScheduler", 2, "none", 2)] * 2
    calls.clear()
    assert main(["edit", "interpolate", "--model", str(student_dir), "--source-a", str(source),
                 "--source-b", str(source), "--pose", "walking", "--frames", "2", "--out",
                 str(tmp_path / "ddim"), "--scheduler", "ddim", "--steps", "1"]) == 0
    assert calls == [("DDIMScheduler", 1, "none", 1)] * 2


# ------------------------------------------------------------------------ ordinary models
def test_ordinary_model_defaults_are_the_papers_exactly(teacher_dir, source, tmp_path, calls):
    """No sampling flag = the explicit DDPM / uc_down_full / 2, 2 of before, byte for byte (at 2
    steps to stay cheap; the 50-step default is the resolution test's); a folder saved with
    another scheduler is still sampled with DDPM by default, as before."""
    base = ["generate", "--model", str(teacher_dir), "--source", str(source), "--pose",
            "walking", "--steps", "2"]
    assert main([*base, "--out", str(tmp_path / "default.png")]) == 0
    assert main([*base, "--out", str(tmp_path / "explicit.png"), "--scheduler", "ddpm",
                 "--guidance-type", "uc_down_full", "--scale-pose", "2", "--scale-app", "2"]) == 0
    assert calls == [("DDPMScheduler", 2, "uc_down_full", 6)] * 2  # 3 branches per step
    a, b = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in ("default", "explicit"))
    assert np.array_equal(a, b)
    from diffusers import DDIMScheduler

    other = _load(teacher_dir)
    other.scheduler = DDIMScheduler.from_config(other.scheduler.config)
    other.save_pretrained(tmp_path / "ddim_folder")
    calls.clear()
    assert main(["generate", "--model", str(tmp_path / "ddim_folder"), "--source", str(source),
                 "--pose", "walking", "--steps", "2", "--out", str(tmp_path / "c.png")]) == 0
    assert calls == [("DDPMScheduler", 2, "uc_down_full", 6)]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png")), a)


# ------------------------------------------------------------------------ the fast shipped model
@pytest.fixture
def fast_at(monkeypatch):
    """Point the name cfld-synthetic-fast at a folder (the real asset is not shipped yet)."""
    import cfld.shipped as shipped

    def point(folder):
        monkeypatch.setattr(shipped, "FAST_DIR", folder)
        monkeypatch.setitem(shipped.SHIPPED_MODELS, "cfld-synthetic-fast", folder)

    return point


@pytest.mark.parametrize("args", [
    ["generate", "--model", "cfld-synthetic-fast", "--source", "S", "--pose", "walking"],
    ["animate", "--model", "cfld-synthetic-fast", "--source", "S", "--poses", "walking,side",
     "--frames", "2"],
    ["demo", "--fast"],
])
def test_fast_model_absent_is_exit_2_saying_how_to_make_it(args, source, tmp_path, capsys,
                                                          fast_at):
    fast_at(tmp_path / "absent" / "cfld-synthetic-fast")
    args = [str(source) if a == "S" else a for a in args]
    assert main([*args, "--out", str(tmp_path / "o" / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "the fast model cfld-synthetic-fast is not shipped yet" in err, err
    assert "cfld distill --teacher cfld-synthetic" in err
    assert not (tmp_path / "o").exists()


def test_the_real_fast_asset_is_not_shipped_and_named_as_absent(capsys):
    from cfld.shipped import FAST_DIR, SHIPPED_MODELS

    assert SHIPPED_MODELS["cfld-synthetic-fast"] == FAST_DIR
    assert FAST_DIR.name == "cfld-synthetic-fast" and FAST_DIR.parent.name == "assets"
    if not FAST_DIR.exists():  # until it ships
        assert main(["demo", "--fast", "--out", "x"]) == 2
        assert "not shipped yet" in capsys.readouterr().err


def test_a_shipped_fast_folder_loads_with_its_scheduler_and_defaults(student_dir, source,
                                                                     tmp_path, fast_at, calls,
                                                                     capsys):
    """Once the asset exists, the shipped loader honours its LCMScheduler and defaults."""
    from cfld.shipped import is_shipped, load_pipeline

    fast_at(student_dir)
    pipe = load_pipeline("cfld-synthetic-fast")
    assert is_shipped(pipe) and type(pipe.scheduler).__name__ == "LCMScheduler"
    assert pipe.config.sampling_defaults == STUDENT_DEFAULTS
    assert type(CFLDPipeline.from_pretrained("cfld-synthetic-fast").scheduler).__name__ == \
        "LCMScheduler"
    assert main(["generate", "--model", "cfld-synthetic-fast", "--source", str(source),
                 "--pose", "walking", "--out", str(tmp_path / "f.png")]) == 0
    assert calls[-1] == ("LCMScheduler", 2, "none", 2)
    assert main(["demo", "--fast", "--model", "x", "--out", str(tmp_path / "d")]) == 2
    assert "give one of --fast and --model x" in capsys.readouterr().err


# ------------------------------------------------------------------------ the app
def test_app_handlers_default_to_the_models_own_sampler(student_dir, source, teacher_dir):
    gr = pytest.importorskip("gradio")
    from cfld.app import AppHandlers

    pipe = _load(student_dir)
    app = AppHandlers(pipe)
    assert app.default_scheduler == "LCMScheduler (the model's own)"
    assert app.scheduler_choices[0] == app.default_scheduler and "ddpm" in app.scheduler_choices
    assert app.guidance_type == "none" and app.defaults.num_inference_steps == 2
    image, _ = app.run_generate(str(source), "walking", None, None, 2, 2.0, 2.0, 0,
                                app.default_scheduler, progress=lambda *a, **k: None)
    assert type(pipe.scheduler).__name__ == "LCMScheduler"
    want = _load(student_dir)(str(source), "walking", generator=torch.Generator().manual_seed(0))
    assert np.array_equal(np.asarray(image), np.asarray(want.images[0]))
    with pytest.raises(ValueError, match="guidance-distilled"):
        AppHandlers(pipe, guidance_type="uc_down_full")
    teacher = AppHandlers(_load(teacher_dir))  # ordinary: as before
    assert (teacher.default_scheduler, teacher.guidance_type) == ("ddpm", "uc_down_full")
    assert "LCMScheduler (the model's own)" not in teacher.scheduler_choices
    with pytest.raises(gr.Error, match="unknown scheduler"):
        teacher.sampling(2, 2.0, 2.0, 0, "LCMScheduler (the model's own)")
