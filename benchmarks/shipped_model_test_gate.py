"""The measured value behind tests/test_shipped_model.py's quality gate.

The test scores the shipped model on a few unseen pairs with the demo's fast sampler (CI must
stay short) and requires what this script stored, within a few hundredths. A retrained model
needs only this file regenerated:

    python benchmarks/shipped_model_test_gate.py           # → results/shipped_model_test_gate.json

The full figures (200 pairs, DDPM-50) come from benchmarks/shipped_model_quality.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

RESULT = Path(__file__).resolve().parent / "results" / "shipped_model_test_gate.json"
PEOPLE, PAIRS, SEED = 2, 12, 0  # 2 unseen people (24 test pairs), 12 of them scored
# How far the test's measurement may move from the stored one (deterministic up to float
# rounding, which can flip a few pixels of the silhouettes).
TOLERANCE = {"silhouette_iou": 0.02, "ssim": 0.02, "psnr": 0.5, "part_colour_error": 0.02}


def measure(workdir: str | Path, pipe=None) -> dict[str, Any]:
    """Scores of the shipped model and of copying the source, the test's exact measurement."""
    from cfld.demo import make_held_out_root, score_pairs
    from cfld.shipped import DEMO_SETTINGS, load_pipeline

    if pipe is None:
        pipe = load_pipeline(None, scheduler=DEMO_SETTINGS["scheduler"])
        pipe.set_progress_bar_config(disable=True)
    root = make_held_out_root(Path(workdir) / "held_out", PEOPLE)
    result = score_pairs(pipe, root, PAIRS, DEMO_SETTINGS["steps"], seed=SEED,
                         batch_size=PAIRS)
    return {"model": result.model.as_dict(), "copy_source": result.copy_source.as_dict(),
            "swapped_source": result.swapped_source.as_dict(),
            "num_pairs": result.num_pairs, "held_out_people": PEOPLE, "seed": SEED,
            "scheduler": DEMO_SETTINGS["scheduler"], "steps": DEMO_SETTINGS["steps"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(tmp)
    result["tolerance"] = TOLERANCE
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["machine"] = {
        "command": " ".join(["python", "benchmarks/shipped_model_test_gate.py",
                             *(sys.argv[1:] if argv is None else argv)]),
        "torch": torch.__version__, "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("model", "swapped_source", "copy_source")}, indent=1))
    print(f"→ {args.out}")
    return result


if __name__ == "__main__":
    main()
