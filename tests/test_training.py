"""Training: LR schedule, timestep sampling, data order, the loop, checkpoints, exact resume,
NaN guard, trainable sets, dropout modes and the `cfld train` command (synthetic preset, CPU)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cfld.training import (
    EpochBatchSampler,
    TrainConfig,
    TrainingDivergedError,
    build_lr_scheduler,
    cubic_timesteps,
    decay_boundaries,
    lr_at,
    train,
)

MODEL_WEIGHTS = Path("model") / "model" / "diffusion_pytorch_model.safetensors"


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def _torch_threads():
    """Overrides conftest's 2 threads: on 2 shared cores, 2 OpenMP threads made these small
    training steps much slower whenever another process was busy (seen, not stored)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    from cfld.data.synthetic import make_sample_root

    # 1 person × 2 poses → 2 ordered training pairs (2 steps per epoch at batch 1); 1 held-out
    # person for the sample grid.
    return make_sample_root(tmp_path_factory.mktemp("synth"), people=1, poses=2, size=(64, 44),
                            seed=0, test_people=1)


def _config(data_root: Path, out: Path, **kw) -> TrainConfig:
    base = dict(preset="synthetic", data_root=str(data_root), output_dir=str(out), batch_size=1,
                max_steps=2, lr=1e-3, warmup_steps=2, decay_epochs=(1,), log_every=1,
                sample_every=-1, checkpoint_every=0, progress=False, export=True, seed=11)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------ LR schedule
def test_lr_schedule_official_numbers():
    base, bounds = 1e-4, decay_boundaries([50], 455)
    assert bounds == [22750]
    assert decay_boundaries([0.5, 2], 10) == [5, 20]  # fractional epochs for short runs
    kw = dict(warmup_steps=1000, warmup_rate=0.1, boundaries=bounds, decay_rate=0.1)
    assert lr_at(0, base, **kw) == pytest.approx(1e-4 * (0.1 + 0.9 / 1000), rel=1e-12)
    assert lr_at(499, base, **kw) == pytest.approx(5.5e-5, rel=1e-12)
    assert lr_at(998, base, **kw) == pytest.approx(1e-4 * (0.1 + 0.9 * 999 / 1000), rel=1e-12)
    assert lr_at(999, base, **kw) == pytest.approx(1e-4, rel=1e-12)
    assert lr_at(1000, base, **kw) == pytest.approx(1e-4, rel=1e-12)
    assert lr_at(22749, base, **kw) == pytest.approx(1e-4, rel=1e-12)
    assert lr_at(22750, base, **kw) == pytest.approx(1e-5, rel=1e-12)
    assert lr_at(45499, base, **kw) == pytest.approx(1e-5, rel=1e-12)
    two = dict(kw, boundaries=[10, 20])
    assert lr_at(25, base, **{**two, "warmup_steps": 5}) == pytest.approx(1e-6, rel=1e-12)


def test_lr_scheduler_drives_optimizer_and_round_trips():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=2e-4)
    sched = build_lr_scheduler(opt, warmup_steps=4, warmup_rate=0.1, boundaries=[6])
    seen = []
    for _ in range(8):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [lr_at(s, 2e-4, 4, 0.1, [6]) for s in range(8)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert expected[:4] == pytest.approx([2e-4 * (0.1 + 0.9 * k / 4) for k in (1, 2, 3, 4)])
    assert expected[6:] == pytest.approx([2e-5, 2e-5])
    # A fresh scheduler restored from the state continues identically.
    opt2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched2 = build_lr_scheduler(opt2, warmup_steps=1, boundaries=[])
    sched2.load_state_dict(sched.state_dict())
    assert sched2.lr_lambdas[0](5) == sched.lr_lambdas[0](5)


def test_cubic_timesteps_distribution():
    u = torch.rand(400_000, generator=torch.Generator().manual_seed(0))
    t = cubic_timesteps(u)
    assert t.dtype == torch.long and int(t.min()) >= 0 and int(t.max()) <= 999
    assert float((t == 999).float().mean()) == pytest.approx(0.10, abs=0.005)
    assert float((t >= 900).float().mean()) == pytest.approx(0.1 ** (1 / 3), abs=0.005)
    assert float((t >= 500).float().mean()) == pytest.approx(0.5 ** (1 / 3), abs=0.005)
    assert cubic_timesteps(torch.tensor([0.0, 1.0 - 1e-7])).tolist() == [999, 0]


def test_epoch_sampler_deterministic_resumable_sharded():
    s = EpochBatchSampler(10, 2, seed=5)
    assert s.batches_per_epoch == 5
    s.set_epoch(3)
    full = list(s)
    s.set_epoch(3, start=2)
    assert list(s) == full[2:]
    s.set_epoch(4)
    assert list(s) != full
    # Two processes: each global batch of 2×2 is split between ranks, nothing repeated.
    r0, r1 = (EpochBatchSampler(10, 2, seed=5, rank=r, world_size=2) for r in (0, 1))
    for r in (r0, r1):
        r.set_epoch(1)
    b0, b1 = list(r0), list(r1)
    assert len(b0) == len(b1) == 2
    flat = [i for b in b0 + b1 for i in b]
    assert len(set(flat)) == 8


# ------------------------------------------------------------------------------------ the loop
def test_train_outputs_and_exact_resume(data_root, tmp_path):
    """One full-featured run (logs, checkpoints, grids, export) versus the same run interrupted
    after step 1 (mid-epoch) and resumed: the resumed part crosses the epoch boundary, the end of
    the warm-up and the LR decay, and must reproduce every loss and every weight exactly."""
    out = tmp_path / "a"
    straight = train(_config(data_root, out, max_steps=3, checkpoint_every=2, sample_every=2,
                             sample_steps=1, sample_count=2, keep_checkpoints=1))
    assert straight["steps"] == 3 and len(straight["losses"]) == 3
    assert all(math.isfinite(v) and v > 0 for v in straight["losses"])
    assert straight["iters_per_epoch"] == 2
    # warm-up over 2 steps from 0.1×, then ×0.1 at the decay boundary epoch 1 = step index 2
    assert straight["lrs"] == pytest.approx([1e-3 * 0.55, 1e-3, 1e-4])
    assert json.loads((out / "config.json").read_text())["max_steps"] == 3
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00000003"]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "samples" / "step_00000002.png").is_file()
    assert (out / "samples" / "step_00000003.png").is_file()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [1, 2, 3]
    assert not list(out.glob(".*")) and not list((out / "checkpoints").glob(".*"))
    from cfld.models.cfld import CFLDModel

    model = CFLDModel.from_pretrained(out / "model" / "model")  # strict load of the export
    ckpt = load_file(str(out / "checkpoints" / "step_00000003" / "trainable.safetensors"))
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in ckpt.items())

    # ---- interrupted after step 1, resumed to step 3
    kw = dict(max_steps=3, checkpoint_every=0)
    first = train(_config(data_root, tmp_path / "b", **{**kw, "max_steps": 1}, export=False))
    second = train(_config(data_root, tmp_path / "b", **kw, resume="latest"))
    assert second["start_step"] == 1 and second["steps"] == 3
    assert first["losses"] + second["losses"] == straight["losses"]  # bit-identical floats
    assert first["lrs"] + second["lrs"] == straight["lrs"]
    wa = load_file(str(out / MODEL_WEIGHTS))
    wb = load_file(str(tmp_path / "b" / MODEL_WEIGHTS))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    sa = torch.load(out / "checkpoints/step_00000003/state.pt", weights_only=True)
    sb = torch.load(tmp_path / "b/checkpoints/step_00000003/state.pt", weights_only=True)
    assert (sa["epoch"], sa["batch_in_epoch"]) == (sb["epoch"], sb["batch_in_epoch"]) == (1, 1)
    assert torch.equal(sa["rng"][0]["torch"], sb["rng"][0]["torch"])
    for pid, st in sa["optimizer"]["state"].items():
        assert torch.equal(st["exp_avg_sq"], sb["optimizer"]["state"][pid]["exp_avg_sq"])
    steps = [json.loads(ln)["step"]
             for ln in (tmp_path / "b/metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    # A changed setup is refused instead of silently resuming inexactly.
    with pytest.raises(ValueError, match="batch_size"):
        train(_config(data_root, tmp_path / "b", **kw, batch_size=2, resume="latest"))
    # A fresh run never mixes its checkpoints into another run's folder.
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(_config(data_root, tmp_path / "b", **kw))


def test_init_from_fine_tunes_a_finished_model(data_root, tmp_path):
    """``init_from`` starts a new run (fresh optimiser, schedule and step counter) from the weights
    of a finished run's model folder, also when those are stored in float16 (the shipped model);
    another architecture is refused with a message naming the option."""
    from cfld.training.trainer import build_model

    base = train(_config(data_root, tmp_path / "base", max_steps=1))
    saved = load_file(str(tmp_path / "base" / MODEL_WEIGHTS))
    cfg = _config(data_root, tmp_path / "ft", max_steps=2,
                  init_from=str(tmp_path / "base" / "model"),
                  prediction_type="v_prediction")
    start = build_model(cfg).state_dict()
    assert all(torch.equal(start[k], v) for k, v in saved.items())
    tuned = train(cfg)
    assert tuned["start_step"] == 0 and tuned["steps"] == 2
    assert tuned["lrs"][0] == pytest.approx(1e-3 * 0.55)  # a fresh warm-up
    sched = json.loads((tmp_path / "ft/model/scheduler/scheduler_config.json").read_text())
    assert sched["prediction_type"] == "v_prediction"
    after = load_file(str(tmp_path / "ft" / MODEL_WEIGHTS))
    assert any(not torch.equal(after[k], saved[k]) for k in saved)
    assert base["steps"] == 1

    # float16 weights (the shipped model's storage) load into the float32 training model
    from cfld.shipped import package_pipeline

    half = package_pipeline(tmp_path / "base" / "model", tmp_path / "half")
    start16 = build_model(_config(data_root, tmp_path / "x", init_from=str(half))).state_dict()
    assert all(start16[k].dtype == torch.float32 for k in saved)
    assert all(torch.equal(start16[k], v.half().float()) for k, v in saved.items())

    with pytest.raises(ValueError, match="--init-from"):
        build_model(_config(data_root, tmp_path / "y", init_from=str(half), preset="tiny"))
    with pytest.raises(FileNotFoundError, match="--init-from"):
        build_model(_config(data_root, tmp_path / "z", init_from=str(tmp_path / "nothing")))


def test_nan_loss_stops_with_clear_error(data_root, tmp_path, monkeypatch):
    import cfld.training.loop as trainer

    real = trainer.training_step_loss

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(trainer, "training_step_loss", poisoned)
    assert issubclass(TrainingDivergedError, ValueError)
    with pytest.raises(TrainingDivergedError) as info:
        train(_config(data_root, tmp_path / "nan", export=False))
    msg = str(info.value)
    assert "nan" in msg and "step 1" in msg and "--lr" in msg and "--mixed-precision no" in msg
    assert not (tmp_path / "nan" / "checkpoints").exists()


def test_paper_dropout_zeroes_pose_and_biases_of_dropped_samples():
    from cfld.models.cfld import CFLDModel
    from cfld.presets import get_preset
    from cfld.training import training_conditions

    torch.manual_seed(0)
    model = CFLDModel(**get_preset("synthetic").model).eval()
    g = torch.Generator().manual_seed(1)
    img = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    ps, pt = torch.rand(2, 21, 64, 64, generator=g), torch.rand(2, 21, 64, 64, generator=g)
    # make the zero-initialised output convs non-zero so "kept" biases are distinguishable
    with torch.no_grad():
        for conv in model.appearance_encoder.zero_conv_outs:
            conv.weight.normal_(0, 0.1)
    drop = torch.tensor([True, False, False, True])
    with torch.no_grad():
        paper = training_conditions(model, img, ps, pt, drop, dropout="paper")
        official = training_conditions(model, img, ps, pt, drop, dropout="official")
    for cond in (paper, official):
        for i in (0, 3):
            assert torch.equal(cond.prompt[i], model.uncond_prompt[0])
        for i in (1, 2):
            assert not torch.equal(cond.prompt[i], model.uncond_prompt[0])
    for r_paper, r_off in zip(paper.pose_residuals, official.pose_residuals, strict=True):
        assert torch.count_nonzero(r_paper[[0, 3]]) == 0
        assert torch.count_nonzero(r_paper[[1, 2]]) > 0
        assert torch.count_nonzero(r_off[[0, 3]]) > 0
    for key, b in paper.app_biases.items():
        assert torch.count_nonzero(b[[0, 3]]) == 0, key
        assert torch.count_nonzero(b[[1, 2]]) > 0, key
        assert torch.count_nonzero(official.app_biases[key][[0, 3]]) > 0, key


# ------------------------------------------------------------------------------------ CLI
def test_cli_train_official_trainable_set(data_root, tmp_path, capsys):
    """`cfld train --trainable official`: frozen UNet weights stay bit-identical while the 18
    up-block cross-attention W_k/W_v and the conditioning modules learn."""
    from accelerate.utils import set_seed

    from cfld.cli import main
    from cfld.models.unet import trainable_unet_parameters
    from cfld.training.trainer import build_model

    out = tmp_path / "cli"
    code = main(["train", "--data", str(data_root), "--out", str(out), "--max-steps", "2",
                 "--batch-size", "1", "--sample-every", "-1", "--no-progress", "--seed", "3",
                 "--trainable", "official", "--lr", "1e-2", "--warmup-steps", "0",
                 "--snr-gamma", "5", "--low-noise-fraction", "0.5", "--low-noise-max-t", "50"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and math.isfinite(summary["final_loss"])
    cfg = TrainConfig.load(out / "config.json")
    assert (cfg.seed, cfg.trainable, cfg.preset, cfg.lr, cfg.snr_gamma) == (
        3, "official", "synthetic", 1e-2, 5.0)
    assert (cfg.low_noise_fraction, cfg.low_noise_max_t) == (0.5, 50)

    set_seed(cfg.seed)  # the trainer's init: same seed, same order
    initial = build_model(cfg)
    before = initial.state_dict()
    after = load_file(str(out / MODEL_WEIGHTS))
    kv = {f"unet.{n}" for n, _ in trainable_unet_parameters(
        initial.unet, initial.appearance_encoder.block_idx)}
    assert len(kv) == 18 and all(".attn2.to_k." in k or ".attn2.to_v." in k for k in kv)
    frozen = [k for k in before if k.startswith("unet.") and k not in kv]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert all(not torch.equal(before[k], after[k]) for k in kv)
    others = [k for k in before if not k.startswith("unet.") and k in after]
    assert any(not torch.equal(before[k], after[k]) for k in others)


def test_cli_full_preset_needs_pretrained_sd(data_root, tmp_path, capsys):
    from cfld.cli import main

    code = main(["train", "--preset", "fashion_256", "--data", str(data_root), "--out",
                 str(tmp_path / "full"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--pretrained-sd" in err and "fashion_256" in err and len(err.strip().splitlines()) == 1


def test_config_validation_and_round_trip(tmp_path):
    cfg = TrainConfig(data_root="x", decay_epochs=[50, 80], adam_betas=[0.9, 0.99])
    path = cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(path) == cfg
    for bad in (dict(dropout="both"), dict(mixed_precision="fp8"), dict(trainable="none"),
                dict(batch_size=0), dict(preset="huge"), dict(lr=0.0)):
        with pytest.raises(ValueError):
            TrainConfig(data_root="x", **bad).validate()
    with pytest.raises(ValueError, match="data_root"):
        TrainConfig().validate()


# ------------------------------------------------------------------------------------ SD-VAE path
def _tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                         block_out_channels=(8, 8, 8, 8), norm_num_groups=8, sample_size=128,
                         down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4)


def test_encode_latents_samples_the_posterior_with_the_trainer_generator():
    from cfld.training.trainer import encode_latents

    vae = _tiny_vae().eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z1 = encode_latents(vae, x, torch.Generator().manual_seed(4))
    z2 = encode_latents(vae, x, torch.Generator().manual_seed(4))
    assert torch.equal(z1, z2) and z1.shape == (2, 4, 4, 4)
    with torch.no_grad():
        dist = vae.encode(x).latent_dist
    eps = torch.randn(dist.mean.shape, generator=torch.Generator().manual_seed(4))
    expected = (dist.mean + dist.std * eps) * vae.config.scaling_factor
    assert torch.allclose(z1, expected, atol=1e-6)
    assert not torch.allclose(z1, dist.mean * vae.config.scaling_factor)


def test_train_with_an_sd_vae_gives_the_hand_computed_first_loss(data_root, tmp_path):
    """With an SD-style KL autoencoder (tiny preset, --pretrained-sd), step 0's loss is the
    objective on latents made by hand: the posterior SAMPLED as mean + std·ε with ε from the
    pair's own stream, times the VAE's scaling factor (fidelity §6.1 step 1), the noise, the
    timestep and dropout uniforms drawn after it from the same streams, the first pair of the
    epoch-0 permutation."""
    from accelerate.utils import set_seed
    from torch.utils.data import default_collate

    from cfld.data.datasets import DeepFashionTrain
    from cfld.presets import get_preset
    from cfld.seeding import sample_generators
    from cfld.training.build import build_autoencoder, build_model, build_noise_scheduler
    from cfld.training.draws import SampleDraws
    from cfld.training.objective import training_step_loss

    sd = tmp_path / "sd"
    vae = _tiny_vae()
    vae.register_to_config(scaling_factor=0.5)  # not 1 and not SD's: a dropped factor shows
    vae.save_pretrained(sd / "vae")
    cfg = _config(data_root, tmp_path / "tiny", preset="tiny", pretrained_sd=str(sd),
                  init_unet=False, max_steps=1, export=False, checkpoint_every=-1)
    result = train(cfg)
    assert len(result["losses"]) == 1
    assert result["checkpoint"] is None and not (tmp_path / "tiny" / "checkpoints").exists()

    preset = get_preset("tiny")
    set_seed(cfg.seed)  # the trainer's order: seed, autoencoder, model
    vae, model = build_autoencoder(cfg, preset), build_model(cfg, preset)
    assert vae.config.scaling_factor == 0.5
    model.train()
    s = preset.source_size
    data = DeepFashionTrain(cfg.data_root, gen_size=preset.image_size, cond_size=(s, s),
                            pose_size=preset.pose_size, flip_p=cfg.flip_p, seed=cfg.seed)
    data.set_epoch(0)
    first = int(EpochBatchSampler(len(data), 1, cfg.seed).permutation(0)[0])
    b = default_collate([data[first]])
    draws = SampleDraws(cfg.seed, 0, [0])
    with torch.no_grad():
        dist = vae.encode(torch.cat([b["img_src"], b["img_tgt"]])).latent_dist
        eps = draws.normal(dist.mean.shape[1:])
        latents = (dist.mean + dist.std * eps) * 0.5
        noise = draws.normal(latents.shape[1:])
        tu, du = draws.uniform(), draws.uniform()
        with sample_generators(draws.drop_path):
            loss = training_step_loss(model, build_noise_scheduler(cfg.prediction_type),
                                      latents, noise, b["img_cond"], b["pose_img_src"],
                                      b["pose_img_tgt"], tu, du, drop_prob=cfg.drop_prob,
                                      dropout=cfg.dropout, timestep_sampling="cubic"
                                      if cfg.cubic_sampling else "uniform").loss
    assert result["losses"][0] == pytest.approx(loss.item(), rel=1e-5)
    with torch.no_grad(), sample_generators(SampleDraws(cfg.seed, 0, [0]).drop_path):
        mean_only = training_step_loss(model, build_noise_scheduler(cfg.prediction_type),
                                       dist.mean * 0.5, noise, b["img_cond"], b["pose_img_src"],
                                       b["pose_img_tgt"], tu, du, drop_prob=cfg.drop_prob,
                                       dropout=cfg.dropout).loss
    assert not math.isclose(mean_only.item(), loss.item(), rel_tol=1e-3)  # the sample matters


@pytest.mark.parametrize("kind", ["epsilon", "sample", "v_prediction"])
def test_min_snr_weighting_caps_the_x0_space_weight(kind):
    """snr_gamma: each sample's MSE is weighted so its x0-space weight is min(SNR, γ); an
    unbounded γ gives ε-MSE back for ε models, and None keeps the official equal weights."""
    from diffusers import DDPMScheduler

    from cfld.models.cfld import CFLDModel
    from cfld.presets import get_preset
    from cfld.training.objective import training_step_loss
    from cfld.training.trainer import NOISE_SCHEDULER_CONFIG

    torch.manual_seed(0)
    model = CFLDModel(**get_preset("synthetic").model).eval()
    sched = DDPMScheduler(**{**NOISE_SCHEDULER_CONFIG, "prediction_type": kind})
    g = torch.Generator().manual_seed(2)
    lat, noise = torch.randn(4, 48, 16, 16, generator=g), torch.randn(4, 48, 16, 16, generator=g)
    img = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    ps, pt = torch.rand(2, 21, 64, 64, generator=g), torch.rand(2, 21, 64, 64, generator=g)
    tu, du = torch.tensor([0.01, 0.3, 0.6, 0.99]), torch.ones(4)

    def run(gamma):
        with torch.no_grad():
            return training_step_loss(model, sched, lat, noise, img, ps, pt, tu, du,
                                      dropout="paper", timestep_sampling="uniform",
                                      snr_gamma=gamma)

    plain, capped = run(None), run(5.0)
    target = {"epsilon": noise, "sample": lat,
              "v_prediction": sched.get_velocity(lat, noise, plain.timesteps)}[kind]
    per_sample = ((target - plain.noise_pred) ** 2).flatten(1).mean(1)
    assert plain.loss.item() == pytest.approx(per_sample.mean().item(), rel=1e-5)
    abar = sched.alphas_cumprod[plain.timesteps]
    snr = abar / (1 - abar)
    x0_weight = {"epsilon": snr, "sample": torch.ones_like(snr), "v_prediction": snr + 1}[kind]
    expected = (snr.clamp(max=5.0) / x0_weight * per_sample).mean()
    assert capped.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not math.isclose(capped.loss.item(), plain.loss.item(), rel_tol=1e-3)
    if kind == "epsilon":
        assert run(1e9).loss.item() == pytest.approx(plain.loss.item(), rel=1e-5)
    with pytest.raises(ValueError, match="snr_gamma"):
        TrainConfig(data_root="x", snr_gamma=0.0).validate()


@pytest.mark.parametrize("base", ["uniform", "cubic"])
def test_low_noise_mixture_of_timesteps(base):
    """low_noise_fraction f: draws u < f map uniformly onto [0, t_max), the rest through the base
    sampler rescaled to [0, 1); f = 0 is the base sampler bit for bit (official fixtures)."""
    from cfld.training.objective import TIMESTEP_SAMPLERS, sample_timesteps

    u = (torch.arange(100000, dtype=torch.float64) + 0.5) / 100000  # an even grid on [0, 1)
    plain = TIMESTEP_SAMPLERS[base](u, 1000)
    assert torch.equal(sample_timesteps(u, 1000, base), plain)
    assert torch.equal(sample_timesteps(u, 1000, base, 0.0, 10), plain)
    t = sample_timesteps(u, 1000, base, 0.8, 100)
    assert t.min() == 0 and t.max() == 999
    low = t[u < 0.8]
    assert low.max() == 99 and torch.bincount(low, minlength=100).float().std() < 1e-3 * 800
    # the other 20 % are the base sampler's distribution, rescaled
    assert torch.equal(t[u >= 0.8], TIMESTEP_SAMPLERS[base]((u[u >= 0.8] - 0.8) / 0.2, 1000))
    expected_low = 0.8 + 0.2 * (plain < 100).double().mean()
    assert (t < 100).double().mean().item() == pytest.approx(expected_low.item(), abs=1e-4)
    with pytest.raises(ValueError, match="low_noise_fraction"):
        sample_timesteps(u, 1000, base, 1.0, 100)
    with pytest.raises(ValueError, match="low_noise_fraction"):
        TrainConfig(data_root="x", low_noise_fraction=-0.1).validate()
    with pytest.raises(ValueError, match="low_noise_max_t"):
        TrainConfig(data_root="x", low_noise_fraction=0.5, low_noise_max_t=0).validate()
