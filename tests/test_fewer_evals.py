"""Fewer UNet evaluations without retraining: guidance interval, ε reuse, the evaluation count."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from conftest import branch_predictions, make_tiny_pipeline
from test_pipeline import person_keypoints, source_photo

STEPS = 4  # the official DDPM/DDIM configuration: timesteps 751, 501, 251, 1


@pytest.fixture(scope="module")
def tiny():
    pipe = make_tiny_pipeline()
    cond, _ = pipe.encode_conditions(source_photo(), person_keypoints())
    z = torch.randn(1, *pipe.latent_shape, generator=torch.Generator().manual_seed(3))
    return pipe, cond, z


def run(pipe, cond, z, **kw):
    return pipe(conditions=cond, latents=z.clone(), num_inference_steps=STEPS,
                output_type="latent", generator=torch.Generator().manual_seed(5), **kw)


def counting(pipe, monkeypatch) -> list[int]:
    """Record the batch size of every UNet call."""
    sizes: list[int] = []
    orig = pipe.model.predict_noise

    def wrapped(latents, t, cond):
        sizes.append(latents.shape[0])
        return orig(latents, t, cond)

    monkeypatch.setattr(pipe.model, "predict_noise", wrapped)
    return sizes


def test_defaults_are_bit_identical_and_counted(tiny, monkeypatch):
    pipe, cond, z = tiny
    sizes = counting(pipe, monkeypatch)
    ref = run(pipe, cond, z)
    assert sizes == [3] * STEPS and ref.unet_evals_per_image == 3 * STEPS
    # an interval holding every timestep, and reuse every 1 step, are the default
    for kw in ({"guidance_interval": (0, 1000)}, {"reuse_eps_every": 1}):
        out = run(pipe, cond, z, **kw)
        assert torch.equal(out.images, ref.images), kw
        assert out.unet_evals_per_image == 3 * STEPS


def test_guidance_interval_one_branch_outside(tiny, monkeypatch):
    pipe, cond, z = tiny
    seen: list = []
    ref = run(pipe, cond, z, callback_on_step_end=lambda p, i, t, d: seen.append(d["latents"]))
    sizes = counting(pipe, monkeypatch)
    got: list = []
    out = run(pipe, cond, z, guidance_interval=(400, 999),
              callback_on_step_end=lambda p, i, t, d: got.append(d["latents"]))
    assert [int(t) for t in pipe.scheduler.timesteps] == [751, 501, 251, 1]
    assert sizes == [3, 3, 1, 1]  # batch B (not 3B) outside the interval
    assert out.unet_evals_per_image == 8
    # inside the interval (the first two steps): exactly the guided pipeline
    assert torch.equal(got[0], seen[0]) and torch.equal(got[1], seen[1])
    assert not torch.allclose(out.images, ref.images)


def test_guidance_interval_equals_the_formula_written_out(tiny):
    """DDIM (η = 0): Eq. (7) on separate branch predictions inside, ε(C, pose, A) outside."""
    pipe, cond, z = tiny
    old = pipe.scheduler
    pipe.scheduler = DDIMScheduler.from_config(old.config)
    try:
        out = run(pipe, cond, z, guidance_interval=(100, 600)).images
        sched, x = pipe.scheduler, z.clone()
        sched.set_timesteps(STEPS)
        for t in sched.timesteps:
            e = branch_predictions(pipe.model, sched.scale_model_input(x, t), t, cond)
            if 100 <= int(t) <= 600:
                eps = e["uc"] + 2.0 * (e["down"] - e["uc"]) + 2.0 * (e["full"] - e["down"])
            else:
                eps = e["full"]
            x = sched.step(eps, t, x).prev_sample
    finally:
        pipe.scheduler = old
    assert (out - x).norm() / x.norm() < 1e-5


@pytest.mark.parametrize("bad", [(500, 100), (-1, 10), (1, 2, 3), "0,500", (float("nan"), 1),
                                 ("a", 3)])
def test_bad_guidance_interval_names_the_fix(tiny, bad):
    pipe, cond, z = tiny
    with pytest.raises(ValueError, match=r"guidance_interval=\(t_lo, t_hi\)"):
        run(pipe, cond, z, guidance_interval=bad)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_reuse_every(tiny, bad):
    pipe, cond, z = tiny
    with pytest.raises(ValueError, match="reuse_eps_every must be None or an int >= 1"):
        run(pipe, cond, z, reuse_eps_every=bad)


def test_reuse_eps_every_skips_unet_calls(tiny, monkeypatch):
    pipe, cond, z = tiny
    ref = run(pipe, cond, z).images
    sizes = counting(pipe, monkeypatch)
    out = run(pipe, cond, z, reuse_eps_every=2)
    assert sizes == [3, 3] and out.unet_evals_per_image == 6  # steps 0 and 2 fresh
    assert not torch.equal(out.images, ref)
    assert (out.images - ref).norm() / ref.norm() < 0.5  # close at tiny size, not equal
    both = run(pipe, cond, z, reuse_eps_every=2, guidance_interval=(400, 999))
    assert sizes[2:] == [3, 1] and both.unet_evals_per_image == 4


def test_deep_cache_off_is_bit_identical_on_skips_the_deep_blocks(tiny):
    pipe, cond, z = tiny
    ref = run(pipe, cond, z)
    assert torch.equal(run(pipe, cond, z, deep_cache_interval=1).images, ref.images)
    unet = pipe.model.unet
    handles = []
    calls = {"conv_in": 0, "mid": 0, "down0": 0, "down_last": 0, "up0": 0, "up_last": 0}
    # a replayed block's own hooks still fire: count its first resnet, which does not run
    for name, m in (("conv_in", unet.conv_in), ("mid", unet.mid_block.resnets[0]),
                    ("down0", unet.down_blocks[0]), ("down_last", unet.down_blocks[-1].resnets[0]),
                    ("up0", unet.up_blocks[0].resnets[0]), ("up_last", unet.up_blocks[-1])):
        h = m.register_forward_hook(lambda *a, name=name: calls.__setitem__(name,
                                                                            calls[name] + 1))
        handles.append(h)
    try:
        out = run(pipe, cond, z, deep_cache_interval=2)
    finally:
        for h in handles:
            h.remove()
    # steps 0 and 2 run the full UNet; steps 1 and 3 only conv_in, down_blocks[0], up_blocks[-1]
    assert calls == {"conv_in": 4, "mid": 2, "down0": 4, "down_last": 2, "up0": 2, "up_last": 4}
    assert out.unet_evals_per_image == 6 and out.shallow_unet_evals_per_image == 6
    assert ref.shallow_unet_evals_per_image == 0
    assert not torch.equal(out.images, ref.images)
    assert (out.images - ref.images).norm() / ref.images.norm() < 0.2
    # the UNet is left as it was: the next uncached call is the reference again
    assert all("forward" not in vars(m) for m in unet.modules())
    assert torch.equal(run(pipe, cond, z).images, ref.images)


def test_deep_cache_with_guidance_interval_refreshes_on_batch_change(tiny, monkeypatch):
    pipe, cond, z = tiny
    sizes = counting(pipe, monkeypatch)
    out = run(pipe, cond, z, deep_cache_interval=3, guidance_interval=(400, 999))
    # step 0 full (3), step 1 shallow (3), step 2 batch 1 (not 3): a cache step although
    # 2 % 3 != 0, step 3 full (3·1) again
    assert sizes == [3, 3, 1, 1]
    assert out.unet_evals_per_image == 5 and out.shallow_unet_evals_per_image == 3
    with pytest.raises(ValueError, match="deep_cache_interval must be None or an int >= 1"):
        run(pipe, cond, z, deep_cache_interval=0)
