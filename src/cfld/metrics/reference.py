"""The FID reference of the authors' protocol: every training image at the evaluation size
(fidelity §8), its statistics cached in a file and recomputed only when the images change."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from cfld.checks.files import inside_root
from cfld.data.images import list_images, load_image, to_tensor
from cfld.data.layouts import detect_layout
from cfld.distributed import Processes, map_ordered
from cfld.metrics.fid import FIDStatistics, stats_key

_CACHE_VERSION = "cfld-fid-ref-v1"


def default_cache_dir(root: Path) -> Path:
    """``ROOT/.cfld-cache``, or ``~/.cache/cfld/fid-stats`` when the root is read-only."""
    if os.access(root, os.W_OK):
        return root / ".cfld-cache"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cfld" / "fid-stats"


def reference_stats(
    root: Path,
    size: tuple[int, int],
    extractors: dict[str, torch.nn.Module],
    cache_dir: Path,
    batch_size: int,
    progress: bool,
    log: Callable[[str], None],
    procs: Processes | None = None,
) -> tuple[dict[str, FIDStatistics], int, bool]:
    """FID statistics of every training image at ``size``, per extractor (fidelity §8).

    With several processes the main process reads and writes the cache; the features of what
    is not cached are computed batch by batch across the processes and added in order.

    Returns:
        ``(statistics per extractor key, number of images, all read from the cache?)``; the
        statistics only on the main process.
    """
    procs = procs or Processes()
    train_dir = detect_layout(root).image_dir(root, "train")
    if not train_dir.is_dir():
        raise FileNotFoundError(
            f"{train_dir} not found: the FID reference is every training image (fidelity §8); "
            f"use --fid-reference test-gt to compare with the test ground truth instead"
        )
    # Every training image, each inside the root (a link out of it is refused, as for names).
    files = [inside_root(root, p.name, "training image", folder=train_dir.name)
             for p in list_images(train_dir)]
    if len(files) < 2:
        raise ValueError(f"{train_dir}: FID needs at least 2 training images, found {len(files)}")
    listing = [f"{p.name}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in files]
    out: dict[str, FIDStatistics] = {}
    todo: dict[str, tuple[Path, str]] = {}
    h, w = size
    for key, ext in extractors.items():
        digest = stats_key([_CACHE_VERSION, ext.identity, f"{h}x{w}", *listing])
        path = cache_dir / f"fid-ref_{key}_{ext.name}_{h}x{w}.npz"
        cached = _read_cached(path, digest) if procs.is_main else None
        if cached is not None:
            out[key] = cached
            log(f"{key}: reference statistics of {cached.n} training images read from {path}")
        else:
            todo[key] = (path, digest)
    todo = procs.broadcast(todo)  # the main process's view of the cache
    if todo:
        fresh = {k: FIDStatistics(extractors[k].dim) for k in todo}
        bar = tqdm(total=len(files), desc="FID reference (train)", unit="img",
                   disable=not (progress and procs.is_main), leave=False)

        def features(b: int) -> dict[str, torch.Tensor]:
            chunk = files[b * batch_size:(b + 1) * batch_size]
            batch = torch.stack([to_tensor(load_image(p, size)) for p in chunk])
            return {k: extractors[k](batch).cpu() for k in todo}

        for found in map_ordered(features, -(-len(files) // batch_size), procs):
            for k, f in found.items():
                fresh[k].update(f)
            bar.update(len(next(iter(found.values()))))
        bar.close()
        for k, (path, digest) in todo.items():
            if not procs.is_main:
                continue
            meta = {"key": digest, "extractor": extractors[k].identity, "size": [h, w],
                    "images": len(files)}
            try:
                fresh[k].save(path, meta)
                log(f"{k}: reference statistics of {len(files)} training images cached in {path}")
            except OSError as err:
                log(f"{k}: could not cache reference statistics in {path} ({err})")
            out[k] = fresh[k]
    return out, len(files), not todo


def _read_cached(path: Path, digest: str) -> FIDStatistics | None:
    """The statistics cached at ``path`` if they were made from the same images, else None."""
    if not path.is_file():
        return None
    try:
        stats, meta = FIDStatistics.load(path)
    except (OSError, ValueError, KeyError):
        return None  # unreadable: recompute and overwrite
    return stats if meta.get("key") == digest else None


__all__ = ["default_cache_dir", "reference_stats"]
