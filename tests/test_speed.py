"""Speed options of CFLDPipeline keep the outputs (within tolerance) and recompute nothing."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor

from cfld import CFLDModel, PixelUnshuffleAutoencoder
from cfld.pipelines import official_scheduler, speed
from cfld.pipelines import pipeline_cfld as pipeline_module
from cfld.presets import get_preset
from conftest import hand_sampling_loop, make_tiny_pipeline
from test_model_official import rel


@pytest.fixture(scope="module")
def pipe():
    return make_tiny_pipeline()


@pytest.fixture(scope="module")
def inputs(pipe):
    g = torch.Generator().manual_seed(0)
    src = torch.rand(2, 3, pipe.model.source_size, pipe.model.source_size, generator=g) * 2 - 1
    pose = torch.rand(2, 21, *pipe.pose_size, generator=g)
    latents = torch.randn(2, *pipe.latent_shape, generator=g)
    return src, pose, latents


def run(pipe, inputs, output_type="latent", **kw):
    src, pose, latents = inputs
    return pipe(src, pose, num_inference_steps=3, latents=latents, output_type=output_type,
                generator=torch.Generator().manual_seed(5), **kw).images


@pytest.fixture(scope="module")
def reference(pipe, inputs):
    return run(pipe, inputs), run(pipe, inputs, output_type="pt", keep_square=True)


def test_fp32_equals_a_hand_written_loop(pipe, inputs, reference):
    """With autocast off (``disable_autocast``) and no other speed option the pipeline is fp32
    and gives the plain diffusers loop's latents (an independent reference, not a second call
    of the same pipeline)."""
    assert pipe._autocast is None and not pipe._channels_last
    assert reference[0].dtype == torch.float32
    src, pose, latents = inputs
    with torch.no_grad():
        cond = pipe.model.encode(src, pose)
        want = hand_sampling_loop(pipe.model, official_scheduler(), cond, 3, seed=5,
                                  latents=latents)
    assert rel(reference[0], want) <= 1e-5, rel(reference[0], want)
    assert torch.equal(run(pipe, inputs, autocast=None), reference[0])


def test_default_precision_is_mixed_where_the_hardware_has_it(inputs, reference):
    """A new pipeline runs ``autocast="auto"`` (issue 19): bf16 on a CPU with native bf16, fp16
    on CUDA, fp32 elsewhere; the call without the argument equals the explicit one, and
    ``disable_autocast`` gives the fp32 reference back bit for bit."""
    fresh = make_tiny_pipeline(fp32=False)
    assert fresh._autocast == speed.DEFAULT_AUTOCAST == "auto"
    assert speed.resolve_autocast("auto", "cuda") == torch.float16
    default = run(fresh, inputs)
    assert torch.equal(default, run(fresh, inputs, autocast="auto"))
    if speed.cpu_supports_bf16():
        assert torch.equal(default, run(fresh, inputs, autocast="bf16"))
        assert 1e-3 < rel(default, reference[0]) <= 1.2e-2  # bf16 really ran, and stays close
    else:
        assert torch.equal(default, reference[0])
    assert torch.equal(run(fresh.disable_autocast(), inputs), reference[0])


def test_default_precision_keeps_batch_invariance_within_its_rounding(inputs):
    """Image k of a batch against image k generated alone (DDIM, η = 0): exact to 1e-5 in fp32;
    under the default mixed precision within bf16 rounding (measured ≤ 0.004 on [0, 1] images
    of the tiny preset; gate 0.02)."""
    from diffusers import DDIMScheduler

    fresh = make_tiny_pipeline(fp32=False)
    fresh.scheduler = DDIMScheduler.from_config(official_scheduler().config)
    src, pose, latents = inputs
    kw = dict(num_inference_steps=2, output_type="pt", keep_square=True)
    for amp, tol in ((None, 1e-5), ("auto", 2e-2)):
        both = fresh(src, pose, latents=latents, autocast=amp, **kw).images
        for k in range(2):
            one = fresh(src[k:k + 1], pose[k:k + 1], latents=latents[k:k + 1], autocast=amp,
                        **kw).images
            assert (both[k:k + 1] - one).abs().max() <= tol, (amp, k)


def test_bf16_autocast_close_to_fp32(pipe, inputs, reference):
    """bf16 moves the latents by 0.72 % (relative) and the image by at most 0.015 (measured on
    this preset); the gates are 1.2 % and 0.03, and the result must differ (bf16 really ran)."""
    z = run(pipe, inputs, autocast="bf16")
    img = run(pipe, inputs, output_type="pt", keep_square=True, autocast="bf16")
    assert z.dtype == torch.float32 and img.dtype == torch.float32  # latents/outputs stay fp32
    assert 1e-3 < rel(z, reference[0]) <= 1.2e-2, rel(z, reference[0])
    assert (img - reference[1]).abs().max() <= 0.03


def test_enable_autocast_persists_and_call_overrides(pipe, inputs, reference):
    pipe.enable_autocast("bf16")
    try:
        assert pipe._autocast == "bf16"
        assert torch.equal(run(pipe, inputs), run(pipe, inputs, autocast="bf16"))
        assert torch.equal(run(pipe, inputs, autocast=None), reference[0])
    finally:
        pipe.disable_autocast()
    assert torch.equal(run(pipe, inputs), reference[0])


def test_autocast_rejects_bad_values(pipe, inputs):
    with pytest.raises(ValueError, match="autocast must be"):
        run(pipe, inputs, autocast="int8")
    with pytest.raises(ValueError, match="not useful on CPU"):
        run(pipe, inputs, autocast="fp16")
    with pytest.raises(ValueError, match="bfloat16 or float16"):
        speed.resolve_autocast(torch.float32, "cpu")
    assert speed.resolve_autocast("fp16", "cuda") == torch.float16
    assert speed.resolve_autocast("auto", "cuda") == torch.float16
    assert speed.resolve_autocast(None, "cpu") is None
    assert speed.resolve_autocast("auto", "cpu") in (None, torch.bfloat16)


def test_channels_last_same_outputs(pipe, inputs, reference):
    pipe.enable_channels_last()
    try:
        conv = pipe.model.unet.conv_in.weight
        assert conv.is_contiguous(memory_format=torch.channels_last)
        z = run(pipe, inputs)
        img = run(pipe, inputs, output_type="pt", keep_square=True)
    finally:
        pipe.disable_channels_last()
    assert pipe.model.unet.conv_in.weight.is_contiguous()
    assert rel(z, reference[0]) <= 1e-4
    assert rel(img, reference[1]) <= 1e-4


def test_conditions_encoded_once_per_call(pipe, inputs, monkeypatch):
    """encode runs once per call; the branched conditions (with the expanded uncond prompt) are
    built once and the very same tensors reach the UNet at every step."""
    encodes, branchings, seen = [], [], []
    model = pipe.model
    orig_encode, orig_predict = model.encode, model.predict_noise
    orig_branch = pipeline_module.branch_conditions

    def encode(*a, **k):
        encodes.append(1)
        return orig_encode(*a, **k)

    def branch(*a, **k):
        branchings.append(1)
        return orig_branch(*a, **k)

    def predict(z, t, cond):
        seen.append((id(cond), cond.prompt.data_ptr(), cond.pose_residuals[0].data_ptr()))
        return orig_predict(z, t, cond)

    monkeypatch.setattr(model, "encode", encode)
    monkeypatch.setattr(model, "predict_noise", predict)
    monkeypatch.setattr(pipeline_module, "branch_conditions", branch)
    run(pipe, inputs)
    assert len(encodes) == 1 and len(branchings) == 1
    assert len(seen) == 3 and len(set(seen)) == 1


def test_every_attention_uses_sdpa(pipe):
    report = pipe.attention_report()
    assert report["non_sdpa"] == []
    assert report["processors"]["QueryBiasAttnProcessor"] == 9
    assert report["processors"]["AttnProcessor2_0"] > 0
    # a stock non-SDPA processor is detected and replaced
    model = CFLDModel(**get_preset("tiny").model)
    attn = model.unet.mid_block.attentions[0].transformer_blocks[0].attn1
    attn.set_processor(AttnProcessor())
    assert len(speed.non_sdpa_attention(model)) == 1
    assert speed.use_sdpa_everywhere(model) == 1
    assert speed.non_sdpa_attention(model) == []


def test_vae_slicing_and_tiling_delegate(pipe, inputs, reference):
    pipe.enable_vae_slicing()
    try:
        assert pipe.vae.use_slicing
        img = run(pipe, inputs, output_type="pt", keep_square=True)
    finally:
        pipe.disable_vae_slicing()
    assert not pipe.vae.use_slicing
    assert rel(img, reference[1]) <= 1e-5
    pipe.enable_vae_tiling()
    assert pipe.vae.use_tiling
    pipe.disable_vae_tiling()
    assert not pipe.vae.use_tiling
    # the parameter-free pixel autoencoder has nothing to slice: a no-op, not an error
    assert not speed.set_vae_memory_mode(PixelUnshuffleAutoencoder(4), slicing=True)


def test_compile_unet_runs_the_compiled_graph_in_place(inputs, reference):
    """compile_unet compiles the pipeline's own UNet in place: the pipeline's calls then run the
    graphs dynamo captured (a counting backend stands in for inductor, whose C++ build takes
    minutes here), the outputs equal eager mode, and the parameter names are unchanged."""
    import torch._dynamo

    graphs, runs = [], []

    def backend(gm, example_inputs):
        graphs.append(gm)

        def compiled(*args):
            runs.append(1)
            return gm.forward(*args)
        return compiled

    p = make_tiny_pipeline()  # same seed: the weights of `pipe`
    keys = list(p.model.state_dict())
    torch._dynamo.reset()
    p.compile_unet(backend=backend)
    try:
        assert speed.is_compiled(p.model.unet)
        assert list(p.model.state_dict()) == keys
        z = run(p, inputs)
    finally:
        p.model.unet._compiled_call_impl = None
        torch._dynamo.reset()
    assert graphs and len(runs) >= 3  # at least one captured graph per denoising step
    assert rel(z, reference[0]) <= 1e-5, rel(z, reference[0])
