"""Train the shipped small CFLD model on procedural people — one reproducible command.

    python benchmarks/train_synthetic.py --out runs/synthetic --install  # the shipped model
    python benchmarks/train_synthetic.py --out /tmp/timing --timing 50   # measure s/step only

1. Writes the procedural data set (``cfld data synth`` with a fixed seed) into ``<out>/data``
   unless it is already there: 500 training people × 6 poses at 128×88 (≤ 20 ordered pairs per
   person → 10,000 training pairs) and 10 held-out people (200 test pairs, people never seen in
   training).
2. Stage 1 (``<out>/run``): trains preset ``synthetic`` (pixel-space latents, trainable set
   ``all``, UNet from scratch) on the CPU with :func:`cfld.training.train` for ``--steps``
   (2,000) steps at LR 5e-4, writing checkpoints, sample grids, TensorBoard logs and the
   inference folder ``<out>/run/model``.
3. Stage 2 (``<out>/finetune``): continues from that model (``TrainConfig.init_from``: the
   weights, with a fresh Adam state and LR schedule) for 3,000 steps at LR 2e-4.  A restarted
   schedule (SGDR-style) lets the model leave the plateau stage 1 ended on.
4. Stage 3 (``<out>/finetune2``): 1,500 more steps at LR 1e-4 with Min-SNR-γ loss weighting
   (γ = 5, ``TrainConfig.snr_gamma``): the x0-space weight of a noise level becomes min(SNR, 5)
   instead of 1, which moves the gradient from the high-noise levels (where an x0 network can
   only predict the blurred mean) to the low-noise levels that draw the edges.  Silhouette IoU
   on 200 unseen pairs 0.704 → 0.719 (a plain stage 3, 2,000 steps at 1e-4: 0.709).
5. Stage 4 (``<out>/finetune3``): 4,000 more steps at LR 1e-4, Min-SNR-γ 5, with 80 % of the
   timesteps drawn from [0, 100) (``TrainConfig.low_noise_fraction``).  After stage 3 the
   network's x0 error at t = 1 was 3.4× the error of simply returning its near-clean input
   (``benchmarks/denoising_error.py``): it blurred detail it was given, and DDPM's last step
   returns that estimate.  Stage 4 cuts that error from 0.0058 to 0.0026 and raises the IoU on
   200 unseen pairs to 0.744 (with 50 % low-noise timesteps: 0.739; 100 %, 600 steps: the
   high-noise steps degrade and the IoU drops).  It costs high-noise accuracy (x0 error at
   t = 950: 0.046 → 0.055).
6. Stage 5 (``<out>/finetune4``): 3,000 more steps at LR 1e-4, Min-SNR-γ 5, 65 % low-noise
   timesteps.  The lighter mix gives some high-noise accuracy back (t = 950: 0.051) while the
   t = 1 error keeps falling (0.0020): IoU 0.757 (another 80 % stage instead: 0.753).
7. Stage 6 (``<out>/finetune5``): 3,000 more steps the same way at LR 5e-5.  Errors fall at every
   noise level (t = 1: 0.0018, the identity's 0.0017; t = 950: 0.051): IoU 0.760.  Within a
   stage the IoU at full LR is far below its end value (stage 4 after 1,600 of 4,000 steps:
   0.711 on 24 pairs, at its end 0.750), so each stage's ×0.1 tail matters.
   ``--install`` packages the last stage's model into ``cfld/assets/cfld-synthetic``.

8. Appearance (README, "The shipped small model"): ``<out>/encoder`` pre-trains H_S and H_D
   (``cfld.training.encoder_pretrain``, ``--encoder-steps`` 3,000) on ``<out>/data_rich``
   (DATA_RICH: 2,000 people), then ``<out>/appearance1..7`` fine-tune at LR 1e-4 with cubic
   timesteps, 30 % low-noise t and no Min-SNR (``--appearance-steps`` 500 ×5, 3,000, 2,500).
   Stages 1–5 share the seed 3407 and, each shorter than an epoch (5,000 steps), therefore see
   the SAME 4,000 pairs and draws; stages 6 and 7 have their own seeds (``--appearance-seeds``)
   and see new pairs: the x0 estimate's part-colour error at t = 999 fell from 0.213 to 0.170
   in stage 6 (48 test pairs of DATA), where stages 2–5 had moved it by about 0.01 each.

Rerunning the command skips finished stages and resumes an interrupted one from its newest
checkpoint (exactly; a resumed run keeps the LR schedule stored in its checkpoint).  A finished
stage whose saved settings (steps, LR, prediction, γ, low-noise share) differ from the ones asked
for stops the command instead of being built on.

Measured on the 2 shared CPU cores of the dev VM (AMD EPYC, fp32): ONE torch thread, batch 8:
0.92–1.1 s/step (batch 16: 1.70 s/step); TWO threads: 8.8–18.6 s/step whenever another process
was busy (OpenMP threads waiting on each other), hence ``--threads 1``.  bf16 autocast: 1.05
s/step (no gain), so the default is fp32.  The six stages (16,500 steps) take about 4.9 h.

Recipe changes from the paper's fine-tuning recipe (a from-scratch model, a few thousand steps):
higher LRs with short warm-ups and ×0.1 for the last 20 % of each stage; the paper's joint
classifier-free dropout (prompt + appearance + pose), which trains the exact "unconditional"
states that the pipeline's default guidance (Eq. 7) queries; x0-prediction instead of ε (from
scratch, ε-prediction must first learn to pass 48 channels of noise through the UNet) and
uniform timesteps (cubic sampling is for fine-tuning a pretrained SD UNet: from scratch it
leaves the low-noise steps untrained).  Everything else is official: Adam (0.9, 0.999, 1e-8),
η = 0.2, the DDPM schedule.

Tried and not used: stage 2 as v-prediction (``--finetune-prediction v_prediction``, the x0
network re-read as a v network).  v builds the identity z_t → x0 at low noise into the
parametrisation, but the network must relearn its output at mid noise: after 200 steps its
silhouette IoU was 0.18 (x0 stage 2 at the same point: 0.65), so it was stopped.  Also tried
from scratch (``--prediction v_prediction``): samples keep visible noise for thousands of steps
while the network learns to pass 48 noise channels through (IoU 0.25 after 1,200 steps at widths
64/64/128/128, 0.36 after 2,000 steps at 96/96/96/96; x0: 0.66).  Wider UNet levels with x0
(``--unet-widths 96,96,96,96``, same parameter count, +30 % time): 5 % lower loss but the same
IoU after stages 1-2 (0.708 vs 0.710 on 24 pairs), so the preset keeps 64/64/128/128.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DATA = dict(people=500, poses=6, size=(128, 88), seed=0, test_people=10, max_pairs_per_person=20)
# The appearance stages' data: the same seed (its first 500 people are DATA's) with 2,000 people,
# so that a stage of a few thousand steps sees every person about once and cannot memorise
# anyone's clothes (40,000 pairs).
DATA_RICH = dict(DATA, people=2000)


def make_data(root: Path, spec: dict | None = None) -> Path:
    """Write the procedural data set once (byte-identical for the fixed seed)."""
    from cfld.data.synthetic import synthesize

    if (root / "fasion-resize-pairs-test.csv").is_file() and (root / "train.lst").is_file():
        return root
    t0 = time.perf_counter()
    stats = synthesize(root, log=lambda line: print(f"[data] {line}", flush=True),
                       **(spec or DATA))
    print(f"[data] {int(stats['images'])} images in {time.perf_counter() - t0:.1f}s", flush=True)
    return root


def x0_model_as_v_prediction(src: Path, dst: Path) -> Path:
    """The stage-1 x0-prediction model, re-read as a v-prediction model (stage-2 start point).

    v-prediction recovers x0 = √ᾱ·z_t − √(1−ᾱ)·v.  At high noise (ᾱ → 0) v ≈ −x0, so negating
    the UNet's output layer makes the start point predict the same x0 there as stage 1 did;
    at low noise x0 ≈ z_t is built in, which the x0 network had to (and failed to) learn.
    """
    import torch

    from cfld.checkpoint import atomic_save_dir
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

    if (dst / "model_index.json").is_file():
        return dst
    pipe = CFLDPipeline.from_pretrained(src)
    with torch.no_grad():
        pipe.model.unet.conv_out.weight.neg_()
        pipe.model.unet.conv_out.bias.neg_()
    pipe.scheduler.register_to_config(prediction_type="v_prediction")
    return atomic_save_dir(dst, lambda tmp: pipe.save_pretrained(tmp, safe_serialization=True))


def pretrain_encoder_stage(src: Path, dst: Path, data: Path, steps: int) -> Path:
    """Appearance pre-training of H_S and H_D (cfld.training.encoder_pretrain) on ``src``'s
    weights; writes the pipeline folder ``dst`` (skipped when it exists)."""
    from cfld.checkpoint import atomic_save_dir
    from cfld.pipelines.pipeline_cfld import CFLDPipeline
    from cfld.training.encoder_pretrain import EncoderPretrainConfig, pretrain_appearance_encoder

    if (dst / "model_index.json").is_file():
        print(f"[encoder] already trained: {dst}", flush=True)
        return dst
    pipe = CFLDPipeline.from_pretrained(src)
    stats = pretrain_appearance_encoder(pipe.model, data, EncoderPretrainConfig(steps=steps),
                                        log=lambda line: print(line, flush=True))
    print(json.dumps({"stage": "encoder", **stats}), flush=True)
    return atomic_save_dir(dst, lambda tmp: pipe.save_pretrained(tmp, safe_serialization=True))


def widths_overrides(widths: list[int]) -> dict:
    """CFLDModel overrides of preset ``synthetic`` for other UNet block widths.

    The pose adapter's levels must equal the first three down-block widths and each appearance
    branch the width of the UNet block it biases (three branches per level).
    """
    from cfld.presets import get_preset

    model = get_preset("synthetic").model
    if len(widths) != len(model["unet_config"]["block_out_channels"]):
        raise SystemExit(f"--unet-widths needs {len(model['unet_config']['block_out_channels'])} "
                         f"values, got {widths}")
    model["unet_config"]["block_out_channels"] = widths
    model["pose_adapter_config"]["channels"] = widths[:3]
    model["appearance_config"]["ctx_dims"] = [w for w in widths[:3] for _ in range(3)]
    return {key: model[key] for key in ("unet_config", "pose_adapter_config", "appearance_config")}


def check_finished_stage(stage_dir: Path, wanted: dict[str, object]) -> None:
    """Refuse to reuse a finished stage trained with other settings than the ones asked for.

    A finished stage is skipped on a rerun; without this check a changed recipe (say another
    ``--finetune-low-noise``) would silently build on the old stage's weights.
    """
    config_path = stage_dir / "config.json"
    if not config_path.is_file():
        return
    saved = json.loads(config_path.read_text())
    diff = {key: (saved.get(key), value) for key, value in wanted.items()
            if key in saved and saved.get(key) != value}
    if diff:
        changes = ", ".join(f"{k}: trained {old!r}, asked {new!r}"
                            for k, (old, new) in diff.items())
        raise SystemExit(f"{stage_dir} was trained with other settings ({changes}); use another "
                         f"--out, or move that folder away to retrain it and the stages after it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/synthetic", help="folder for data/ and run/")
    parser.add_argument("--steps", type=int, default=2000,
                        help="optimiser steps (default 2000)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per step (default 8)")
    parser.add_argument("--lr", type=float, default=5e-4, help="base LR (default 5e-4)")
    parser.add_argument("--warmup-steps", type=int, default=200)
    parser.add_argument("--finetune-steps", default="3000,1500,4000,3000,3000",
                        help="later stages: comma-separated step counts, each stage continued "
                             "from the previous stage's model with a fresh optimiser and "
                             "schedule (default 3000,1500,4000,3000,3000; 0 = stage 1 only)")
    parser.add_argument("--prediction", default="sample",
                        choices=("sample", "v_prediction"),
                        help="what the stage-1 network predicts (default sample = x0)")
    parser.add_argument("--finetune-snr-gamma", default="none,5,5,5,5",
                        help="Min-SNR-γ loss weighting of each later stage, comma-separated like "
                             "--finetune-steps; none = equal weights (default none,5,5,5,5)")
    parser.add_argument("--finetune-low-noise", default="0,0,0.8,0.65,0.65",
                        help="share of each later stage's samples whose timestep is drawn "
                             "uniformly from [0, 100) instead (TrainConfig.low_noise_fraction), "
                             "comma-separated like --finetune-steps (default 0,0,0.8,0.65,0.65)")
    parser.add_argument("--unet-widths", default=None,
                        help="UNet block widths, comma-separated (default: the preset's); the "
                             "pose adapter and appearance branches follow")
    parser.add_argument("--finetune-prediction", default=None,
                        choices=("sample", "v_prediction"),
                        help="what the stage-2 network predicts (default sample = x0, as stage "
                             "1; v_prediction re-reads the x0 network as a v network, see "
                             "x0_model_as_v_prediction)")
    parser.add_argument("--finetune-lr", default="2e-4,1e-4,1e-4,1e-4,5e-5",
                        help="base LR of each later stage, comma-separated like "
                             "--finetune-steps (default 2e-4,1e-4,1e-4,1e-4,5e-5; ×0.1 for each "
                             "stage's last 20 %%)")
    parser.add_argument("--encoder-steps", type=int, default=3000,
                        help="appearance pre-training steps of H_S and H_D after the shape "
                             "stages (default 3000; 0 = no appearance stages)")
    parser.add_argument("--appearance-steps", default="500,500,500,500,500,3000,2500",
                        help="appearance stages after the encoder pre-training, comma-separated "
                             "step counts; each continues from the previous model on DATA_RICH "
                             "with cubic timesteps, 30 %% low-noise t and no Min-SNR")
    parser.add_argument("--appearance-lr", type=float, default=1e-4)
    parser.add_argument("--appearance-part-balance", default="0",
                        help="β of the part-balanced loss per appearance stage, comma-separated "
                             "like --appearance-steps, or one value for all (0 = off)")
    parser.add_argument("--appearance-seeds", default="3407,3407,3407,3407,3407,3413,3414",
                        help="seed of each appearance stage, comma-separated like "
                             "--appearance-steps (default: the shipped model's; 'same' = --seed "
                             "for every stage).  The seed "
                             "fixes the stage's data order and draws: stages of equal seed and "
                             "fewer steps than an epoch see the SAME pairs")
    parser.add_argument("--mixed-precision", default="no", choices=("no", "bf16"),
                        help="bf16 autocast on CPU (default no: measured not faster here)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on 2 shared cores 2 threads were "
                             "10-17x slower whenever another process was busy)")
    parser.add_argument("--seed", type=int, default=3407)
    parser.add_argument("--install", action="store_true",
                        help="copy the trained model into src/cfld/assets/cfld-synthetic "
                             "(float16 weights): the model `cfld demo` ships")
    parser.add_argument("--timing", type=int, default=0, metavar="N",
                        help="only time N steps (no checkpoints, grids or export) and print "
                             "seconds/step and the losses")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from cfld.training import TrainConfig, train

    out = Path(args.out)
    data = make_data(out / "data")
    if args.finetune_prediction is None:
        args.finetune_prediction = args.prediction
    if args.prediction == "v_prediction" and args.finetune_prediction == "sample":
        parser.error("a v-prediction stage 1 cannot be continued as x0 prediction")
    # (name, steps, lr, warm-up, init, prediction, Min-SNR γ, low-noise share, data, cubic, seed,
    #  part balance β)
    stages = [("run", args.steps, args.lr, args.warmup_steps, None, args.prediction, None, 0.0,
               data, False, args.seed, 0.0)]
    ft_steps = [int(v) for v in str(args.finetune_steps).split(",") if int(v) > 0]
    ft_lrs = [float(v) for v in str(args.finetune_lr).split(",")]
    ft_gammas = [None if v.strip().lower() == "none" else float(v)
                 for v in str(args.finetune_snr_gamma).split(",")]
    ft_low = [float(v) for v in str(args.finetune_low_noise).split(",")]
    if min(len(ft_lrs), len(ft_gammas), len(ft_low)) < len(ft_steps):
        parser.error(f"--finetune-lr, --finetune-snr-gamma and --finetune-low-noise need "
                     f"{len(ft_steps)} values, one per --finetune-steps stage")
    # Later stages that switch x0 -> v get their own folders (finetune_v, finetune_v2, ...).
    base = "finetune_v" if args.finetune_prediction != args.prediction else "finetune"
    previous = out / "run" / "model"
    for i, (ft, lr, gamma, low) in enumerate(zip(ft_steps, ft_lrs, ft_gammas, ft_low)
                                             if not args.timing else ()):
        name = base + (str(i + 1) if i else "")
        stages.append((name, ft, lr, 100, previous, args.finetune_prediction, gamma, low, data,
                       False, args.seed, 0.0))
        previous = out / name / "model"
    if args.encoder_steps and not args.timing:
        # Appearance stages (README, "The shipped small model"): H_S/H_D pre-trained to carry
        # the source's part colours, then diffusion fine-tuning weighted to the high noise
        # levels where the colours are decided (the official cubic sampling), with 30 % of t
        # from [0, 100) to keep the edges, and no Min-SNR (which starves high noise).
        rich = make_data(out / "data_rich", DATA_RICH)
        encoder = ("encoder", previous, rich)
        previous = out / "encoder" / "model"
        app_steps = [int(v) for v in args.appearance_steps.split(",") if int(v) > 0]
        app_seeds = ([args.seed] * len(app_steps) if args.appearance_seeds == "same"
                     else [int(v) for v in args.appearance_seeds.split(",")])
        app_pb = [float(v) for v in args.appearance_part_balance.split(",")]
        app_pb = app_pb * len(app_steps) if len(app_pb) == 1 else app_pb
        if len(app_seeds) != len(app_steps) or len(app_pb) != len(app_steps):
            parser.error(f"--appearance-seeds and --appearance-part-balance need "
                         f"{len(app_steps)} values, one per --appearance-steps stage")
        for i, (ft, stage_seed, pb) in enumerate(zip(app_steps, app_seeds, app_pb)):
            name = f"appearance{i + 1}"
            stages.append((name, ft, args.appearance_lr, 50, previous, args.finetune_prediction,
                           None, 0.3, rich, True, stage_seed, pb))
            previous = out / name / "model"
    else:
        encoder = None
    overrides = {} if args.unet_widths is None else widths_overrides(
        [int(v) for v in args.unet_widths.split(",")])
    summaries = []
    model_dir = None
    for name, steps, lr, warmup, init_from, prediction, gamma, low, root, cubic, seed, pb in stages:
        steps = args.timing or steps
        if encoder is not None and init_from == out / "encoder" / "model":
            pretrain_encoder_stage(encoder[1], init_from, encoder[2], args.encoder_steps)
        stage_pairs = sum(1 for _ in open(root / "fasion-resize-pairs-train.csv")) - 1
        stage_epoch = stage_pairs // args.batch_size
        if init_from is not None and name == "finetune_v":
            init_from = x0_model_as_v_prediction(init_from, out / "run" / "model_as_v")
        if not args.timing and (out / name / "model" / "model_index.json").is_file():
            check_finished_stage(out / name, {
                "max_steps": steps, "lr": lr, "prediction_type": prediction,
                "snr_gamma": gamma, "low_noise_fraction": low, "cubic_sampling": cubic,
                "seed": seed, "part_balance": pb})
            print(f"[{name}] already trained: {out / name / 'model'}", flush=True)
            model_dir = str(out / name / "model")
            continue
        # ×0.1 for the last 20 % of the stage's steps (a fractional epoch).
        decay_epoch = round(0.8 * steps) / stage_epoch
        config = TrainConfig(
            preset="synthetic",
            data_root=str(root),
            output_dir=str(out / ("timing" if args.timing else name)),
            init_from=None if init_from is None else str(init_from),
            model_overrides=overrides,
            trainable="all",
            batch_size=args.batch_size,
            max_steps=steps,
            lr=lr,
            warmup_steps=warmup,
            decay_epochs=(decay_epoch,),
            dropout="paper",
            # From scratch every noise level must be learnt: uniform t (the official cubic
            # sampling, made for fine-tuning SD, leaves the low-noise steps nearly untrained).
            cubic_sampling=cubic,
            # Predict the clean image (x0), not ε: for this strongly conditioned task the network
            # learns the person's layout from pose + appearance directly; ε-prediction from
            # scratch must first learn to pass 48 channels of noise through the UNet.
            prediction_type=prediction,
            snr_gamma=gamma,
            low_noise_fraction=low,
            part_balance=pb,
            mixed_precision=args.mixed_precision,
            seed=seed,
            log_every=10,
            sample_every=-1 if args.timing else 400,
            sample_count=6,
            sample_steps=25,
            checkpoint_every=-1 if args.timing else 200,
            keep_checkpoints=2,
            num_workers=0,
            resume=None if args.timing else "latest",
            export=not args.timing,
            progress=sys.stderr.isatty(),
        )
        print(f"[{name}] {prediction} prediction"
              + (f" (Min-SNR-γ {gamma:g})" if gamma else "")
              + (f", {low:.0%} of t from [0, 100)" if low else "")
              + (", cubic t" if cubic else "")
              + f", {stage_pairs} pairs, {stage_epoch} steps/epoch, {steps} steps "
              f"({steps / stage_epoch:.2f} epochs), LR {lr:g}, ×0.1 from step "
              f"{round(0.8 * steps)}" + (f", initialised from {init_from}" if init_from else ""),
              flush=True)
        cpu0 = time.process_time()
        result = train(config)
        cpu_seconds = time.process_time() - cpu0
        losses = result["losses"]
        chunk = max(1, len(losses) // 10)
        curve = [round(sum(losses[i:i + chunk]) / len(losses[i:i + chunk]), 4)
                 for i in range(0, len(losses), chunk)]
        summary = {
            "stage": name,
            "steps": result["steps"],
            "lr": lr,
            "prediction_type": prediction,
            "snr_gamma": gamma,
            "low_noise_fraction": low,
            "part_balance": pb,
            "seconds_per_step": round(result["seconds_per_step"], 3),
            # CPU time of all threads (incl. start-up): wall time on an idle machine is roughly
            # this divided by the thread count; on a shared machine wall time is larger.
            "cpu_seconds_per_step": round(cpu_seconds / max(1, len(result["losses"])), 3),
            "batch_size": args.batch_size,
            "mixed_precision": args.mixed_precision,
            "loss_curve_mean_per_10pct": curve,
            "first_losses": [round(v, 4) for v in losses[:5]],
            "model_dir": result["model_dir"],
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
        }
        print(json.dumps(summary, indent=1), flush=True)
        summaries.append(summary)
        model_dir = result["model_dir"]
    if args.install and model_dir:
        from cfld.shipped import package_pipeline
        print(f"[install] {package_pipeline(model_dir)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
