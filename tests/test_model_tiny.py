"""CFLDModel behaviour at the tiny preset: conditions, batching, errors, save/load."""

from __future__ import annotations

import json

import pytest
import torch

from cfld import CFLDConditions, CFLDModel
from cfld.checkpoint import CheckpointMismatchError
from cfld.presets import PRESETS, get_preset


@pytest.fixture(scope="module")
def tiny() -> CFLDModel:
    torch.manual_seed(0)
    model = CFLDModel(**get_preset("tiny").model).eval()
    # Zero-initialised convs would make the appearance path a no-op; perturb them so tests see it.
    with torch.no_grad():
        for conv in (*model.appearance_encoder.zero_conv_ins,
                     *model.appearance_encoder.zero_conv_outs):
            conv.weight.normal_(0, 0.2)
    return model


def inputs(batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.rand(batch, 3, 64, 64, generator=g) * 2 - 1
    pose = torch.rand(batch, 21, 64, 64, generator=g)
    z = torch.randn(batch, 4, 16, 16, generator=g)
    t = torch.tensor([999, 10][:batch] + [500] * max(0, batch - 2))
    return src, pose, z, t


# Parameter tables pinned per preset (`cfld info --preset P --json`).  The full sizes are the
# paper's Table 1 (also checked against official_param_counts.json in test_model_official);
# tiny is the authors'-code fixture's configuration; synthetic is the shipped model's (README).
FULL_TABLE = {"source_encoder": 86_991_864, "appearance_encoder": 22_549_632,
              "decoder": 97_712_128, "pose_adapter": 30_636_480, "uncond_prompt": 12_288,
              "unet_total": 859_520_964, "unet_trainable": 10_321_920,
              "trainable_total": 248_224_312}
PARAMETER_TABLES = {
    "fashion_256": FULL_TABLE,
    "fashion_512": FULL_TABLE,
    "market_128": FULL_TABLE,
    "synthetic": {"source_encoder": 360_083, "appearance_encoder": 174_816, "decoder": 183_936,
                  "pose_adapter": 399_936, "uncond_prompt": 512, "unet_total": 9_783_728,
                  "unet_trainable": 9_783_728, "trainable_total": 10_903_011},
    # synthetic at 128²: larger Swin bias tables (stages 3-4 get 8×8 / 4×4 windows) and H_D's
    # 4×4 token-position table; everything else is synthetic's
    "synthetic_128": {"source_encoder": 361_811, "appearance_encoder": 174_816,
                      "decoder": 185_472, "pose_adapter": 399_936, "uncond_prompt": 512,
                      "unet_total": 9_783_728, "unet_trainable": 9_783_728,
                      "trainable_total": 10_906_275},
    "tiny": {"source_encoder": 146_948, "appearance_encoder": 49_884, "decoder": 47_424,
             "pose_adapter": 105_760, "uncond_prompt": 512, "unet_total": 1_837_092,
             "unet_trainable": 24_576, "trainable_total": 375_104},
}


def test_every_preset_has_a_pinned_table():
    assert set(PARAMETER_TABLES) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_on_meta_with_its_parameter_table(name):
    with torch.device("meta"):
        model = CFLDModel(**get_preset(name).model)
    table = model.parameter_table()
    assert table == PARAMETER_TABLES[name]
    # the table adds up: the components plus the trainable part of the UNet
    parts = ("source_encoder", "appearance_encoder", "decoder", "pose_adapter", "uncond_prompt")
    assert table["trainable_total"] == sum(table[k] for k in parts) + table["unet_trainable"]
    assert table["trainable_total"] == sum(p.numel() for p in model.parameters()
                                           if p.requires_grad)


def test_zero_init_biases_are_exactly_zero():
    model = CFLDModel(**get_preset("tiny").model).eval()
    src, pose, _, _ = inputs()
    with torch.no_grad():
        cond = model.encode(src, pose)
    assert all(torch.count_nonzero(b) == 0 for b in cond.app_biases.values())


def test_conditions_reused_across_timesteps_equal_forward(tiny):
    src, pose, z, t = inputs()
    with torch.no_grad():
        cond = tiny.encode(src, pose)
        a = tiny.predict_noise(z, t, cond)
        b = tiny(z, t, src, pose)
        # predict_noise must not consume/mutate the conditions (diffusers pops residual lists)
        c = tiny.predict_noise(z, t, cond)
    assert torch.equal(a, b) and torch.equal(a, c)
    assert len(cond.pose_residuals) == 3


def test_appearance_and_pose_change_the_prediction(tiny):
    src, pose, z, t = inputs()
    with torch.no_grad():
        cond = tiny.encode(src, pose)
        full = tiny.predict_noise(z, t, cond)
        no_pose = tiny.predict_noise(z, t, cond.without_pose())
        no_app = tiny.predict_noise(z, t, cond.without_appearance())
    assert (full - no_pose).abs().max() > 1e-4
    assert (full - no_app).abs().max() > 1e-4


def test_batched_branches_equal_separate_calls(tiny):
    """cat() fills absent parts with zeros: one batched call == separate calls (guidance)."""
    src, pose, z, t = inputs()
    with torch.no_grad():
        cond = tiny.encode(src, pose)
        branches = [tiny.unconditional(2),
                    cond.with_prompt(tiny.uncond_prompt).without_appearance(), cond]
        batched = tiny.predict_noise(torch.cat([z] * 3), torch.cat([t] * 3),
                                     CFLDConditions.cat(branches))
        separate = torch.cat([tiny.predict_noise(z, t, c) for c in branches])
    torch.testing.assert_close(batched, separate, rtol=1e-5, atol=1e-5)


def test_lerp_is_linear_in_prompt_and_biases(tiny):
    src, pose, _, _ = inputs()
    with torch.no_grad():
        a = tiny.encode(src, pose)
        b = tiny.encode(src.flip(-1), pose)
    assert torch.equal(a.lerp(b, 0.0).prompt, a.prompt)
    assert torch.allclose(a.lerp(b, 1.0).app_biases["block_3_cross_attn_q"],
                          b.app_biases["block_3_cross_attn_q"])
    # in between: (1 - w)·a + w·b for the prompt and every bias; the pose stays a's
    w = 0.3
    mid = a.lerp(b, w)
    torch.testing.assert_close(mid.prompt, (1 - w) * a.prompt + w * b.prompt)
    assert set(mid.app_biases) == set(a.app_biases)
    for key, bias in mid.app_biases.items():
        torch.testing.assert_close(bias, (1 - w) * a.app_biases[key] + w * b.app_biases[key])
    assert all(m is p for m, p in zip(mid.pose_residuals, a.pose_residuals))


def test_save_and_load_roundtrip(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "m")
    loaded = CFLDModel.from_pretrained(tmp_path / "m")
    src, pose, z, t = inputs()
    with torch.no_grad():
        a = tiny(z, t, src, pose)
        b = loaded(z, t, src, pose)
    assert torch.equal(a, b)
    assert not loaded.training
    trainable = [n for n, p in loaded.named_parameters()
                 if p.requires_grad and n.startswith("unet")]
    assert len(trainable) == 18


def test_from_pretrained_is_strict(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["decoder_config"]["depth"] = 3
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match="missing keys"):
        CFLDModel.from_pretrained(tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="config.json"):
        CFLDModel.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "shape, match",
    [((2, 3, 32, 32), "source image must be"), ((2, 1, 64, 64), "source image must be"),
     ((3, 64, 64), "source image must be")],
)
def test_bad_source_image(tiny, shape, match):
    _, pose, _, _ = inputs()
    with pytest.raises(ValueError, match=match):
        tiny.encode(torch.zeros(shape), pose)


def test_bad_pose_map(tiny):
    src, pose, z, t = inputs()
    with pytest.raises(ValueError, match="pose map must have shape"):
        tiny.encode(src, pose[:, :18])
    with pytest.raises(ValueError, match="pose residuals"):
        cond = tiny.encode(src, torch.zeros(2, 21, 32, 32))
        tiny.predict_noise(z, t, cond)
    with pytest.raises(ValueError, match="batch"):
        tiny.encode(src, pose[:1])


def test_unknown_component_option():
    with pytest.raises(ValueError, match="unknown decoder_config option"):
        CFLDModel(**{**get_preset("tiny").model, "decoder_config": {"layers": 3}})


def test_gradients_reach_official_trainable_set(tiny):
    """Official trainable set: everything but the UNet, plus the 18 up-block W_k/W_v."""
    model = CFLDModel(**get_preset("tiny").model).train()
    model.unet.enable_gradient_checkpointing()
    src, pose, z, t = inputs()
    loss = model(z, t, src, pose).square().mean()
    loss.backward()
    unet_grads = [n for n, p in model.unet.named_parameters() if p.grad is not None]
    assert len(unet_grads) == 18 and all("attn2.to_" in n for n in unet_grads)
    assert model.decoder.query_feat.grad is not None
    assert model.pose_adapter.conv_in.weight.grad is not None
    # zero-init out convs get a gradient even though the bias starts at zero
    assert model.appearance_encoder.zero_conv_outs[0].weight.grad.abs().sum() > 0


def test_pretrained_parts_from_a_diffusers_folder(tmp_path):
    """SD-1.5 UNet/VAE from a pipeline-style folder (unet/, vae/ subfolders), strictly."""
    from diffusers import AutoencoderKL

    from cfld.models.pretrained import init_from_pretrained_parts, load_vae
    from cfld.models.unet import build_unet

    torch.manual_seed(3)
    unet = build_unet(get_preset("tiny").model["unet_config"])
    unet.save_pretrained(tmp_path / "sd" / "unet")
    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=8)
    vae.save_pretrained(tmp_path / "sd" / "vae")
    model = CFLDModel(**get_preset("tiny").model)
    init_from_pretrained_parts(model, unet=tmp_path / "sd")
    for (k, a), (_, b) in zip(model.unet.state_dict().items(), unet.state_dict().items(),
                              strict=True):
        assert torch.equal(a, b), k
    assert sum(p.requires_grad for p in model.unet.parameters()) == 18
    assert isinstance(load_vae(tmp_path / "sd"), AutoencoderKL)
    with pytest.raises(FileNotFoundError, match="Stable Diffusion 1.5 folder"):
        load_vae(tmp_path / "missing")
