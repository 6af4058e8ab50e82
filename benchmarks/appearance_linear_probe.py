"""Ridge probe: can each body part's source colour be read from H_S / H_D features?

    python benchmarks/appearance_linear_probe.py [MODEL|shipped]

300 unseen procedural people (seed 777), one image each (two poses drawn, every other image
kept); for each part, a ridge regression (λ = 0.1) from the features to the part's mean colour
in the source, fitted on 80 % of the people and scored on the rest (mean L2 error in [0, 1]
RGB), next to predicting the training mean.  Indicative only: 240 fits for 512 prompt
features over-fit.  Results: ``benchmarks/results/appearance/linear_probe.json``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

PARTS = (1, 2, 3, 4, 6, 7)  # head, hair, top, arms, bottom, shoes


def _features(model, names):
    from cfld.data import load_image
    from cfld.pipelines.inputs import prepare_source

    out = {"prompt": [], "f3mean": []}
    for i in range(0, len(names), 50):
        x = prepare_source([load_image(n) for n in names[i:i + 50]], model.source_size)
        with torch.no_grad():
            feats = model.source_encoder(x)
            prompt = model.decoder(feats[-1])
        out["prompt"].append(prompt.flatten(1))
        out["f3mean"].append(feats[2].mean(1))
    return {k: torch.cat(v).double() for k, v in out.items()}


def _targets(root: Path, names):
    from cfld.data import load_image
    from cfld.data.images import load_label_map, to_tensor

    rows = []
    for n in names:
        img = to_tensor(load_image(n))
        parts = load_label_map(root / "test_parts" / (n.stem + ".png"), (128, 88))
        row = []
        for label in PARTS:
            mask = parts == label
            row.append(img[:, mask].mean(1) if mask.sum() > 10 else torch.full((3,), float("nan")))
        rows.append(torch.cat(row))
    return torch.stack(rows).double()


def probe(features: torch.Tensor, y: torch.Tensor, lam: float = 0.1) -> list[tuple[float, float]]:
    """(probe error, mean-predictor error) per part."""
    n = features.shape[0]
    a = torch.cat([features, torch.ones(n, 1, dtype=features.dtype)], 1)
    train = torch.arange(n) < int(0.8 * n)
    out = []
    for j in range(0, y.shape[1], 3):
        yj = y[:, j:j + 3]
        ok = ~torch.isnan(yj).any(1)
        itr, ite = (ok & train).nonzero()[:, 0], (ok & ~train).nonzero()[:, 0]
        at = a[itr]
        w = torch.linalg.solve(at.T @ at + lam * torch.eye(a.shape[1], dtype=a.dtype),
                               at.T @ yj[itr])
        err = (a[ite] @ w - yj[ite]).norm(dim=1).mean().item()
        base = (yj[itr].mean(0) - yj[ite]).norm(dim=1).mean().item()
        out.append((round(err, 3), round(base, 3)))
    return out


def main() -> int:
    torch.set_num_threads(1)
    from cfld.data import TEST_DIR
    from cfld.data.synthetic import synthesize
    from cfld.shipped import load_pipeline

    model_dir = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "shipped" else None
    model = load_pipeline(model_dir).model
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "r"
        synthesize(root, people=1, poses=2, size=(128, 88), seed=777, test_people=300)
        names = sorted((root / TEST_DIR).glob("*.jpg"))[::2]
        feats, y = _features(model, names), _targets(root, names)
    for key, f in feats.items():
        print(key, f.shape[1], "per part (probe error, mean-predictor error):", probe(f, y))
    return 0


if __name__ == "__main__":
    sys.exit(main())
