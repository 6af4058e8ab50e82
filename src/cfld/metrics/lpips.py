"""LPIPS (AlexNet backbone, v0.1 linear heads) in plain PyTorch.

The authors score LPIPS with the ``lpips`` package, ``LPIPS(net='alex')`` on [0, 1] images with
``normalize=True`` (fidelity §8).  That package needs torchvision and downloads its backbone,
neither of which works here, so this module rebuilds the small network and reads the weights that
ship with cfld (``cfld/assets/lpips/alex_v0.1.safetensors``, provenance in the NOTICE next to it)
or a file given by the user.  Results match the real package to ~1e-8 (tests/test_metrics_lpips.py).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LPIPS", "default_lpips_weights"]

# (out channels, kernel, stride, padding) of AlexNet conv1..conv5; a 3x3/2 max pool sits before
# conv2 and conv3 (torchvision's `alexnet().features`, which lpips slices at every ReLU).
_ALEX_CONVS: tuple[tuple[int, int, int, int], ...] = (
    (64, 11, 4, 2),
    (192, 5, 1, 2),
    (384, 3, 1, 1),
    (256, 3, 1, 1),
    (256, 3, 1, 1),
)
# Index of each conv inside torchvision's `features` Sequential = lpips' slice key suffix.
_TV_INDEX = (0, 3, 6, 8, 10)
# lpips v0.1 scaling layer constants (also in the weight file; used when a user file lacks them).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10  # lpips' unit-normalisation epsilon


def default_lpips_weights() -> Path:
    """Path of the LPIPS AlexNet v0.1 weights shipped inside the package."""
    return Path(str(resources.files("cfld") / "assets" / "lpips" / "alex_v0.1.safetensors"))


class LPIPS(nn.Module):
    """Learned Perceptual Image Patch Similarity, AlexNet v0.1, as the CFLD authors use it.

    Call it on two batches of images in [0, 1]; they are mapped to [-1, 1] with ``2x - 1``
    (lpips' ``normalize=True``) and then through lpips' fixed scaling layer.

    Args:
        weights: a ``.safetensors`` (or ``.pth``) file with lpips' state-dict key names; ``None``
            uses the copy shipped with cfld.
        normalize: map inputs from [0, 1] to [-1, 1] first (the authors' setting). Set ``False``
            when inputs already are in [-1, 1].

    Example:
        >>> d = LPIPS()(img0, img1)  # (B,3,H,W) in [0,1] -> (B,) distances
    """

    def __init__(self, weights: str | os.PathLike | None = None, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        convs = []
        in_ch = 3
        for out_ch, k, s, p in _ALEX_CONVS:
            convs.append(nn.Conv2d(in_ch, out_ch, k, stride=s, padding=p))
            in_ch = out_ch
        self.convs = nn.ModuleList(convs)
        # 1x1 heads without bias; lpips wraps them with a Dropout that is the identity in eval.
        self.heads = nn.ModuleList(nn.Conv2d(c[0], 1, 1, bias=False) for c in _ALEX_CONVS)
        self.load_weights(default_lpips_weights() if weights is None else weights)
        self.eval()
        self.requires_grad_(False)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load lpips-named weights (``net.sliceK.N.*``, ``linK.model.1.weight``) from a file.

        Args:
            path: ``.safetensors`` file, or a torch file holding a plain tensor dict.

        Raises:
            FileNotFoundError: the file does not exist (names where the shipped file comes from).
            ValueError: the file lacks tensors or has wrong shapes.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"LPIPS weights not found: {path}. cfld ships them as "
                f"cfld/assets/lpips/alex_v0.1.safetensors (reinstall cfld if it is missing), or "
                f"pass a file with the lpips package's AlexNet v0.1 state dict "
                f"(e.g. converted from lpips' weights/v0.1/alex.pth plus torchvision's AlexNet)."
            )
        from cfld.checks.models import load_weights

        sd = load_weights(path, "LPIPS weights")
        if not isinstance(sd, dict):
            raise ValueError(f"{path}: expected a dict of tensors, got {type(sd).__name__}")
        mapping: dict[str, str] = {}
        for i, tv in enumerate(_TV_INDEX):
            for kind in ("weight", "bias"):
                mapping[f"net.slice{i + 1}.{tv}.{kind}"] = f"convs.{i}.{kind}"
            mapping[f"lin{i}.model.1.weight"] = f"heads.{i}.weight"
        # lpips keeps the heads twice (lin{k} and lins.{k}); accept either name.
        for i in range(5):
            if f"lin{i}.model.1.weight" not in sd and f"lins.{i}.model.1.weight" in sd:
                sd[f"lin{i}.model.1.weight"] = sd[f"lins.{i}.model.1.weight"]
        missing = [k for k in mapping if k not in sd]
        if missing:
            raise ValueError(
                f"{path}: not an LPIPS AlexNet v0.1 weight file; missing {len(missing)} tensors "
                f"(first: {missing[0]}). Use cfld's shipped alex_v0.1.safetensors or a file with "
                f"the lpips package's state-dict names."
            )
        own = {mapping[k]: sd[k] for k in mapping}
        own["shift"] = sd.get("scaling_layer.shift", self.shift).reshape(1, 3, 1, 1)
        own["scale"] = sd.get("scaling_layer.scale", self.scale).reshape(1, 3, 1, 1)
        try:
            self.load_state_dict({k: v.float() for k, v in own.items()}, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{path}: LPIPS weights have the wrong shapes: {err}") from None

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """AlexNet ReLU1..ReLU5 outputs of an already scaled input (B,3,H,W)."""
        feats = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):  # max pool 3x3 / 2 (floor) before conv2 and conv3, as in AlexNet
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(conv(x))
            feats.append(x)
        return feats

    def forward(
        self, img0: torch.Tensor, img1: torch.Tensor, per_layer: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Distances between two image batches.

        Args:
            img0: (B,3,H,W) images in [0, 1] (or [-1, 1] when ``normalize=False``).
            img1: same shape as ``img0``.
            per_layer: also return the five per-layer terms.

        Returns:
            (B,) distances; with ``per_layer`` a tuple ``(total, [5 x (B,)])``.
        """
        if img0.shape != img1.shape or img0.ndim != 4 or img0.shape[1] != 3:
            raise ValueError(
                f"LPIPS expects two (B,3,H,W) batches of the same shape, got "
                f"{tuple(img0.shape)} and {tuple(img1.shape)}"
            )
        if min(img0.shape[-2:]) < 32:
            raise ValueError(
                f"LPIPS needs images of at least 32x32 pixels, got {tuple(img0.shape[-2:])}"
            )
        dtype = self.shift.dtype
        x = torch.cat([img0, img1]).to(device=self.shift.device, dtype=dtype)  # (2B,3,H,W)
        if self.normalize:
            x = 2 * x - 1
        x = (x - self.shift) / self.scale
        b = img0.shape[0]
        terms = []
        for head, f in zip(self.heads, self.features(x)):
            # Unit-normalise over channels (lpips' normalize_tensor), squared difference,
            # 1x1 linear head, then spatial average.
            f = f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            d = (f[:b] - f[b:]).pow(2)
            terms.append(head(d).mean(dim=(1, 2, 3)))  # (B,)
        total = terms[0]
        for t in terms[1:]:  # summed in layer order, like lpips
            total = total + t
        return (total, terms) if per_layer else total
