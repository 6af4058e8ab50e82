"""Shared helpers of the benchmark scripts: arguments, models, inputs, timing, JSON output.

Every script writes ``benchmarks/results/<name>.json`` (``--out`` overrides) and prints a short
table.  ``--quick`` switches to the tiny preset and 1–2 steps: what CI runs to prove the scripts
work (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
NO_GPU_NOTE = ("no GPU was lent to this run: GPU numbers (and 50-step timings on a GPU) could "
               "not be measured; CPU numbers at few steps are given and 50-step figures are "
               "extrapolated from the measured per-step time")


# --------------------------------------------------------------------------- arguments
class _Parser(argparse.ArgumentParser):
    """Records the command line it parsed (``args.argv``), so results can say how they were made."""

    def parse_args(self, args=None, namespace=None):  # noqa: D102
        ns = super().parse_args(args, namespace)
        ns.argv = list(sys.argv[1:] if args is None else args)
        return ns


_COMMAND: str | None = None


def clean_estimate(kind: str, z_t: torch.Tensor, alpha_bar: torch.Tensor,
                   output: torch.Tensor) -> torch.Tensor:
    """The network's one-shot x0 estimate from its ``output`` at z_t (Eq. 1 inverted), for the
    scheduler's ``prediction_type`` ``kind``; ``alpha_bar`` is ᾱ_t (a scalar or broadcastable)."""
    if kind == "sample":
        return output
    if kind == "epsilon":
        return (z_t - (1 - alpha_bar).sqrt() * output) / alpha_bar.sqrt()
    if kind == "v_prediction":
        return alpha_bar.sqrt() * z_t - (1 - alpha_bar).sqrt() * output
    raise ValueError(f"unknown prediction_type {kind!r}")


def parser(description: str, default_preset: str = "fashion_256") -> argparse.ArgumentParser:
    """Argument parser with the options every benchmark shares."""
    p = _Parser(description=description)
    p.add_argument("--preset", default=None,
                   help=f"model preset (default {default_preset}; --quick: tiny)")
    p.add_argument("--quick", action="store_true",
                   help="tiny preset, 1–2 steps: proves the script works (CI)")
    p.add_argument("--out", type=Path, default=None, help="result JSON path")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's default, i.e. the core count)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(default_preset=default_preset)
    return p


def setup(args: argparse.Namespace, name: str) -> torch.device:
    """Resolve preset/out/threads/device in place; returns the device."""
    global _COMMAND
    _COMMAND = " ".join(["python", f"benchmarks/{name}.py", *getattr(args, "argv", [])])
    if args.preset is None:
        args.preset = "tiny" if args.quick else args.default_preset
    if args.out is None:
        args.out = RESULTS_DIR / f"{name}{'_quick' if args.quick else ''}.json"
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)
    return device


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "command": _COMMAND or _argv_command(),
    }
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def _argv_command() -> str:
    """The running script's command line (for scripts that do not call :func:`setup`)."""
    script = Path(sys.argv[0])
    name = f"benchmarks/{script.name}" if script.parent.name == "benchmarks" else str(script)
    return " ".join(["python", name, *sys.argv[1:]])


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --------------------------------------------------------------------------- models and inputs
def build_model(preset_name: str, device: torch.device | str = "cpu", seed: int = 0):
    """A CFLDModel with random weights (eval mode).  The zero-initialised output convolutions of
    the appearance branches get small random weights so that the biases are not all zero."""
    from cfld import CFLDModel
    from cfld.presets import get_preset

    torch.manual_seed(seed)
    model = CFLDModel(**get_preset(preset_name).model).eval()
    with torch.no_grad():
        for conv in model.appearance_encoder.zero_conv_outs:
            conv.weight.normal_(0, 0.02)
    return model.to(device)


def build_vae(preset_name: str, seed: int = 0):
    """The preset's autoencoder with random weights: SD-1.5 AutoencoderKL (full size), a tiny
    AutoencoderKL (``tiny``), or the pixel-unshuffle autoencoder (``synthetic``)."""
    from cfld.presets import get_preset

    preset = get_preset(preset_name)
    torch.manual_seed(seed + 1)
    if preset.autoencoder.get("type") == "pixel_unshuffle":
        from cfld import PixelUnshuffleAutoencoder

        return PixelUnshuffleAutoencoder(preset.autoencoder["factor"])
    from diffusers import AutoencoderKL

    if preset_name == "tiny":
        return AutoencoderKL(block_out_channels=(8, 8, 8, 8), norm_num_groups=8,
                             down_block_types=("DownEncoderBlock2D",) * 4,
                             up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4,
                             layers_per_block=1).eval()
    return AutoencoderKL(block_out_channels=(128, 256, 512, 512),
                         down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4,
                         layers_per_block=2, sample_size=512).eval()


def build_pipeline(preset_name: str, device: torch.device | str = "cpu", seed: int = 0):
    """CFLDPipeline (random weights, the authors' DDPM scheduler), progress bar off."""
    from cfld import CFLDPipeline
    from cfld.pipelines import official_scheduler

    pipe = CFLDPipeline(model=build_model(preset_name, device, seed),
                        scheduler=official_scheduler(), vae=build_vae(preset_name, seed))
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_inputs(pipe, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(source images (B, 3, S, S) in [-1, 1], pose maps (B, 21, H, W)) from rendered keypoints."""
    import numpy as np

    from cfld.pose import Keypoints
    from cfld.pose.render import render_pose_map

    g = torch.Generator().manual_seed(seed)
    size = pipe.model.source_size
    # smooth random "photos": low-resolution noise upsampled
    src = torch.rand(batch, 3, 8, 8, generator=g) * 2 - 1
    src = torch.nn.functional.interpolate(src, size=(size, size), mode="bilinear",
                                          align_corners=False)
    rng = np.random.default_rng(seed)
    base = np.array([[0.15, 0.5], [0.25, 0.5], [0.25, 0.35], [0.4, 0.3], [0.55, 0.3],
                     [0.25, 0.65], [0.4, 0.7], [0.55, 0.7], [0.55, 0.4], [0.75, 0.4],
                     [0.95, 0.4], [0.55, 0.6], [0.75, 0.6], [0.95, 0.6], [0.13, 0.45],
                     [0.13, 0.55], [0.14, 0.4], [0.14, 0.6]])
    maps = []
    for _ in range(batch):
        pts = np.clip(base + rng.normal(0, 0.03, base.shape), 0.02, 0.98)
        kp = Keypoints(pts * np.array([256, 176]), frame=(256, 176))
        maps.append(torch.from_numpy(render_pose_map(kp, pipe.pose_size)).float())
    return src, torch.stack(maps)


def initial_latents(pipe, batch: int, seed: int = 0) -> torch.Tensor:
    """z_T ~ N(0, I) of the pipeline's latent shape."""
    g = torch.Generator().manual_seed(seed + 100)
    return torch.randn((batch, *pipe.latent_shape), generator=g)


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ (float64)."""
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


# --------------------------------------------------------------------------- timing
def sync(device: torch.device | str) -> None:
    """Wait for queued GPU work (no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class Timers:
    """Wrap methods of objects with wall-clock timers: ``timers.wrap(model, "encode")``.

    Attributes:
        total: {name: seconds}; calls: {name: [seconds per call]}.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = device
        self.calls: dict[str, list[float]] = {}
        self._undo: list[tuple[Any, str]] = []

    def wrap(self, obj: Any, method: str, name: str | None = None) -> None:
        original = getattr(obj, method)
        key = name or method
        self.calls.setdefault(key, [])

        def timed(*args: Any, **kwargs: Any) -> Any:
            sync(self.device)
            t0 = time.perf_counter()
            out = original(*args, **kwargs)
            sync(self.device)
            self.calls[key].append(time.perf_counter() - t0)
            return out

        object.__setattr__(obj, method, timed)
        self._undo.append((obj, method))

    def restore(self) -> None:
        for obj, method in reversed(self._undo):
            try:
                object.__delattr__(obj, method)
            except AttributeError:
                pass
        self._undo.clear()

    def total(self, key: str) -> float:
        return float(sum(self.calls.get(key, [])))

    def count(self, key: str) -> int:
        return len(self.calls.get(key, []))

    def __enter__(self) -> Timers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.restore()


class PeakRSS:
    """Peak resident memory (bytes) above the level at entry, sampled every ``interval`` s.

    CPU torch allocations are invisible to tracemalloc, so the process RSS is polled in a thread.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.base = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def delta(self) -> int:
        return max(0, self.peak - self.base)


def max_rss_bytes() -> int:
    """Peak RSS of this process so far (``getrusage``; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_memory(device: torch.device | str | None = None) -> dict[str, Any]:
    """Peak memory of this process so far: RSS (``getrusage``; psutil's current RSS next to it
    when installed) and, on CUDA, ``torch.cuda.max_memory_allocated`` / ``_reserved``.

    Recorded by :func:`write_json` in every result (``peak_memory``), so each benchmark JSON
    says how much memory its run needed (issue 19).
    """
    out: dict[str, Any] = {"peak_rss_gb": max_rss_bytes() / 2**30,
                           "how": "resource.getrusage(RUSAGE_SELF).ru_maxrss: the whole "
                                  "process, model building included"}
    try:
        import psutil

        out["rss_now_gb"] = psutil.Process().memory_info().rss / 2**30
    except ImportError:  # pragma: no cover - psutil is optional
        pass
    cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
    if cuda:
        out["cuda_max_memory_allocated_gb"] = torch.cuda.max_memory_allocated() / 2**30
        out["cuda_max_memory_reserved_gb"] = torch.cuda.max_memory_reserved() / 2**30
    return out


def best_time(fn: Callable[[], Any], repeat: int = 3, device: torch.device | str = "cpu",
              warmup: int = 1) -> float:
    """Minimum wall time of ``fn`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    sync(device)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def timed_runs(fn: Callable[[], Any], runs: int = 3, device: torch.device | str = "cpu",
               warmup: int = 1) -> dict[str, Any]:
    """Wall times of ``runs`` calls of ``fn`` after ``warmup`` calls: the median (the figure a
    result reports), the spread (min, max) and every run."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return {"median": median(times), "min": min(times), "max": max(times), "runs": times}


def median(values: Sequence[float]) -> float:
    """The median (the mean of the middle two for an even count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --------------------------------------------------------------------------- output
def write_json(result: dict[str, Any], path: Path) -> Path:
    """Write ``result`` as indented JSON (folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    result.setdefault("load_average_at_end",
                      list(os.getloadavg()) if hasattr(os, "getloadavg") else None)
    result.setdefault("peak_memory", peak_memory())
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    tmp.replace(path)
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (torch.dtype, torch.device, Path)):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A markdown table of ``rows`` (floats with 3 significant digits)."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def log(msg: str) -> None:
    """Progress line on stderr (flushed)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
