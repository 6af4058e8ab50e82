"""Fidelity to the authors' code: every output of their random-weight fixture, relative L2 error.

Converts ``../shared/fixtures/official_tiny`` with ``cfld convert`` (as a user would), runs our
model and pipeline on the fixture's inputs and writes the largest relative L2 error of each
output group to ``benchmarks/results/fidelity_official_tiny.json`` — the figures of the README's
fidelity table.  tests/test_model_official.py and tests/test_pipeline.py gate the same outputs at
the "required" tolerances; tests/test_benchmarks.py runs this script.

    python benchmarks/fidelity.py --threads 1
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

import common

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "official_tiny"
TOL_OUTPUTS, TOL_FINAL = 1e-5, 1e-4  # the tests' tolerances (README "required" column)


def _load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


def measure(fixture: Path) -> dict[str, dict[str, float]]:
    """Largest relative L2 error per output group, and the tolerance the tests require."""
    from diffusers import DDIMScheduler, DDPMScheduler

    from cfld import CFLDModel, CFLDPipeline
    from cfld.cli import main as cli
    from cfld.pipelines.guidance import GuidanceScales, branch_conditions, get_guidance
    from cfld.training.objective import training_step_loss

    rel = common.rel_error
    config = json.loads((fixture / "config.json").read_text())
    inputs, ref = _load(fixture / "inputs.pt"), _load(fixture / "eval_outputs.pt")
    rows: dict[str, dict[str, float]] = {}

    def row(key: str, errors: list[float], required: float = TOL_OUTPUTS) -> None:
        rows[key] = {"max_rel_error": max(errors), "required": required, "outputs": len(errors)}

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        if cli(["convert", "--official", str(fixture), "--out", str(out),
                "--config", str(fixture / "config.json")]) != 0:
            raise SystemExit(f"cfld convert failed on {fixture}")
        model = CFLDModel.from_pretrained(out)
        pipe = CFLDPipeline.from_pretrained(out).disable_autocast()  # the authors' fp32
    pipe.set_progress_bar_config(disable=True)
    batch = inputs["img_cond"].shape[0]
    with torch.no_grad():
        feats = model.source_encoder(inputs["img_cond"])
        row("swin_features", [rel(a, b) for a, b in zip(feats, ref["backbone_features"],
                                                         strict=True)])
        cond = model.encode(inputs["img_cond"], inputs["pose_img_tgt"])
        row("prompt_c", [rel(cond.prompt, ref["c"][batch:])])
        row("pose_residuals", [rel(a, b) for a, b in zip(
            cond.pose_residuals, ref["down_block_additional_residuals"], strict=True)])
        row("appearance_biases", [rel(cond.app_biases[k], v)
                                  for k, v in ref["up_block_additional_residuals"].items()])
        z, t = inputs["noisy_latents"], inputs["timesteps"]
        row("noise_pred", [rel(model.predict_noise(z, t, cond), ref["noise_pred"])])
        row("noise_pred_learnable_prompt", [rel(model.predict_noise(
            z, t, model.unconditional(batch)), ref["noise_pred_learnable_vector_no_residuals"])])

    train = _load(fixture / "train_outputs.pt")
    model.train()
    model.source_encoder.eval()  # as the fixture: drop-path off
    with torch.no_grad():
        step = training_step_loss(
            model, DDPMScheduler.from_config(config["schedulers"]["ddpm"]),
            inputs["train_latents"], inputs["train_noise"], inputs["img_cond"],
            inputs["pose_img_src"], inputs["pose_img_tgt"], inputs["train_timestep_rand"],
            inputs["train_u_cond_rand"])
    model.eval()
    row("train_noise_pred", [rel(step.noise_pred, train["noise_pred"])])
    loss_ref = train["loss_simple"].double()
    row("train_loss", [abs(step.loss.double().item() - loss_ref.item()) / loss_ref.item()])

    sampling = _load(fixture / "sampling.pt")
    guidance = get_guidance("uc_down_full")
    first_eps, finals = [], {}
    for name, cls in (("ddim_eta0", DDIMScheduler), ("ddpm", DDPMScheduler)):
        s = sampling[name]
        pipe.scheduler = cls.from_config(config["schedulers"][name.split("_")[0]])
        with torch.no_grad():
            c, _ = pipe.encode_conditions(inputs["img_cond"], inputs["pose_img_tgt"])
            branched = branch_conditions(guidance, c, pipe.model.uncond_prompt)
            eps = pipe.model.predict_noise(torch.cat([s["initial_noise"]] * 3), s["timesteps"][0],
                                           branched)
            first_eps.append(rel(guidance.combine(eps.chunk(3), GuidanceScales()),
                                 s["guided_noise_preds"][0]))
        kw = ({"latents": s["initial_noise"]} if name == "ddim_eta0" else
              {"generator": torch.Generator().manual_seed(int(inputs["sampling_seed"]))})
        final = pipe(source_image=inputs["img_cond"], target_pose=inputs["pose_img_tgt"],
                     num_inference_steps=len(s["timesteps"]), output_type="latent", **kw).images
        finals[name] = rel(final, s["final_latent"])
    row("sampling_first_guided_eps", first_eps)
    row("sampling_final_latent_ddim", [finals["ddim_eta0"]], TOL_FINAL)
    row("sampling_final_latent_ddpm", [finals["ddpm"]], TOL_FINAL)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = common.parser(__doc__.splitlines()[0], default_preset="tiny")
    p.add_argument("--fixture", type=Path, default=FIXTURE, help="authors'-code fixture folder")
    args = p.parse_args(argv)
    device = common.setup(args, "fidelity_official_tiny")
    if not (args.fixture / "pytorch_model.bin").is_file():
        p.error(f"no authors'-code fixture at {args.fixture}")
    result: dict[str, Any] = {"benchmark": "fidelity", "fixture": args.fixture.name,
                              "quick": args.quick, "machine": common.machine_info(device),
                              "metric": "largest relative L2 error of the output group"}
    result["rows"] = measure(args.fixture)
    result["all_within_required"] = all(r["max_rel_error"] <= r["required"]
                                        for r in result["rows"].values())
    path = common.write_json(result, args.out)
    print(common.table([{"output": k, **v} for k, v in result["rows"].items()],
                       ["output", "max_rel_error", "required", "outputs"]))
    print(f"→ {path}")
    return result


if __name__ == "__main__":
    main()
