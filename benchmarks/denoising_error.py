"""How well a model recovers the clean image at each noise level, on unseen procedural pairs.

    python benchmarks/denoising_error.py                                   # the shipped model
    python benchmarks/denoising_error.py --model runs/synthetic/finetune2/model --label s3

For each timestep t the true target latents z0 of unseen pairs are noised (Eq. 1,
z_t = √ᾱ_t·z0 + √(1−ᾱ_t)·ε) and the fully conditioned network is asked for its estimate of z0
(x0-prediction models directly; ε and v models through the scheduler's identities).  Next to
the model's mean squared error the script reports the error of the trivial estimate z_t/√ᾱ_t,
whose error is pure noise of variance (1−ᾱ_t)/ᾱ_t.

Why this matters for the shipped model: DDPM's last step returns the network's estimate at
t = 1, so the model's error there is a floor under every sample's sharpness.  Where that floor
lies far above the trivial estimate's error, the network blurs detail it was given, and the blur
widens the silhouette (README, "The shipped small model").  Writes
``benchmarks/results/denoising_error[_<label>].json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TIMESTEPS = (1, 5, 20, 50, 100, 200, 400, 700, 950)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="pipeline folder (default: shipped)")
    parser.add_argument("--label", default=None, help="result file suffix")
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from cfld.data import ANNOTATION_TEST, TEST_DIR, load_image, read_annotations
    from cfld.data.images import to_tensor
    from cfld.demo import evaluation_pairs, make_held_out_root
    from cfld.shipped import load_pipeline
    from common import clean_estimate  # benchmarks/ is on sys.path as the script's dir

    pipe = load_pipeline(args.model)
    sched = pipe.scheduler
    kind = sched.config.prediction_type
    rows = {t: [0.0, 0.0] for t in TIMESTEPS}
    generator = torch.Generator().manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        root = make_held_out_root(Path(tmp) / "held_out", -(-args.pairs // 12))
        pairs = evaluation_pairs(root, args.pairs)
        annotations = read_annotations(root / ANNOTATION_TEST)
        for start in range(0, len(pairs), 8):
            chunk = pairs[start:start + 8]
            sources = [load_image(root / TEST_DIR / s) for s, _ in chunk]
            cond, _ = pipe.encode_conditions(sources, [annotations[t] for _, t in chunk])
            targets = torch.stack([to_tensor(load_image(root / TEST_DIR / t,
                                                         tuple(pipe.image_size)))
                                   for _, t in chunk]) * 2 - 1  # (b,3,H,W) in [-1, 1]
            z0 = pipe.encode_images(targets)
            for t in TIMESTEPS:
                noise = torch.randn(z0.shape, generator=generator)
                abar = sched.alphas_cumprod[t]
                zt = abar.sqrt() * z0 + (1 - abar).sqrt() * noise  # Eq. (1)
                out = pipe.model.predict_noise(zt, torch.full((len(chunk),), t), cond)
                x0 = clean_estimate(kind, zt, abar, out)
                rows[t][0] += float(((x0 - z0) ** 2).mean()) * len(chunk)
                rows[t][1] += float(((zt / abar.sqrt() - z0) ** 2).mean()) * len(chunk)
    n = len(pairs)
    result = {
        "model": args.model or "shipped",
        "prediction_type": kind,
        "num_pairs": n,
        "mse_by_timestep": {
            str(t): {"model": round(m / n, 6), "z_t_over_sqrt_abar": round(i / n, 6)}
            for t, (m, i) in rows.items()},
    }
    path = RESULTS / ("denoising_error" + (f"_{args.label}" if args.label else "") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print("| t | model x0 MSE | z_t/√ᾱ MSE |\n|---|---|---|")
    for t, v in result["mse_by_timestep"].items():
        print(f"| {t} | {v['model']:.5f} | {v['z_t_over_sqrt_abar']:.5f} |")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
