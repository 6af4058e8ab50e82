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
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def _images(root: Path, names, size) -> torch.Tensor:
    """(N,3,H,W) test images in [0, 1] at ``size``."""
    from cfld.data import TEST_DIR, load_image
    from cfld.data.images import to_tensor

    return torch.stack([to_tensor(load_image(root / TEST_DIR / n, size)) for n in names])


def _parts(root: Path, names, size) -> torch.Tensor:
    """(N,H,W) part labels of those images."""
    from cfld.data.images import load_label_map

    return torch.stack([load_label_map(root / "test_parts" / (Path(n).stem + ".png"), size)
                        for n in names])


def _inputs(root: Path, pairs, swapped):
    """Source images, swapped-source images and target keypoints of the pairs (+ annotations)."""
    from cfld.data import ANNOTATION_TEST, TEST_DIR, load_image, read_annotations

    ann = read_annotations(root / ANNOTATION_TEST)
    src = [load_image(root / TEST_DIR / s) for s, _ in pairs]
    other = [load_image(root / TEST_DIR / s) for s in swapped]
    return src, other, [ann[t] for _, t in pairs], ann


def _colour_error(pred: torch.Tensor, gt: torch.Tensor, parts: torch.Tensor) -> float:
    """Mean part-colour error with the reports' erosion."""
    return _part_errors(pred, gt, parts)["mean"]


def _part_errors(pred: torch.Tensor, gt: torch.Tensor, parts: torch.Tensor) -> dict[str, float]:
    """The reports' part-colour error, overall ("mean") and per body part (PART_LABELS names)."""
    from cfld.data.synthetic import PART_LABELS
    from cfld.metrics import part_colour_error
    from cfld.metrics.scoring import report_erosion

    total, per = part_colour_error(pred, gt, parts, erode=report_erosion(gt.shape[-2]),
                                   per_part=True)
    out = {"mean": float(total.nanmean())}
    out.update({PART_LABELS[k]: float(v.nanmean()) for k, v in per.items()})
    return out


def mean_colour_baseline(gt: torch.Tensor, parts: torch.Tensor) -> dict[str, float]:
    """Part-colour error of painting every part with its mean colour over all the targets.

    A model that ignored the source but knew the population's average clothes would score
    this; a part whose error is not below it carries nothing of the source.
    """
    painted = gt.clone()
    for label in parts.unique().tolist():
        if label > 0:
            mask = parts == label  # (N,H,W)
            colour = gt.permute(1, 0, 2, 3)[:, mask].mean(1)  # (3,)
            painted.permute(1, 0, 2, 3)[:, mask] = colour[:, None]
    return _part_errors(painted, gt, parts)


def probe_x0(pipe, root: Path, pairs, swapped, timesteps, seed: int) -> dict:
    """Part-colour error of the one-shot x0 estimate at each noise level, per condition."""
    from cfld.models.cfld import CFLDConditions
    from cfld.pipelines.pipeline_cfld import quantize, resize_output
    from common import clean_estimate  # benchmarks/ is on sys.path as the script's dir

    size = tuple(pipe.default_output_size)
    targets = [t for _, t in pairs]
    gt, parts = _images(root, targets, size), _parts(root, targets, size)
    src, other, poses, _ = _inputs(root, pairs, swapped)
    cond, _ = pipe.encode_conditions(src, poses)
    cond_sw, _ = pipe.encode_conditions(other, poses)
    variants = {
        "true": cond,
        "swapped": cond_sw,
        "no_biases": cond.without_appearance(),
        "learnable_prompt": cond.with_prompt(pipe.model.uncond_prompt.expand(len(pairs), -1, -1)),
    }
    for key in cond.app_biases or {}:  # one φ_A branch removed at a time
        biases = {k: (v * 0 if k == key else v) for k, v in cond.app_biases.items()}
        variants[f"no_bias_{key.split('_')[1]}"] = CFLDConditions(
            cond.prompt, cond.pose_residuals, biases)
    z0 = pipe.encode_images(_images(root, targets, tuple(pipe.image_size)) * 2 - 1)
    noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed))
    sched = pipe.scheduler
    out: dict = {}
    for t in timesteps:
        tt = torch.full((len(pairs),), int(t), dtype=torch.long)
        zt = sched.add_noise(z0, noise, tt)
        alpha_bar = sched.alphas_cumprod[tt].view(-1, 1, 1, 1)
        row = {}
        for name, c in variants.items():
            with torch.no_grad():
                pred = pipe.model.predict_noise(zt, tt, c)
            x0 = clean_estimate(sched.config.prediction_type, zt, alpha_bar, pred)
            img = quantize(resize_output(pipe.decode_latents(x0), size)).float() / 255
            if name in ("true", "swapped"):  # per body part too
                per_part = _part_errors(img, gt, parts)
                row[name] = per_part.pop("mean")
                row[f"{name}_per_part"] = per_part
            else:
                row[name] = _colour_error(img, gt, parts)
        out[str(int(t))] = row
        print(f"x0 t={t}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()
                                        if isinstance(v, float)
                                        and not k.startswith("no_bias_")), flush=True)
    out["mean_colour_baseline"] = mean_colour_baseline(gt, parts)
    return out


def probe_sampling(pipe, root: Path, pairs, swapped, steps: int, seed: int) -> dict:
    """Part-colour error of full samples: true source, swapped source, self-reconstruction."""
    from cfld.metrics import silhouette_iou

    size = tuple(pipe.default_output_size)
    src, other, poses, ann = _inputs(root, pairs, swapped)
    sources = [s for s, _ in pairs]
    targets = [t for _, t in pairs]
    runs = {  # name: (source images, target keypoints, names of the ground-truth images)
        "true": (src, poses, targets),
        "swapped": (other, poses, targets),
        # self-reconstruction: the source in its own pose
        "self_reconstruction": (src, [ann[s] for s in sources], sources),
    }
    res = {}
    for name, (images, keypoints, gt_names) in runs.items():
        ims = pipe(images, keypoints, num_inference_steps=steps,
                   generator=torch.Generator().manual_seed(seed), output_type="pt").images
        parts = _parts(root, gt_names, size)
        res[name] = {"part_colour_error": _colour_error(ims, _images(root, gt_names, size), parts)}
        if name != "self_reconstruction":
            res[name]["silhouette_iou"] = float(silhouette_iou(ims, parts).mean())
        print(f"sample {name}: {res[name]}", flush=True)
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
    pipe.disable_autocast()  # fp32, as reported (the bf16 default: within the spread)
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
    from common import machine_info, write_json  # benchmarks/ is on sys.path as the script's dir

    result["machine"] = machine_info(torch.device("cpu"))
    path = write_json(result, Path(args.out) if args.out else RESULTS / "appearance_probe.json")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
