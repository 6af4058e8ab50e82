"""Appearance pre-training of H_S and H_D on procedural people (our stand-in for ImageNet Swin).

The authors start H_S from an ImageNet-22k Swin-B whose features already describe colours and
textures.  A small model trained from scratch has no such start: measured on the shipped model
before this stage existed, a ridge probe could barely read the source's part colours from H_S's
features or from H_D's prompt, and the diffusion loss alone did not teach them (see README, "The
shipped small model").  This stage gives H_S and H_D that start on our own data, before the
diffusion training, with training-only linear heads that are discarded afterwards:

* from the prompt c of H_D (paper §3.2, the "what"): every body part's mean and standard
  deviation of colour in the source image (the std carries stripes/checks contrast).
  ``prompt_head="flat"`` (the shipped recipe) reads them with one linear map of the whole
  prompt; ``"slots"`` with one map shared by all tokens, token k giving part k (token 7 the
  background), so that the queries become part slots in one colour code (tried; not better
  after 1,000 diffusion steps, see README);
* from the H_S stages f1..f3 that feed φ_A (paper §3.3, the "where"): every token's mean colour
  (its image patch, area-averaged) and, from f1, the part label under it.

The targets come from the images and the part-label maps of a procedural root (``*_parts``), so
the stage needs nothing but our data.  The CFLD architecture is unchanged: the heads are not
part of the model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cfld.data.images import list_images, load_image, load_label_map, to_signed, to_tensor
from cfld.models.cfld import CFLDModel

__all__ = ["EncoderPretrainConfig", "load_part_images", "pretrain_appearance_encoder"]

NUM_PART_LABELS = 8  # cfld.data.synthetic.PART_LABELS: 0 = background, 1..7 parts


@dataclass
class EncoderPretrainConfig:
    """Settings of the encoder pre-training (defaults: the shipped model's recipe)."""

    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    label_weight: float = 0.1  # weight of the f1 part-label cross-entropy
    prompt_head: str = "flat"  # "flat" (one map of the whole prompt) or "slots" (per token)
    flip_p: float = 0.5  # the horizontal flip of the diffusion training's source (fidelity §5.3)
    seed: int = 0
    log_every: int = 100


def load_part_images(root: str | Path, size: int, split: str = "train",
                     limit: int | None = None) -> tuple[Tensor, Tensor]:
    """Images (N,3,size,size) in [-1, 1] and part labels (N,size,size) of a procedural root.

    Images are squashed to the square source size with PIL bicubic, as the diffusion training
    does for the source; part maps with nearest-neighbour.
    """
    root = Path(root)
    img_dir = root / f"{split}_highres"
    parts_dir = root / f"{split}_parts"
    if not parts_dir.is_dir():
        raise FileNotFoundError(f"{parts_dir} not found: encoder pre-training needs the part-label "
                                "maps of a procedural root (`cfld data synth`)")
    names = list_images(img_dir)[:limit]
    if not names:
        raise ValueError(f"no images in {img_dir}")
    # The source path of the diffusion training: PIL bicubic squash, [-1, 1] (fidelity §5.3).
    x = torch.stack([to_signed(to_tensor(load_image(p, (size, size)))) for p in names])
    labels = torch.stack([load_label_map(parts_dir / (p.stem + ".png"), (size, size))
                          for p in names])
    return x, labels  # (N,3,S,S), (N,S,S)


def part_colour_stats(img01: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Colour mean and std of every part label 1..7, then of the background (label 0), of (B,3,S,S)
    images: (B, 8, 6) targets and (B, 8, 6) weights (0 where a part is absent)."""
    stats, weights = [], []
    for label in (*range(1, NUM_PART_LABELS), 0):
        m = (labels == label).unsqueeze(1).float()  # (B,1,S,S)
        n = m.flatten(1).sum(1).clamp(min=1)[:, None]  # (B,1)
        mean = (img01 * m).flatten(2).sum(2) / n  # (B,3)
        var = ((img01 - mean[:, :, None, None]) ** 2 * m).flatten(2).sum(2) / n
        stats.append(torch.cat([mean, var.clamp(min=0).sqrt()], 1))  # (B,6)
        present = (m.flatten(1).sum(1) >= 4).float()[:, None].expand(-1, 6)
        weights.append(present)
    return torch.stack(stats, 1), torch.stack(weights, 1)


class _Heads(nn.Module):
    """Training-only linear read-outs of the prompt and of stages f1..f3."""

    def __init__(self, prompt_shape: tuple[int, int], stage_dims: list[int], kind: str) -> None:
        super().__init__()
        if kind not in ("flat", "slots"):
            raise ValueError(f"prompt_head must be 'flat' or 'slots', got {kind!r}")
        self.kind = kind
        queries, dim = prompt_shape
        # flat: (Q·C) → 8 parts × 6 stats; slots: C → 6 stats, shared by the tokens
        self.prompt = nn.Linear(queries * dim, (NUM_PART_LABELS - 1) * 6) if kind == "flat" \
            else nn.Linear(dim, 6)
        self.colour = nn.ModuleList(nn.Linear(c, 3) for c in stage_dims)
        self.label = nn.Linear(stage_dims[0], NUM_PART_LABELS)


def _losses(model: CFLDModel, heads: _Heads, x: Tensor, labels: Tensor,
            label_weight: float) -> dict[str, Tensor]:
    feats = model.source_encoder(x)  # 4 × (B, H·W, C)
    prompt = model.decoder(feats[-1])  # (B, Q, C)
    img01 = (x + 1) / 2
    target, weight = part_colour_stats(img01, labels)  # (B, 8, 6)
    if heads.kind == "flat":  # the 7 body parts, not the background
        target, weight = target[:, :-1], weight[:, :-1]
        pred = heads.prompt(prompt.flatten(1)).view_as(target)
    else:
        slots = min(prompt.shape[1], target.shape[1])
        if slots < target.shape[1]:  # fewer queries than parts: the first ones only
            target, weight = target[:, :slots], weight[:, :slots]
        pred = heads.prompt(prompt[:, :slots])  # (B, slots, 6)
    out = {"prompt": ((pred - target) ** 2 * weight).sum() / weight.sum().clamp(min=1)}
    dense = 0.0
    for i, head in enumerate(heads.colour):
        side = math.isqrt(feats[i].shape[1])
        cell = F.adaptive_avg_pool2d(img01, side).flatten(2).transpose(1, 2)  # (B, side², 3)
        dense = dense + F.mse_loss(head(feats[i]), cell)
    out["dense"] = dense / len(heads.colour)
    side = math.isqrt(feats[0].shape[1])
    # Part label under each f1 token: the label at the token's centre pixel.
    step = x.shape[-1] // side
    centre = labels[:, step // 2::step, step // 2::step].flatten(1)  # (B, side²)
    logits = heads.label(feats[0])  # (B, side², 8)
    out["label"] = F.cross_entropy(logits.flatten(0, 1), centre.flatten())
    out["total"] = out["prompt"] + out["dense"] + label_weight * out["label"]
    return out


def pretrain_appearance_encoder(model: CFLDModel, root: str | Path,
                                config: EncoderPretrainConfig | None = None,
                                log: Callable[[str], None] | None = print) -> dict[str, float]:
    """Pre-train ``model.source_encoder`` and ``model.decoder`` in place (see module docstring).

    Returns:
        The first and last logged losses per term, and seconds per step.
    """
    cfg = config or EncoderPretrainConfig()
    size = model.source_size
    x_all, labels_all = load_part_images(root, size)
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.no_grad():
        feats = model.source_encoder(x_all[:2])
        prompt_shape = tuple(model.decoder(feats[-1]).shape[1:])
    heads = _Heads(prompt_shape, [f.shape[-1] for f in feats[:3]], cfg.prompt_head)
    params = [*model.source_encoder.parameters(), *model.decoder.parameters(),
              *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * (0.1 if s >= 0.8 * cfg.steps else 1.0))
    model.source_encoder.train()
    model.decoder.train()
    history: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        idx = torch.randint(0, x_all.shape[0], (cfg.batch_size,), generator=gen)
        x, labels = x_all[idx], labels_all[idx]
        flip = torch.rand(cfg.batch_size, generator=gen) < cfg.flip_p
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        labels = torch.where(flip[:, None, None], labels.flip(-1), labels)
        losses = _losses(model, heads, x, labels, cfg.label_weight)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        sched.step()
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            for k, v in losses.items():
                history.setdefault(k, []).append(float(v))
            if log is not None:
                log(f"[encoder] step {step}: " + ", ".join(f"{k} {float(v):.4f}"
                                                           for k, v in losses.items()))
    model.source_encoder.eval()
    model.decoder.eval()
    out = {f"{k}_first": v[0] for k, v in history.items()}
    out.update({f"{k}_last": v[-1] for k, v in history.items()})
    out["seconds_per_step"] = (time.perf_counter() - t0) / max(1, cfg.steps)
    return out
