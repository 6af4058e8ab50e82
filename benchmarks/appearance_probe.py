"""Where does the source's appearance get lost?  Probes of a procedural-people model.

    python benchmarks/appearance_probe.py --model runs/x/model --pairs 24 --threads 1

Measured (part-colour error with 2-px eroded masks, at the evaluation size, 128×88):

* ``x0``: the network's one-shot clean estimate from z_t at several noise levels, with the true
  source, another person's source (swapped), no appearance biases, and the learnable prompt in
  place of H_D's prompt.  A model that uses the source must score far lower with the true one,
  and most of all at high noise, where nothing of the target is left in z_t.
* ``sample``: full DDPM sampling with the true source, a swapped source and, for
  self-reconstruction, the source's own pose as target.
* ``zero_convs``: the norms of φ_A's output zero-convolution weights (they start at 0).

Writes a JSON (``--out``, default ``benchmarks/results/appearance_probe.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _batch_tensors(root: Path, pairs, size, image_size):
    from cfld.data import TEST_DIR, load_image
    from cfld.demo import _load_parts, _to_tensor

    gt = torch.stack([_to_tensor(load_image(root / TEST_DIR / t, size)) for _, t in pairs])
    gt_sq = torch.stack([_to_tensor(load_image(root / TEST_DIR / t, image_size)) for _, t in pairs])
    parts = torch.stack([_load_parts(root / "test_parts" / (Path(t).stem + ".png"), size)
                         for _, t in pairs])
    return gt, gt_sq, parts


def probe_x0(pipe, root: Path, pairs, swapped, timesteps, seed: int) -> dict:
    """Part-colour error of the one-shot x0 estimate at each noise level, per condition."""
    from cfld.data import ANNOTATION_TEST, TEST_DIR, load_image, read_annotations
    from cfld.metrics import part_colour_error
    from cfld.pipelines.pipeline_cfld import quantize, resize_output

    ann = read_annotations(root / ANNOTATION_TEST)
    size = tuple(pipe.default_output_size)
    gt, gt_sq, parts = _batch_tensors(root, pairs, size, tuple(pipe.image_size))
    src = [load_image(root / TEST_DIR / s) for s, _ in pairs]
    other = [load_image(root / TEST_DIR / s) for s in swapped]
    poses = [ann[t] for _, t in pairs]
    cond, _ = pipe.encode_conditions(src, poses)
    cond_sw, _ = pipe.encode_conditions(other, poses)
    variants = {
        "true": cond,
        "swapped": cond_sw,
        "no_biases": cond.without_appearance() if hasattr(cond, "without_appearance") else cond,
        "learnable_prompt": cond.with_prompt(pipe.model.uncond_prompt.expand(len(pairs), -1, -1)),
    }
    if cond.app_biases:
        from cfld.models.cfld import CFLDConditions

        for key in cond.app_biases:  # one φ_A branch removed at a time
            biases = {k: (v * 0 if k == key else v) for k, v in cond.app_biases.items()}
            variants[f"no_bias_{key.split('_')[1]}"] = CFLDConditions(
                cond.prompt, cond.pose_residuals, biases)
    z0 = pipe.encode_images(gt_sq * 2 - 1)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(z0.shape, generator=g)
    sched = pipe.scheduler
    out: dict = {}
    for t in timesteps:
        tt = torch.full((len(pairs),), int(t), dtype=torch.long)
        zt = sched.add_noise(z0, noise, tt)
        row = {}
        for name, c in variants.items():
            with torch.no_grad():
                pred = pipe.model.predict_noise(zt, tt, c)
            a = sched.alphas_cumprod[tt].view(-1, 1, 1, 1)
            kind = sched.config.prediction_type
            if kind == "sample":
                x0 = pred
            elif kind == "epsilon":
                x0 = (zt - (1 - a).sqrt() * pred) / a.sqrt()
            else:  # v
                x0 = a.sqrt() * zt - (1 - a).sqrt() * pred
            img = pipe.decode_latents(x0)
            img = quantize(resize_output(img, size)).float() / 255
            row[name] = float(part_colour_error(img, gt, parts, erode=2).nanmean())
        out[str(int(t))] = row
        print(f"x0 t={t}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()
                                        if not k.startswith("no_bias_")), flush=True)
    return out


def probe_sampling(pipe, root: Path, pairs, swapped, steps: int, seed: int) -> dict:
    """Part-colour error of full samples: true source, swapped source, self-reconstruction."""
    from cfld.data import ANNOTATION_TEST, TEST_DIR, load_image, read_annotations
    from cfld.demo import _load_parts, _to_tensor
    from cfld.metrics import part_colour_error, silhouette_iou

    ann = read_annotations(root / ANNOTATION_TEST)
    size = tuple(pipe.default_output_size)
    gt, _, parts = _batch_tensors(root, pairs, size, tuple(pipe.image_size))
    src = [load_image(root / TEST_DIR / s) for s, _ in pairs]
    other = [load_image(root / TEST_DIR / s) for s in swapped]
    poses = [ann[t] for _, t in pairs]
    res = {}
    for name, sources, targets in (("true", src, poses), ("swapped", other, poses)):
        g = torch.Generator().manual_seed(seed)
        ims = pipe(sources, targets, num_inference_steps=steps, generator=g,
                   output_type="pt").images
        pce = part_colour_error(ims, gt, parts, erode=2)
        res[name] = {"part_colour_error": float(pce.nanmean()),
                     "silhouette_iou": float(silhouette_iou(ims, parts).mean())}
    # self-reconstruction: target = the source in its own pose
    g = torch.Generator().manual_seed(seed)
    ims = pipe(src, [ann[s] for s, _ in pairs], num_inference_steps=steps, generator=g,
               output_type="pt").images
    sgt = torch.stack([_to_tensor(load_image(root / TEST_DIR / s, size)) for s, _ in pairs])
    sparts = torch.stack([_load_parts(root / "test_parts" / (Path(s).stem + ".png"), size)
                          for s, _ in pairs])
    res["self_reconstruction"] = {
        "part_colour_error": float(part_colour_error(ims, sgt, sparts, erode=2).nanmean())}
    for k, v in res.items():
        print(f"sample {k}: {v}", flush=True)
    return res


def zero_conv_norms(model) -> dict:
    app = model.appearance_encoder
    return {key: float(conv.weight.norm()) for key, conv in zip(app.keys, app.zero_conv_outs)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--people-seed", type=int, default=None)
    parser.add_argument("--train-people", action="store_true",
                        help="probe people of the training seed (0) instead of unseen ones")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-sample", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from cfld.demo import HELD_OUT_SEED, evaluation_pairs, make_held_out_root
    from cfld.metrics.appearance import swapped_sources
    from cfld.shipped import load_pipeline

    pipe = load_pipeline(args.model, scheduler="ddpm")
    pipe.set_progress_bar_config(disable=True)
    t0 = time.perf_counter()
    seed = 0 if args.train_people else (args.people_seed or HELD_OUT_SEED)
    with tempfile.TemporaryDirectory() as tmp:
        people = -(-args.pairs // 12)
        if args.train_people:  # the first training people of seed 0 (test ids start at 1)
            from cfld.data.synthetic import synthesize

            synthesize(Path(tmp) / "r", people=1, poses=4, size=(128, 88), seed=0,
                       test_people=people)
            root = Path(tmp) / "r"
        else:
            root = make_held_out_root(Path(tmp) / "r", people, seed=seed)
        pairs = evaluation_pairs(root, args.pairs)
        swapped = swapped_sources(pairs)
        result = {"model": args.model or "shipped", "people_seed": seed, "pairs": len(pairs),
                  "zero_convs": zero_conv_norms(pipe.model),
                  "x0": probe_x0(pipe, root, pairs, swapped, (999, 900, 700, 500, 300, 100),
                                 args.seed)}
        if not args.no_sample:
            result["sample"] = probe_sampling(pipe, root, pairs, swapped, args.steps, args.seed)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    path = Path(args.out) if args.out else RESULTS / "appearance_probe.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
