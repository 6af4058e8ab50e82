"""Train the shipped small CFLD model on procedural people — one reproducible command.

    python benchmarks/train_synthetic.py --out runs/synthetic --install  # the shipped model
    python benchmarks/train_synthetic.py --out /tmp/timing --timing 50   # measure s/step only

1. Writes the procedural data set (``cfld data synth`` with a fixed seed) into ``<out>/data``
   unless it is already there: 500 training people × 6 poses at 128×88 (≤ 20 ordered pairs per
   person → 10,000 training pairs) and 10 held-out people (200 test pairs, people never seen in
   training).
2. Trains preset ``synthetic`` (pixel-space latents, trainable set ``all``, UNet from scratch)
   on the CPU with :func:`cfld.training.train`, writing checkpoints, sample grids, TensorBoard
   logs and finally the inference folder ``<out>/run/model``.  Rerunning the same command
   resumes from the newest checkpoint (exactly; a resumed run keeps the LR schedule stored in
   its checkpoint, so a larger ``--steps`` extends the run at the decayed LR).

Measured on the 2 shared CPU cores of the dev VM (AMD EPYC, fp32): ONE torch thread, batch 8:
1.07 s/step (batch 16: 1.70 s/step); TWO threads: 8.8–18.6 s/step whenever another process was
busy (OpenMP threads waiting on each other), hence ``--threads 1``.  bf16 autocast: 1.05 s/step
(no gain), so the default is fp32.  Measure the current preset with ``--timing 50``.

Recipe changes from the paper's fine-tuning recipe (a from-scratch model, a few thousand steps):
LR 5e-4 with a 200-step warm-up and ×0.1 for the last 20 % of the steps; the paper's joint
classifier-free dropout (prompt + appearance + pose), which trains the exact "unconditional"
states that the pipeline's default guidance (Eq. 7) queries.  Everything else is official:
x0-prediction and uniform timesteps (cubic sampling is for fine-tuning a pretrained SD UNet: from scratch it
leaves the low-noise steps untrained).  Everything else is official: Adam (0.9, 0.999, 1e-8),
η = 0.2, the DDPM schedule.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DATA = dict(people=500, poses=6, size=(128, 88), seed=0, test_people=10, max_pairs_per_person=20)


def make_data(root: Path) -> Path:
    """Write the procedural data set once (byte-identical for the fixed seed)."""
    from cfld.data.synthetic import synthesize

    if (root / "fasion-resize-pairs-test.csv").is_file() and (root / "train.lst").is_file():
        return root
    t0 = time.perf_counter()
    stats = synthesize(root, log=lambda line: print(f"[data] {line}", flush=True), **DATA)
    print(f"[data] {int(stats['images'])} images in {time.perf_counter() - t0:.1f}s", flush=True)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/synthetic", help="folder for data/ and run/")
    parser.add_argument("--steps", type=int, default=2000,
                        help="optimiser steps (default 2000)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per step (default 8)")
    parser.add_argument("--lr", type=float, default=5e-4, help="base LR (default 5e-4)")
    parser.add_argument("--warmup-steps", type=int, default=200)
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
    steps = args.timing or args.steps
    train_pairs = sum(1 for _ in open(data / "fasion-resize-pairs-train.csv")) - 1
    iters_per_epoch = train_pairs // args.batch_size
    total_epochs = steps / iters_per_epoch
    # ×0.1 for the last 20 % of the steps (a fractional epoch).
    decay_epoch = round(0.8 * steps) / iters_per_epoch
    decay_steps_note = f"LR ×0.1 from step {round(0.8 * steps)}"
    config = TrainConfig(
        preset="synthetic",
        data_root=str(data),
        output_dir=str(out / ("timing" if args.timing else "run")),
        trainable="all",
        batch_size=args.batch_size,
        max_steps=steps,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        decay_epochs=(decay_epoch,),
        dropout="paper",
        # From scratch every noise level must be learnt: uniform t (the official cubic
        # sampling, made for fine-tuning SD, leaves the low-noise steps nearly untrained).
        cubic_sampling=False,
        # Predict the clean image (x0), not ε: for this strongly conditioned task the network
        # learns the person's layout from pose + appearance directly; ε-prediction from scratch
        # must first learn to pass 48 channels of noise through the UNet (slow on a CPU budget).
        prediction_type="sample",
        mixed_precision=args.mixed_precision,
        seed=args.seed,
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
    print(f"[train] {train_pairs} pairs, {iters_per_epoch} steps/epoch, {steps} steps "
          f"({total_epochs:.2f} epochs), {decay_steps_note}", flush=True)
    cpu0 = time.process_time()
    result = train(config)
    cpu_seconds = time.process_time() - cpu0
    losses = result["losses"]
    chunk = max(1, len(losses) // 10)
    curve = [round(sum(losses[i:i + chunk]) / len(losses[i:i + chunk]), 4)
             for i in range(0, len(losses), chunk)]
    summary = {
        "steps": result["steps"],
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
    if args.install and result["model_dir"]:
        from cfld.shipped import package_pipeline

        print(f"[install] {package_pipeline(result['model_dir'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
