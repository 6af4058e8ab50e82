"""CFLDModel against the authors' code: parameter counts, conversion, every eval/train output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cfld import CFLDModel
from cfld.checkpoint import CheckpointMismatchError
from cfld.cli import main
from cfld.convert import convert_official
from cfld.presets import get_preset, model_kwargs_from_official
from conftest import FIXTURES

TOL = 1e-5


def official_fixture_dirs() -> list[Path]:
    """Every authors'-code fixture folder with a checkpoint and outputs (any dimensions)."""
    if not FIXTURES.is_dir():
        return []
    return sorted(d for d in FIXTURES.iterdir()
                  if (d / "pytorch_model.bin").is_file() and (d / "config.json").is_file()
                  and (d / "eval_outputs.pt").is_file())


FIXTURE_DIRS = official_fixture_dirs()
needs_fixture = pytest.mark.skipif(not FIXTURE_DIRS, reason="no official fixture in ../shared")


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module", params=FIXTURE_DIRS, ids=[d.name for d in FIXTURE_DIRS])
def converted(request, tmp_path_factory):
    """Convert a fixture with the CLI (as a user would) and load it back with from_pretrained."""
    src: Path = request.param
    out = tmp_path_factory.mktemp("converted") / "model"
    code = main(["convert", "--official", str(src), "--out", str(out),
                 "--config", str(src / "config.json")])
    assert code == 0
    return src, CFLDModel.from_pretrained(out)


def test_full_size_parameter_counts_match_official(fixtures_dir):
    official = json.loads((fixtures_dir / "official_param_counts.json").read_text())
    with torch.device("meta"):
        model = CFLDModel(**get_preset("fashion_256").model)
    table = model.parameter_table()
    assert table["source_encoder"] == official["backbone"]["total"] == 86_991_864
    assert table["appearance_encoder"] == official["appearance_encoder"]["total"]
    assert table["decoder"] == official["decoder"]["total"]
    assert table["pose_adapter"] == official["pose_encoder"]["total"]
    assert table["uncond_prompt"] == official["learnable_vector"]["total"]
    assert table["unet_total"] == official["unet"]["total"]
    assert table["unet_trainable"] == official["unet"]["trainable"]
    logged = official["total_trainable_as_logged_by_official_train_script"]
    assert table["trainable_total"] == logged
    assert table["trainable_total"] == 248_224_312


def test_full_size_state_dict_keys_match_official(fixtures_dir):
    """Our full-size keys are the official ones after the documented renames."""
    from cfld.convert import map_official_state_dict

    rows = [line.split("\t") for line in (fixtures_dir / "official_full_keys.txt").read_text()
            .splitlines() if line and not line.startswith("#")]
    fake = {key: torch.empty(0) for key, *_ in rows}
    container = {k: v for k, v in fake.items() if not k.startswith("model.")}
    unet = {k: v for k, v in fake.items() if k.startswith("model.")}
    mapped = map_official_state_dict(container, unet)
    with torch.device("meta"):
        model = CFLDModel(**get_preset("fashion_256").model)
    ours = model.state_dict()
    assert set(mapped) == set(ours)
    shapes = {key: [int(x) for x in shape.strip("[]").split(",") if x.strip()]
              for key, shape, *_ in rows}
    from cfld.convert import PREFIX_MAP
    inverse = {v: k for k, v in PREFIX_MAP.items()}
    for key, tensor in ours.items():
        if key == "uncond_prompt":
            off = "learnable_vector"
        elif key.startswith("unet."):
            off = "model." + key[len("unet."):]
        else:
            prefix = key.split(".")[0] + "."
            off = inverse[prefix] + key[len(prefix):]
        assert list(tensor.shape) == shapes[off], key


@needs_fixture
def test_eval_outputs_match_official(converted):
    src, model = converted
    inputs, ref = load(src / "inputs.pt"), load(src / "eval_outputs.pt")
    batch = inputs["img_cond"].shape[0]
    errors = {}
    with torch.no_grad():
        feats = model.source_encoder(inputs["img_cond"])
        for i, (a, b) in enumerate(zip(feats, ref["backbone_features"], strict=True)):
            errors[f"swin_stage{i + 1}"] = rel(a, b)
        errors["backbone_pooled"] = rel(feats[-1].mean(1), ref["backbone_pooled"])
        cond = model.encode(inputs["img_cond"], inputs["pose_img_tgt"])
        errors["prompt_c"] = rel(cond.prompt, ref["c"][batch:])
        errors["learnable_vector"] = rel(model.unconditional(batch).prompt, ref["c"][:batch])
        for i, (a, b) in enumerate(zip(cond.pose_residuals,
                                       ref["down_block_additional_residuals"], strict=True)):
            errors[f"pose_residual{i}"] = rel(a, b)
        assert set(cond.app_biases) == set(ref["up_block_additional_residuals"])
        for key, value in ref["up_block_additional_residuals"].items():
            errors[key] = rel(cond.app_biases[key], value)
        eps = model.predict_noise(inputs["noisy_latents"], inputs["timesteps"], cond)
        errors["noise_pred"] = rel(eps, ref["noise_pred"])
        eps_u = model.predict_noise(inputs["noisy_latents"], inputs["timesteps"],
                                    model.unconditional(batch))
        errors["noise_pred_learnable_vector_no_residuals"] = rel(
            eps_u, ref["noise_pred_learnable_vector_no_residuals"])
    print("max relative errors:", json.dumps(errors, indent=1))
    bad = {k: v for k, v in errors.items() if not v <= TOL}
    assert not bad, bad


@needs_fixture
def test_train_outputs_match_official(converted):
    from diffusers import DDPMScheduler

    from cfld.training.objective import training_step_loss

    src, model = converted
    if not (src / "train_outputs.pt").is_file():
        pytest.skip("fixture has no train outputs")
    inputs, ref = load(src / "inputs.pt"), load(src / "train_outputs.pt")
    config = json.loads((src / "config.json").read_text())
    scheduler = DDPMScheduler.from_config(config["schedulers"]["ddpm"])
    model.train()
    model.source_encoder.eval()  # as the fixture: drop-path off, the only other randomness
    try:
        with torch.no_grad():
            out = training_step_loss(
                model, scheduler, inputs["train_latents"], inputs["train_noise"],
                inputs["img_cond"], inputs["pose_img_src"], inputs["pose_img_tgt"],
                inputs["train_timestep_rand"], inputs["train_u_cond_rand"])
    finally:
        model.eval()
    assert torch.equal(out.timesteps, ref["timesteps"])
    assert rel(out.noisy_latents, ref["noisy_latents"]) <= TOL
    assert rel(out.conditions.prompt, ref["c"]) <= TOL
    for a, b in zip(out.conditions.pose_residuals, ref["down_block_additional_residuals"],
                    strict=True):
        assert rel(a, b) <= TOL
    assert rel(out.noise_pred, ref["noise_pred"]) <= TOL
    assert abs(out.loss.item() - ref["loss_simple"].item()) <= TOL * ref["loss_simple"].item()


@needs_fixture
def test_convert_accepts_module_prefix_and_safetensors_names(tmp_path):
    src = FIXTURE_DIRS[0]
    alt = tmp_path / "official"
    alt.mkdir()
    for name, new in (("pytorch_model.bin", "model.safetensors"),
                      ("pytorch_model_1.bin", "model_1.safetensors")):
        state = load(src / name)
        save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(alt / new))
    model = convert_official(alt, tmp_path / "out", src / "config.json")
    ref = CFLDModel.from_pretrained(tmp_path / "out")
    for (k, a), (_, b) in zip(model.state_dict().items(), ref.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


@needs_fixture
def test_convert_wrong_architecture_lists_keys(tmp_path):
    src = FIXTURE_DIRS[0]
    # Without --config the full-size architecture is built: every shape mismatches.
    with pytest.raises(CheckpointMismatchError, match="shape mismatches"):
        convert_official(src, None, None)
    assert main(["convert", "--official", str(tmp_path), "--out", str(tmp_path / "o")]) == 2


@needs_fixture
def test_convert_missing_key_is_reported(tmp_path):
    src = FIXTURE_DIRS[0]
    alt = tmp_path / "official"
    alt.mkdir()
    state = load(src / "pytorch_model.bin")
    dropped = next(k for k in state if k.startswith("decoder."))
    del state[dropped]
    torch.save(state, alt / "pytorch_model.bin")
    shutil.copy(src / "pytorch_model_1.bin", alt / "pytorch_model_1.bin")
    with pytest.raises(CheckpointMismatchError, match="missing keys") as err:
        convert_official(alt, None, src / "config.json")
    assert dropped.replace("decoder.", "decoder.", 1) in str(err.value)


def test_official_config_maps_to_tiny_preset(fixtures_dir):
    config = json.loads((fixtures_dir / "official_tiny" / "config.json").read_text())
    kwargs = model_kwargs_from_official(config["cfg"], config["unet_config"])
    with torch.device("meta"):
        a = CFLDModel(**kwargs)
        b = CFLDModel(**get_preset("tiny").model)
    assert {k: tuple(v.shape) for k, v in a.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in b.state_dict().items()}
    bad = json.loads(json.dumps(config["cfg"]))
    bad["MODEL"]["DECODER_CONFIG"]["POSE_QUERY"] = True
    with pytest.raises(ValueError, match="POSE_QUERY"):
        model_kwargs_from_official(bad, config["unet_config"])


def test_info_json_full_size(capsys):
    assert main(["info", "--preset", "fashion_256", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["trainable_total"] == 248_224_312
    assert set(table) == {"source_encoder", "appearance_encoder", "decoder", "pose_adapter",
                          "uncond_prompt", "unet_total", "unet_trainable", "trainable_total"}
