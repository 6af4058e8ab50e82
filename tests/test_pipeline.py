"""CFLDPipeline: the authors' sampling fixture, guidance types, schedulers, inputs, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from PIL import Image

from cfld import CFLDPipeline
from cfld.cli import main
from cfld.pipelines import GUIDANCE_TYPES, official_scheduler
from cfld.pipelines.guidance import GuidanceScales, branch_conditions, get_guidance
from cfld.pose import Keypoints
from conftest import branch_predictions, hand_sampling_loop, make_pixel_pipeline, make_tiny_pipeline
from test_model_official import FIXTURE_DIRS, load, needs_fixture, rel


@pytest.fixture(scope="module", params=FIXTURE_DIRS, ids=[d.name for d in FIXTURE_DIRS])
def official(request, tmp_path_factory):
    src = request.param
    out = tmp_path_factory.mktemp("conv") / "model"
    assert main(["convert", "--official", str(src), "--out", str(out),
                 "--config", str(src / "config.json")]) == 0
    pipe = CFLDPipeline.from_pretrained(out).disable_autocast()  # fp32: the fixtures' numerics
    pipe.set_progress_bar_config(disable=True)
    config = json.loads((src / "config.json").read_text())
    return src, pipe, config


@needs_fixture
def test_sampling_fixture_ddim(official):
    src, pipe, config = official
    inputs, ref = load(src / "inputs.pt"), load(src / "sampling.pt")["ddim_eta0"]
    pipe.scheduler = DDIMScheduler.from_config(config["schedulers"]["ddim"])
    final = pipe(source_image=inputs["img_cond"], target_pose=inputs["pose_img_tgt"],
                 num_inference_steps=len(ref["timesteps"]), latents=ref["initial_noise"],
                 guidance_type="uc_down_full", output_type="latent").images
    assert torch.equal(pipe.scheduler.timesteps, ref["timesteps"])
    assert rel(final, ref["final_latent"]) <= 1e-4


@needs_fixture
def test_sampling_fixture_ddpm_same_noise_stream(official):
    """DDPM: seeding our generator like the authors' global RNG reproduces every draw."""
    src, pipe, config = official
    inputs, ref = load(src / "inputs.pt"), load(src / "sampling.pt")["ddpm"]
    pipe.scheduler = DDPMScheduler.from_config(config["schedulers"]["ddpm"])
    steps = []
    g = torch.Generator().manual_seed(int(inputs["sampling_seed"]))
    final = pipe(source_image=inputs["img_cond"], target_pose=inputs["pose_img_tgt"],
                 num_inference_steps=len(ref["timesteps"]), generator=g,
                 output_type="latent",
                 callback_on_step_end=lambda p, i, t, d: steps.append(d["latents"])).images
    for i, z in enumerate(steps):
        assert rel(z, ref["latents_after_step"][i]) <= 1e-4, i
    assert rel(final, ref["final_latent"]) <= 1e-4


@needs_fixture
def test_first_step_guided_prediction(official):
    src, pipe, _ = official
    inputs, ref = load(src / "inputs.pt"), load(src / "sampling.pt")["ddim_eta0"]
    model = pipe.model
    guidance = get_guidance("uc_down_full")
    with torch.no_grad():
        cond, _ = pipe.encode_conditions(inputs["img_cond"], inputs["pose_img_tgt"])
        branched = branch_conditions(guidance, cond, model.uncond_prompt)
        assert rel(branched.prompt, ref["guided_encoder_hidden_states"]) <= 1e-5
        t = ref["timesteps"][0]
        eps = model.predict_noise(torch.cat([ref["initial_noise"]] * 3), t, branched)
        assert rel(eps, ref["unet_outputs"][0]) <= 1e-5
        guided = guidance.combine(eps.chunk(3), GuidanceScales())
    assert rel(guided, ref["guided_noise_preds"][0]) <= 1e-5


# --------------------------------------------------------------------------- tiny pipelines
@pytest.fixture(scope="module")
def tiny_pipe():
    return make_tiny_pipeline()


def person_keypoints(frame=(256, 176)) -> Keypoints:
    h, w = frame
    pts = [[0.15, 0.5], [0.25, 0.5], [0.25, 0.35], [0.4, 0.3], [0.55, 0.3], [0.25, 0.65],
           [0.4, 0.7], [0.55, 0.7], [0.55, 0.4], [0.75, 0.4], [0.95, 0.4], [0.55, 0.6],
           [0.75, 0.6], [0.95, 0.6], [0.13, 0.45], [0.13, 0.55], [0.14, 0.4], [0.14, 0.6]]
    return Keypoints(np.array([[y * h, x * w] for y, x in pts]), frame=frame)


def source_photo(seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (256, 176, 3), dtype=np.uint8))


# Each guidance formula written out from the authors' table (facts §7.3), on separately computed
# branch predictions: uc = (P,0,0), down = (P,pose,0), ud = (P,pose,A), cd = (C,pose,0),
# full = (C,pose,A).  Scales differ from each other so that a swapped scale shows.
HAND_GUIDANCE = {
    "uc_full": lambda e, s: e["uc"] + s["full"] * (e["full"] - e["uc"]),
    "updown_full": lambda e, s: e["ud"] + s["full"] * (e["full"] - e["ud"]),
    "down_full": lambda e, s: e["down"] + s["full"] * (e["full"] - e["down"]),
    "uc_down_full": lambda e, s: (e["uc"] + s["down"] * (e["down"] - e["uc"])
                                  + s["full"] * (e["full"] - e["down"])),
    "uc_down_updown_cdown": lambda e, s: (e["uc"] + s["down"] * (e["down"] - e["uc"])
                                          + s["all"] * (e["ud"] - e["down"])
                                          + s["cond"] * (e["cd"] - e["down"])),
    "uc_down_updown_full": lambda e, s: (e["uc"] + s["down"] * (e["down"] - e["uc"])
                                         + s["all"] * (e["ud"] - e["down"])
                                         + s["full"] * (e["full"] - e["ud"])),
    "none": lambda e, s: e["full"],
}
HAND_BRANCHES = {"uc_full": 2, "updown_full": 2, "down_full": 2, "uc_down_full": 3,
                 "uc_down_updown_cdown": 4, "uc_down_updown_full": 4, "none": 1}
SCALES = {"full": 1.7, "down": 2.3, "all": 0.6, "cond": 1.3}


def test_guidance_types_are_exactly_the_ones_written_out():
    assert set(GUIDANCE_TYPES) == set(HAND_GUIDANCE)


@pytest.mark.parametrize("name", sorted(GUIDANCE_TYPES))
def test_every_guidance_type_equals_its_formula_in_one_batched_call(tiny_pipe, name,
                                                                      monkeypatch):
    """The guided ε the scheduler receives equals the hand formula on separate branch
    predictions, and all branches of a step go through the UNet as one batch."""
    calls, guided = [], []
    original = tiny_pipe.model.predict_noise
    step = tiny_pipe.scheduler.step

    def spy(latents, t, cond):
        calls.append(latents.shape[0])
        return original(latents, t, cond)

    def spy_step(model_output, t, sample, **kw):
        guided.append(model_output.clone())
        return step(model_output, t, sample, **kw)

    monkeypatch.setattr(tiny_pipe.model, "predict_noise", spy)
    monkeypatch.setattr(tiny_pipe.scheduler, "step", spy_step)
    z = torch.randn(2, *tiny_pipe.latent_shape, generator=torch.Generator().manual_seed(4))
    sources, poses = [source_photo(0), source_photo(1)], [person_keypoints(),
                                                          person_keypoints().flip()]
    tiny_pipe(sources, poses, num_inference_steps=2, guidance_type=name, latents=z,
              guidance_scales=SCALES, generator=torch.Generator().manual_seed(0),
              output_type="latent")
    assert calls == [2 * HAND_BRANCHES[name]] * 2
    monkeypatch.undo()
    with torch.no_grad():
        cond, _ = tiny_pipe.encode_conditions(sources, poses)
        t = tiny_pipe.scheduler.timesteps[0]
        want = HAND_GUIDANCE[name](branch_predictions(tiny_pipe.model, z, t, cond), SCALES)
    torch.testing.assert_close(guided[0], want, rtol=1e-4, atol=1e-5)
    if name != "none":  # guidance moves ε well beyond that tolerance
        eps_full = branch_predictions(tiny_pipe.model, z, t, cond)["full"]
        assert (guided[0] - eps_full).abs().max() > 1e-2


def test_scale_arguments_map_onto_the_official_names(tiny_pipe, monkeypatch):
    """scale_pose is s_down (w_pose), scale_app is s_full (w_app), guidance_scale sets all."""
    from cfld.pipelines.pipeline_cfld import _scales

    assert _scales(3.0, 5.0, None, None) == GuidanceScales(full=5.0, down=3.0)
    assert _scales(3.0, 5.0, 1.5, None) == GuidanceScales(1.5, 1.5, 1.5, 1.5)
    assert _scales(3.0, 5.0, None, {"all": 0.5}) == GuidanceScales(full=5.0, down=3.0, all=0.5)
    with pytest.raises(ValueError, match="unknown guidance scale"):
        _scales(2.0, 2.0, None, {"app": 1.0})


def test_guidance_scale_zero_app_equals_pose_only(tiny_pipe):
    """uc_down_full with s_full = 0 and s_down = 1 is the (P, pose, 0) branch alone."""
    kw = dict(num_inference_steps=2, output_type="latent")
    a = tiny_pipe(source_photo(), person_keypoints(), scale_pose=1.0, scale_app=0.0,
                  generator=torch.Generator().manual_seed(3), **kw).images
    cond, _ = tiny_pipe.encode_conditions(source_photo(), person_keypoints())
    pose_only = cond.with_prompt(tiny_pipe.model.uncond_prompt).without_appearance()
    b = tiny_pipe(conditions=pose_only, guidance_type="none",
                  generator=torch.Generator().manual_seed(3), **kw).images
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# Every scheduler of `--scheduler`, built here from diffusers' classes and the authors' config.
HAND_SCHEDULERS = {
    "ddpm": (DDPMScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "dpm": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "unipc": (UniPCMultistepScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
}


def test_every_cli_scheduler_is_tested():
    from cfld.pipelines.schedulers import SCHEDULERS

    assert set(SCHEDULERS) == set(HAND_SCHEDULERS)


@pytest.mark.parametrize("name", sorted(HAND_SCHEDULERS))
def test_every_scheduler_equals_a_hand_written_diffusers_loop(tiny_pipe, name):
    """The pipeline with `make_scheduler(name)` gives the hand-written loop's final latents:
    same timesteps, initial-noise scaling, input scaling, every step, every noise draw."""
    from cfld.pipelines.schedulers import make_scheduler

    cls, extra = HAND_SCHEDULERS[name]
    tiny_pipe.scheduler = make_scheduler(name, official_scheduler())
    try:
        got = tiny_pipe(source_photo(), person_keypoints(), num_inference_steps=4,
                        generator=torch.Generator().manual_seed(6), output_type="latent").images
    finally:
        tiny_pipe.scheduler = official_scheduler()
    hand = cls.from_config({**official_scheduler().config, **extra})
    with torch.no_grad():
        cond, _ = tiny_pipe.encode_conditions(source_photo(), person_keypoints())
        want = hand_sampling_loop(tiny_pipe.model, hand, cond, 4, seed=6)
    assert rel(got, want) <= 1e-4, rel(got, want)
    assert got.shape == (1, *tiny_pipe.latent_shape)


def test_euler_initial_noise_is_scaled(tiny_pipe, monkeypatch):
    """z_T = N(0, I)·init_noise_sigma (the authors' code omits the factor, facts §12.13)."""
    tiny_pipe.scheduler = EulerDiscreteScheduler.from_config(official_scheduler().config)
    first = []
    original = tiny_pipe.scheduler.scale_model_input

    def spy(sample, t):
        if not first:
            first.append(sample[:1].clone())
        return original(sample, t)

    monkeypatch.setattr(tiny_pipe.scheduler, "scale_model_input", spy)
    try:
        tiny_pipe(source_photo(), person_keypoints(), num_inference_steps=2,
                  generator=torch.Generator().manual_seed(0), output_type="latent")
        sigma = float(tiny_pipe.scheduler.init_noise_sigma)
    finally:
        tiny_pipe.scheduler = official_scheduler()
    noise = torch.randn((1, 4, 16, 16), generator=torch.Generator().manual_seed(0))
    assert sigma > 1.5
    torch.testing.assert_close(first[0], noise * sigma)


def test_seed_determinism_and_outputs(tiny_pipe, tmp_path):
    kp = person_keypoints()
    kp.to_json(tmp_path / "kp.json")
    a = tiny_pipe(source_photo(), kp, num_inference_steps=2,
                  generator=torch.Generator().manual_seed(7)).images
    b = tiny_pipe(source_photo(), tmp_path / "kp.json", num_inference_steps=2,
                  generator=torch.Generator().manual_seed(7)).images
    c = tiny_pipe(source_photo(), kp, num_inference_steps=2,
                  generator=torch.Generator().manual_seed(8)).images
    assert isinstance(a[0], Image.Image) and a[0].size == (44, 64)
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))
    sq = tiny_pipe(source_photo(), kp, num_inference_steps=1, keep_square=True,
                   generator=torch.Generator().manual_seed(7), output_type="np").images
    assert sq.shape == (1, 128, 128, 3)
    sized = tiny_pipe(source_photo(), kp, num_inference_steps=1, output_size=(100, 50),
                      generator=torch.Generator().manual_seed(7), output_type="pt").images
    assert sized.shape == (1, 3, 100, 50)


def test_one_source_many_poses(tiny_pipe):
    """One source with a list of poses: image k is that source generated alone in pose k from
    z_T[k] (the source is shared, the poses are not mixed up).  DDIM (η = 0): DDPM's step noise
    is drawn for the whole batch, so a batch of 2 and two batches of 1 draw differently."""
    poses = [person_keypoints(), person_keypoints().flip()]
    z = torch.randn(2, *tiny_pipe.latent_shape, generator=torch.Generator().manual_seed(2))
    kw = dict(num_inference_steps=2, output_type="pt")
    tiny_pipe.scheduler = DDIMScheduler.from_config(official_scheduler().config)
    try:
        out = tiny_pipe(source_photo(), poses, latents=z, **kw)
        alone = [tiny_pipe(source_photo(), p, latents=z[k:k + 1], **kw)
                 for k, p in enumerate(poses)]
    finally:
        tiny_pipe.scheduler = official_scheduler()
    assert out.images.shape == (2, 3, 64, 44) and out.pose_maps.shape == (2, 21, 64, 64)
    for k, one in enumerate(alone):
        assert torch.equal(out.pose_maps[k:k + 1], one.pose_maps)
        torch.testing.assert_close(out.images[k:k + 1], one.images, rtol=1e-4, atol=1e-5)
    assert (out.images[0] - out.images[1]).abs().max() > 1e-2  # the poses differ in the output


def test_skeleton_image_as_pose(tiny_pipe):
    from cfld.pipelines.inputs import keypoints_from_skeleton_image
    from cfld.pose import render_skeleton_image

    kp = person_keypoints()
    recovered = keypoints_from_skeleton_image(render_skeleton_image(kp))
    assert np.abs(recovered.coords - kp.coords).max() <= 1.0


def test_bad_inputs(tiny_pipe):
    with pytest.raises(ValueError, match="pose map is"):
        tiny_pipe(source_photo(), torch.zeros(1, 21, 32, 32), num_inference_steps=1)
    with pytest.raises(ValueError, match="pose map must be"):
        tiny_pipe(source_photo(), torch.zeros(1, 18, 64, 64), num_inference_steps=1)
    with pytest.raises(ValueError, match="unknown guidance type"):
        tiny_pipe(source_photo(), person_keypoints(), guidance_type="cfg")
    with pytest.raises(ValueError, match="in \\[-1, 1\\]"):
        tiny_pipe(torch.full((1, 3, 64, 64), 5.0), person_keypoints(), num_inference_steps=1)
    with pytest.raises(FileNotFoundError):
        tiny_pipe("/nonexistent.png", person_keypoints(), num_inference_steps=1)
    with pytest.raises(ValueError, match="source images but"):
        tiny_pipe([source_photo()] * 2, [person_keypoints()] * 3, num_inference_steps=1)


def test_pipeline_without_vae_only_returns_latents(tiny_pipe):
    pipe = CFLDPipeline(model=tiny_pipe.model, scheduler=official_scheduler())
    with pytest.raises(ValueError, match="no VAE"):
        pipe(source_photo(), person_keypoints(), num_inference_steps=1)


def test_pixel_pipeline_save_load_roundtrip(tmp_path):
    pipe = make_pixel_pipeline()
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = CFLDPipeline.from_pretrained(tmp_path / "pipe").disable_autocast()  # as ``pipe``
    loaded.set_progress_bar_config(disable=True)
    kw = dict(num_inference_steps=2, output_type="pt")
    a = pipe(source_photo(), person_keypoints(), generator=torch.Generator().manual_seed(0), **kw)
    b = loaded(source_photo(), person_keypoints(), generator=torch.Generator().manual_seed(0),
               **kw)
    assert torch.equal(a.images, b.images) and a.images.shape == (1, 3, 64, 44)
    # exact autoencoder: encode ∘ decode is the identity
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(loaded.vae.decode(loaded.vae.encode(x).latent_dist.mode()).sample,
                               x)


def test_make_scheduler_refuses_an_unsupported_prediction_type():
    """Euler ancestral cannot step an x0-prediction model (the shipped one): a clear error at
    construction instead of diffusers' NotImplementedError at the first step."""
    from diffusers import DDPMScheduler

    from cfld.pipelines.pipeline_cfld import official_scheduler
    from cfld.pipelines.schedulers import SCHEDULERS, make_scheduler, supports

    x0 = DDPMScheduler.from_config({**official_scheduler().config, "prediction_type": "sample"})
    with pytest.raises(ValueError, match="cannot sample a model that predicts 'sample'"):
        make_scheduler("euler_a", x0)
    for name in SCHEDULERS:
        assert supports(name, "epsilon") and supports(name, "v_prediction")
        if supports(name, "sample"):
            assert make_scheduler(name, x0).config.prediction_type == "sample"
    with pytest.raises(ValueError, match="unknown scheduler"):
        make_scheduler("heun")
