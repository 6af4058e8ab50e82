"""The DeepFashion evaluation protocol of the CFLD authors, comparable and checked (facts §7.5, §8).

``evaluate_folder(generated_dir, data_root, size)`` scores a folder of generated images against a
DeepFashion-format root (real In-Shop or our procedural people):

1. Pairs come from ``ROOT/fasion-resize-pairs-test.csv``; the generated image of pair
   ``(source, target)`` is ``<source stem>___<target stem>.png`` (``.jpg`` etc. also accepted).
2. Ground truth: ``ROOT/test_highres/<target>`` resized with PIL bicubic + antialias (facts §5.3).
3. Generated images: resized as the authors do (facts §7.5) — torch bicubic with antialias to the
   evaluation size (square 512x512 outputs are squashed to the aspect), then x255, clamp, cast to
   uint8 (truncation), /255.  Images already at the evaluation size are used as they are.
4. Scores (facts §8): LPIPS (AlexNet v0.1), SSIM (win 51), SSIM_256 (Gaussian), PSNR — means of
   per-pair values — and two FIDs: ``fid`` (standard TF-Inception features) and ``fid_cfld`` (the
   authors' torchvision features; ``None`` when the user has not supplied the weights).  The FID
   reference is every training image (``train_highres``) at the evaluation size, as the authors
   do; its statistics are cached in a file and recomputed only when the images change.
5. On procedural roots (``test_parts/`` present): silhouette IoU and per-part colour error.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from cfld.checkpoint import write_text_atomic
from cfld.metrics.fid import (
    CFLDInceptionFeatures,
    FIDInceptionFeatures,
    FIDStatistics,
    frechet_distance,
    resolve_inception_weights,
    stats_key,
    INCEPTION_WEIGHTS_ENV,
)
from cfld.metrics.lpips import LPIPS
from cfld.metrics.parts import part_colour_error, silhouette_iou
from cfld.metrics.ssim_psnr import PSNR_CAP_DB, psnr, ssim, ssim_256

__all__ = [
    "EVAL_SIZES",
    "OFFICIAL_TEST_PAIRS",
    "evaluate_folder",
    "format_table",
    "generated_name",
    "parse_size",
    "quantise_generated",
]

# The two evaluation sizes of the paper's tables (facts §8); other sizes are allowed for our data.
EVAL_SIZES: dict[str, tuple[int, int]] = {"256x176": (256, 176), "512x352": (512, 352)}
OFFICIAL_TEST_PAIRS = 8_570  # PATN test split (facts §5.1); reported, not required
GENERATED_SEPARATOR = "___"
_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")  # order = preference for equal stems
_CACHE_VERSION = "cfld-fid-ref-v1"
FID_REFERENCES = ("train", "test-gt")


def parse_size(text: str | Sequence[int]) -> tuple[int, int]:
    """Parse an evaluation size ``"HxW"`` (e.g. ``"256x176"``) or an ``(h, w)`` pair.

    Raises:
        ValueError: malformed text, or a side below 51 pixels (SSIM's window).
    """
    if isinstance(text, str):
        parts = text.lower().replace("×", "x").split("x")
        try:
            h, w = (int(p) for p in parts)
        except ValueError:
            raise ValueError(
                f"size must look like HxW, e.g. 256x176 or 512x352 (the paper's sizes), got {text!r}"
            ) from None
    else:
        h, w = (int(v) for v in text)
    if min(h, w) < 51:
        raise ValueError(f"size {h}x{w} is too small: SSIM uses a 51x51 window; use e.g. 256x176")
    return h, w


def generated_name(source: str, target: str) -> str:
    """Stem of the generated image of a pair: ``<source stem>___<target stem>``."""
    return f"{Path(source).stem}{GENERATED_SEPARATOR}{Path(target).stem}"


def quantise_generated(img: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, bool]:
    """Bring one generated image to the evaluation size as the authors do (facts §7.5).

    Args:
        img: (3,h,w) in [0, 1].
        size: ``(H, W)``.

    Returns:
        ``((3,H,W) image, resized?)``.  A resized image is x255, clamped, truncated to uint8 and
        /255; an image already at ``size`` is returned unchanged (it is already 8-bit, and
        re-truncating ``u/255*255`` could drop a level to float rounding).
    """
    if tuple(img.shape[-2:]) == tuple(size):
        return img, False
    x = F.interpolate(img[None].float(), size=size, mode="bicubic", align_corners=False, antialias=True)
    x = (x * 255).clamp(0, 255).to(torch.uint8).float() / 255  # truncation, as the authors
    return x[0], True


def _to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)  # (H,W,3)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255  # (3,H,W)


def _write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


@dataclass
class _Pair:
    source: str
    target: str
    generated: Path
    gt: Path


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_EXTS)


def _plan(
    generated_dir: Path, root: Path, allow_missing: bool, checks: list[str]
) -> tuple[list[_Pair], dict[str, int]]:
    """Match the pairs csv with generated files; report counts, missing and extra files."""
    from cfld.data.deepfashion import PAIRS_TEST, TEST_DIR, read_pairs

    if not root.is_dir():
        raise FileNotFoundError(f"data root not found: {root}")
    if not generated_dir.is_dir():
        raise FileNotFoundError(f"generated-images folder not found: {generated_dir}")
    rows = read_pairs(root / PAIRS_TEST, on_duplicate="ignore")
    pairs = list(dict.fromkeys(rows))  # one score per distinct pair
    checks.append(
        f"pairs: {len(pairs)} in {PAIRS_TEST} (the real DeepFashion test split has "
        f"{OFFICIAL_TEST_PAIRS:,})"
    )
    if len(pairs) != len(rows):
        checks.append(f"pairs: {len(rows) - len(pairs)} duplicate rows in {PAIRS_TEST} counted once")
    by_stem: dict[str, Path] = {}
    dup_stems = 0
    for p in sorted(_list_images(generated_dir), key=lambda p: _IMAGE_EXTS.index(p.suffix.lower())):
        if p.stem in by_stem:
            dup_stems += 1
            continue
        by_stem[p.stem] = p
    if dup_stems:
        checks.append(f"generated: {dup_stems} files share a name with another extension; .png preferred")
    expected = {generated_name(s, t): (s, t) for s, t in pairs}
    missing = [n for n in expected if n not in by_stem]
    extra = sorted(set(by_stem) - set(expected))
    checks.append(f"generated: {len(by_stem)} images in {generated_dir}")
    if extra:
        checks.append(
            f"generated: {len(extra)} extra images match no pair and are ignored "
            f"(e.g. {by_stem[extra[0]].name})"
        )
    if missing:
        msg = (
            f"{len(missing)} of {len(pairs)} pairs have no generated image in {generated_dir} "
            f"(expected '<source stem>{GENERATED_SEPARATOR}<target stem>.png', e.g. {missing[0]}.png)"
        )
        if not allow_missing:
            raise ValueError(msg + "; generate them, or pass --allow-missing to score the others")
        checks.append("generated: " + msg + "; scoring the present ones only (--allow-missing)")
    test_dir = root / TEST_DIR
    plan = []
    for stem, (s, t) in expected.items():
        if stem not in by_stem:
            continue
        gt = test_dir / t
        if not gt.is_file():  # names in the csv may carry .jpg while files are .png, or back
            alts = [test_dir / (Path(t).stem + e) for e in _IMAGE_EXTS]
            gt = next((a for a in alts if a.is_file()), gt)
        if not gt.is_file():
            raise FileNotFoundError(f"ground-truth image {test_dir / t} (target of a test pair) is missing")
        plan.append(_Pair(s, t, by_stem[stem], gt))
    if not plan:
        raise ValueError(f"no pair of {PAIRS_TEST} has a generated image in {generated_dir}")
    counts = {"pairs_in_csv": len(pairs), "missing": len(missing), "extra": len(extra)}
    return plan, counts


def _default_cache_dir(root: Path) -> Path:
    if os.access(root, os.W_OK):
        return root / ".cfld-cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cfld" / "fid-stats"


def _reference_stats(
    root: Path,
    size: tuple[int, int],
    extractors: dict[str, torch.nn.Module],
    cache_dir: Path,
    batch_size: int,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[dict[str, FIDStatistics], int, bool]:
    """FID statistics of every training image at ``size``, cached per extractor (facts §8)."""
    from cfld.data.deepfashion import TRAIN_DIR, load_image

    train_dir = root / TRAIN_DIR
    if not train_dir.is_dir():
        raise FileNotFoundError(
            f"{train_dir} not found: the FID reference is every training image (facts §8); "
            f"use --fid-reference test-gt to compare with the test ground truth instead"
        )
    files = _list_images(train_dir)
    if len(files) < 2:
        raise ValueError(f"{train_dir}: FID needs at least 2 training images, found {len(files)}")
    listing = []
    for p in files:
        st = p.stat()
        listing.append(f"{p.name}|{st.st_size}|{st.st_mtime_ns}")
    out: dict[str, FIDStatistics] = {}
    todo: dict[str, tuple[Path, str]] = {}
    h, w = size
    for key, ext in extractors.items():
        digest = stats_key([_CACHE_VERSION, ext.identity, f"{h}x{w}", *listing])
        path = cache_dir / f"fid-ref_{key}_{ext.name}_{h}x{w}.npz"
        if path.is_file():
            try:
                stats, meta = FIDStatistics.load(path)
                if meta.get("key") == digest:
                    out[key] = stats
                    log(f"{key}: reference statistics of {stats.n} training images read from {path}")
                    continue
            except (OSError, ValueError, KeyError):
                pass  # unreadable or stale: recompute and overwrite
        todo[key] = (path, digest)
    if todo:
        stats_new = {k: FIDStatistics(extractors[k].dim) for k in todo}
        bar = tqdm(
            total=len(files), desc="FID reference (train)", unit="img", disable=not progress, leave=False
        )
        for i in range(0, len(files), batch_size):
            batch = torch.stack([_to_tensor(load_image(p, size)) for p in files[i : i + batch_size]])
            for k in todo:
                stats_new[k].update(extractors[k](batch))
            bar.update(len(batch))
        bar.close()
        for k, (path, digest) in todo.items():
            meta = {"key": digest, "extractor": extractors[k].identity, "size": [h, w], "images": len(files)}
            try:
                stats_new[k].save(path, meta)
                log(f"{k}: reference statistics of {len(files)} training images cached in {path}")
            except OSError as err:
                log(f"{k}: could not cache reference statistics in {path} ({err})")
            out[k] = stats_new[k]
    return out, len(files), not todo


def evaluate_folder(
    generated_dir: str | os.PathLike,
    data_root: str | os.PathLike,
    size: str | Sequence[int] = (256, 176),
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    inception_weights: str | os.PathLike | None = None,
    fid_stats_cache: str | os.PathLike | None = None,
    fid_reference: str = "train",
    allow_missing: bool = False,
    lpips_weights: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    fid_extractor: torch.nn.Module | None = None,
    fid_cfld_extractor: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """Score generated images with the authors' DeepFashion protocol (module docstring).

    Args:
        generated_dir: folder of ``<source stem>___<target stem>.png`` images.
        data_root: DeepFashion-format root (``fasion-resize-pairs-test.csv``, ``test_highres/``,
            ``train_highres/``; ``test_parts/`` for procedural roots).
        size: evaluation size ``(H, W)`` or ``"HxW"``: ``256x176`` or ``512x352`` in the paper.
        batch_size: images per batch.
        device: ``"cpu"`` or ``"cuda"``.
        inception_weights: torchvision ``inception_v3_google-0cc3c7bd.pth`` for ``fid_cfld``;
            ``None`` reads ``$CFLD_INCEPTION_WEIGHTS``; when neither is set ``fid_cfld`` is None.
        fid_stats_cache: folder for cached reference statistics; default ``ROOT/.cfld-cache``
            (or ``~/.cache/cfld/fid-stats`` when the root is read-only).
        fid_reference: ``"train"`` (authors: every training image) or ``"test-gt"`` (the
            ground truth of the evaluated pairs, one per pair; the usual choice elsewhere).
        allow_missing: score only the pairs that have a generated image instead of failing.
        lpips_weights: LPIPS weight file; default the copy shipped with cfld.
        out: write the results as JSON here (atomically).
        progress: show progress bars.
        log: receives the check and info lines (e.g. ``print``).
        fid_extractor: replaces the standard FID network (tests).
        fid_cfld_extractor: replaces the torchvision Inception (tests).

    Returns:
        ``fid``, ``fid_cfld``, ``lpips``, ``ssim``, ``ssim_256``, ``psnr``, ``num_pairs``, and
        ``silhouette_iou``/``part_colour_error`` on procedural roots, plus counts, check lines
        (``checks``), notes and timings.

    Raises:
        FileNotFoundError: a missing folder, csv, ground-truth image or weight file.
        ValueError: bad arguments, or missing generated images without ``allow_missing``.
    """
    t_start = time.perf_counter()
    log = log or (lambda _line: None)
    size = parse_size(size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if fid_reference not in FID_REFERENCES:
        raise ValueError(f"fid_reference must be one of {FID_REFERENCES}, got {fid_reference!r}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use --device cpu")
    root, gen_dir = Path(data_root), Path(generated_dir)
    checks: list[str] = []
    notes: list[str] = []
    plan, counts = _plan(gen_dir, root, allow_missing, checks)
    for line in checks:
        log(line)

    # Feature extractors.  Missing standard-FID weights fail (they ship with a dependency);
    # missing torchvision weights only disable fid_cfld (users must supply them).
    extractors: dict[str, torch.nn.Module] = {}
    extractors["fid"] = (fid_extractor if fid_extractor is not None else FIDInceptionFeatures()).to(dev)
    if fid_cfld_extractor is not None:
        extractors["fid_cfld"] = fid_cfld_extractor.to(dev)
    else:
        weights = resolve_inception_weights(inception_weights)
        if weights is None:
            notes.append(
                f"fid_cfld is null: torchvision's Inception-v3 weights (inception_v3_google-"
                f"0cc3c7bd.pth) were not given; pass --inception-weights PATH or set "
                f"{INCEPTION_WEIGHTS_ENV} to get the paper-comparable FID"
            )
        else:
            extractors["fid_cfld"] = CFLDInceptionFeatures(weights).to(dev)
    lpips_net = LPIPS(weights=lpips_weights).to(dev)

    # Reference statistics.
    t_ref = time.perf_counter()
    ref_cached = False
    if fid_reference == "train":
        cache_dir = Path(fid_stats_cache) if fid_stats_cache is not None else _default_cache_dir(root)
        if cache_dir.is_file():
            raise ValueError(
                f"--fid-stats-cache {cache_dir} is a file; give a folder (one statistics file per "
                f"feature extractor and size is kept there)"
            )
        ref_stats, n_ref, ref_cached = _reference_stats(
            root, size, extractors, cache_dir, batch_size, progress, log
        )
    else:
        ref_stats = {k: FIDStatistics(e.dim) for k, e in extractors.items()}
        n_ref = len(plan)
    t_ref = time.perf_counter() - t_ref

    # Per-pair scores.
    from cfld.data.deepfashion import load_image

    parts_dir = root / "test_parts"
    has_parts = parts_dir.is_dir()
    gen_stats = {k: FIDStatistics(e.dim) for k, e in extractors.items()}
    sums = {"lpips": 0.0, "ssim": 0.0, "ssim_256": 0.0, "psnr": 0.0}
    n_identical = 0
    n_nan_ssim256 = 0
    sil, sil_gt, pce = [], [], []
    missing_parts = 0
    size_counts: dict[tuple[int, int], int] = {}
    t_pairs = time.perf_counter()
    bar = tqdm(total=len(plan), desc="evaluate", unit="pair", disable=not progress, leave=False)
    for i in range(0, len(plan), batch_size):
        chunk = plan[i : i + batch_size]
        gens, gts, part_maps = [], [], []
        for p in chunk:
            try:
                with Image.open(p.generated) as im:
                    g = _to_tensor(im)
            except (OSError, SyntaxError, ValueError) as err:  # PIL's decode errors
                raise ValueError(
                    f"cannot read generated image {p.generated}: {err}; regenerate or remove it"
                ) from None
            hw = (int(g.shape[1]), int(g.shape[2]))
            size_counts[hw] = size_counts.get(hw, 0) + 1
            gens.append(quantise_generated(g, size)[0])
            gts.append(_to_tensor(load_image(p.gt, size)))
            if has_parts:
                pm = parts_dir / (Path(p.target).stem + ".png")
                if pm.is_file():
                    with Image.open(pm) as im:
                        lab = im.resize((size[1], size[0]), Image.NEAREST)
                    part_maps.append(torch.from_numpy(np.array(lab, dtype=np.int64)))
                else:
                    part_maps.append(None)
                    missing_parts += 1
        pred = torch.stack(gens).to(dev)  # (B,3,H,W)
        gt = torch.stack(gts).to(dev)  # (B,3,H,W)
        with torch.no_grad():
            sums["lpips"] += float(lpips_net(pred, gt).double().sum())
        sums["ssim"] += float(ssim(pred, gt).sum())
        s256 = ssim_256(pred, gt)
        n_nan_ssim256 += int(torch.isnan(s256).sum())
        sums["ssim_256"] += float(torch.nan_to_num(s256, nan=0.0).sum())
        ps = psnr(pred, gt)
        n_identical += int(torch.isinf(ps).sum())
        sums["psnr"] += float(ps.clamp(max=PSNR_CAP_DB).sum())
        for k, e in extractors.items():
            gen_stats[k].update(e(pred))
            if fid_reference == "test-gt":
                ref_stats[k].update(e(gt))
        if has_parts:
            idx = [j for j, m in enumerate(part_maps) if m is not None]
            if idx:
                pm = torch.stack([part_maps[j] for j in idx]).to(dev)  # (b,H,W)
                sil.append(silhouette_iou(pred[idx], pm).cpu())
                # Same test on the ground truth: the ceiling of the background-based silhouette.
                sil_gt.append(silhouette_iou(gt[idx], pm).cpu())
                pce.append(part_colour_error(pred[idx], gt[idx], pm).cpu())
        bar.update(len(chunk))
    bar.close()
    t_pairs = time.perf_counter() - t_pairs
    n = len(plan)

    # Size report: each class of size one clear line (facts §7.5 resizing).
    h, w = size
    for (gh, gw), c in sorted(size_counts.items(), key=lambda kv: -kv[1]):
        if (gh, gw) == (h, w):
            line = f"sizes: {c} generated images at {gh}x{gw} (used as they are)"
        elif gh == gw:
            line = (
                f"sizes: {c} generated images at {gh}x{gw}, squashed to {h}x{w} with torch "
                f"bicubic+antialias and uint8 truncation, as the authors do"
            )
        elif abs(gh / gw - h / w) < 0.02:
            line = f"sizes: {c} generated images at {gh}x{gw}, resized to {h}x{w} (same aspect)"
        else:
            line = (
                f"sizes: WARNING {c} generated images at {gh}x{gw}: neither {h}x{w}, the same "
                f"aspect, nor square; resized to {h}x{w} anyway — check the generator's output size"
            )
        checks.append(line)
        log(line)

    results: dict[str, Any] = {}
    for k in ("fid", "fid_cfld"):
        results[k] = None
        if k not in extractors:
            continue
        r, g = ref_stats[k], gen_stats[k]
        if r.n < 2 or g.n < 2:
            notes.append(f"{k} is null: FID needs at least 2 images per set (have {r.n} and {g.n})")
            continue
        results[k] = frechet_distance(r.mu, r.sigma, g.mu, g.sigma)
    results["lpips"] = sums["lpips"] / n
    results["ssim"] = sums["ssim"] / n
    valid256 = n - n_nan_ssim256
    results["ssim_256"] = sums["ssim_256"] / valid256 if valid256 else None
    if n_nan_ssim256:
        notes.append(
            f"ssim_256 averaged over {valid256} pairs: {n_nan_ssim256} predictions are constant "
            f"(zero data range, facts §12.6) and give NaN"
        )
    results["psnr"] = sums["psnr"] / n
    if n_identical:
        notes.append(
            f"psnr: {n_identical} pairs are pixel-identical (PSNR +inf); counted as "
            f"{PSNR_CAP_DB:g} dB in the mean"
        )
    results["num_pairs"] = n
    if has_parts:
        if sil:
            s_all, p_all = torch.cat(sil), torch.cat(pce)
            results["silhouette_iou"] = float(s_all.mean())
            results["silhouette_iou_gt"] = float(torch.cat(sil_gt).mean())
            finite = p_all[~torch.isnan(p_all)]
            results["part_colour_error"] = float(finite.mean()) if finite.numel() else None
        if missing_parts:
            notes.append(f"part maps: {missing_parts} targets have no map in {parts_dir}; skipped")
    total = time.perf_counter() - t_start
    results.update(
        size=[h, w],
        fid_reference=fid_reference,
        fid_reference_images=n_ref,
        fid_reference_cached=ref_cached,
        pairs_in_csv=counts["pairs_in_csv"],
        missing_generated=counts["missing"],
        extra_generated=counts["extra"],
        generated_sizes={f"{a}x{b}": c for (a, b), c in size_counts.items()},
        psnr_cap_db=PSNR_CAP_DB,
        psnr_identical_pairs=n_identical,
        extractors={k: getattr(e, "identity", type(e).__name__) for k, e in extractors.items()},
        checks=checks,
        notes=notes,
        seconds_total=round(total, 3),
        seconds_reference=round(t_ref, 3),
        seconds_pairs=round(t_pairs, 3),
        pairs_per_s=round(n / t_pairs, 3) if t_pairs > 0 else None,
        device=str(dev),
    )
    for k, v in list(results.items()):  # JSON has no NaN/inf
        if isinstance(v, float) and not math.isfinite(v):
            results[k] = None
    if out is not None:
        _write_json_atomic(Path(out), results)
    return results


def format_table(results: dict[str, Any]) -> str:
    """A labelled text table of the main scores (both FIDs, both SSIMs)."""

    def fmt(v: Any, digits: int = 4) -> str:
        return "null" if v is None else f"{v:.{digits}f}"

    h, w = results.get("size", ["?", "?"])
    rows = [
        ("FID (standard, TF-Inception)", fmt(results.get("fid"), 3)),
        ("FID_cfld (authors', torchvision Inception)", fmt(results.get("fid_cfld"), 3)),
        ("LPIPS (AlexNet v0.1) ↓", fmt(results.get("lpips"))),
        ("SSIM (win 51, authors' main) ↑", fmt(results.get("ssim"))),
        ("SSIM_256 (Gaussian, pred range) ↑", fmt(results.get("ssim_256"))),
        ("PSNR (dB) ↑", fmt(results.get("psnr"), 3)),
    ]
    if "silhouette_iou" in results:
        rows.append(("silhouette IoU ↑", fmt(results.get("silhouette_iou"))))
        rows.append(("silhouette IoU of the GT (ceiling)", fmt(results.get("silhouette_iou_gt"))))
        rows.append(("part colour error ↓", fmt(results.get("part_colour_error"))))
    rows.append(("pairs", str(results.get("num_pairs"))))
    width = max(len(r[0]) for r in rows)
    lines = [f"CFLD evaluation at {h}x{w} (FID reference: {results.get('fid_reference')})"]
    lines += [f"  {name:<{width}}  {val}" for name, val in rows]
    return "\n".join(lines)
