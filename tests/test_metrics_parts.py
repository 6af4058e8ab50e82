"""Silhouette IoU and part colour error on procedural people."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cfld.metrics import part_colour_error, silhouette_iou
from cfld.metrics.parts import estimate_background, foreground_mask


def _toy(h=64, w=48):
    """A grey background with two coloured rectangles (labels 3 and 6)."""
    img = torch.full((1, 3, h, w), 0.85)
    parts = torch.zeros(1, h, w, dtype=torch.long)
    img[:, :, 10:30, 14:34] = torch.tensor([0.8, 0.1, 0.1]).view(1, 3, 1, 1)
    parts[:, 10:30, 14:34] = 3
    img[:, :, 30:60, 16:32] = torch.tensor([0.1, 0.2, 0.7]).view(1, 3, 1, 1)
    parts[:, 30:60, 16:32] = 6
    return img, parts


def test_toy_silhouette_and_colours():
    img, parts = _toy()
    torch.testing.assert_close(estimate_background(img), torch.full((1, 3), 0.85))
    assert silhouette_iou(img, parts).item() == 1.0
    assert part_colour_error(img, img, parts).item() == 0.0
    # Shifted right by 6 px: rectangle 3 (20x20) keeps 20x14 = 280 px, rectangle 6 (30x16)
    # keeps 30x10 = 300 px; each silhouette has 880 px, so IoU = 580 / (880 + 880 - 580).
    shifted = torch.roll(img, shifts=6, dims=3)
    assert silhouette_iou(shifted, parts).item() == pytest.approx(580 / 1180, abs=1e-12)
    # The threshold (20/255 per channel): a 4x4 patch 25/255 off the background is person,
    # 15/255 off is not.
    for delta, extra in ((25 / 255, 16), (15 / 255, 0)):
        faint = img.clone()
        faint[:, :, 2:6, 2:6] += delta
        assert silhouette_iou(faint, parts).item() == pytest.approx(880 / (880 + extra), abs=1e-12)
    recoloured = img.clone()
    recoloured[:, :, 10:30, 14:34] = torch.tensor([0.1, 0.8, 0.1]).view(1, 3, 1, 1)
    err, per = part_colour_error(recoloured, img, parts, per_part=True)
    assert per[3].item() == pytest.approx(np.sqrt(0.7**2 * 2), rel=1e-6)
    assert per[6].item() == 0.0
    assert err.item() == pytest.approx(per[3].item() / 2, rel=1e-6)
    # A given background colour works as well as the estimate.
    assert foreground_mask(img, (0.85, 0.85, 0.85)).equal(foreground_mask(img))


def test_procedural_people_silhouette_is_recovered(tmp_path):
    synthetic = pytest.importorskip("cfld.data.synthetic")
    root = synthetic.make_sample_root(
        tmp_path / "r", people=2, poses=2, size=(256, 176), test_people=1
    )
    names = sorted(p.stem for p in (root / "train_highres").iterdir())
    imgs, maps = [], []
    for stem in names:
        im = np.asarray(Image.open(root / "train_highres" / f"{stem}.jpg").convert("RGB"))
        imgs.append(torch.from_numpy(im.copy()).permute(2, 0, 1).float() / 255)
        maps.append(
            torch.from_numpy(
                np.asarray(Image.open(root / "train_parts" / f"{stem}.png")).astype(np.int64)
            )
        )
    img, lab = torch.stack(imgs), torch.stack(maps)
    iou = silhouette_iou(img, lab)
    assert (iou > 0.95).all(), iou
    assert (part_colour_error(img, img, lab) == 0).all()


def test_bad_shapes():
    img, parts = _toy()
    with pytest.raises(ValueError, match="part maps"):
        silhouette_iou(img, parts[:, :10])
    with pytest.raises(ValueError, match="img"):
        foreground_mask(torch.rand(1, 4, 8, 8))
