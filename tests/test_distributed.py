"""Several processes give the results of one: training, batch generation and evaluation under
real ``torchrun --standalone --nproc_per_node 2`` runs (gloo), at tiny size.

Every multi-process run also shows that its process group really had 2 members (config.json's
``num_processes``, the generation summary's per-process counts, metrics.json's
``num_processes``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cfld.cli import main
from cfld.data import PAIRS_TEST, read_pairs
from cfld.data.formats import generated_name
from conftest import make_pixel_pipeline, tiny_vae
from multiprocess import driver_command, run, run_until, torchrun_command

STEPS = 6  # optimiser steps of the training runs: 2 epochs of 3 total batches of 4 pairs


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as each launched process has
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def train_setup(tmp_path_factory):
    """A procedural root of 12 training pairs and a tiny SD-style VAE for the ``tiny`` preset
    (drop-path 0.2 in H_S and a sampled VAE posterior: every kind of per-sample draw)."""
    from cfld.data.synthetic import make_sample_root

    base = tmp_path_factory.mktemp("dist_train")
    root = make_sample_root(base / "root", people=2, poses=3, size=(64, 44), seed=0,
                            test_people=1)
    tiny_vae().save_pretrained(base / "sd" / "vae")
    return root, base / "sd"


def _train_args(setup, out: Path, **flags) -> list[str]:
    root, sd = setup
    base = {"preset": "tiny", "pretrained-sd": sd, "data": root, "out": out,
            "max-steps": STEPS, "lr": 1e-4, "warmup-steps": 2, "decay-epochs": 1,
            "log-every": 1, "sample-every": -1, "checkpoint-every": 1, "keep-checkpoints": STEPS,
            "seed": 5}
    base.update({k.replace("_", "-"): v for k, v in flags.items()})
    args = ["train", "--no-init-unet", "--no-progress", "--no-export"]
    for key, value in base.items():
        args += [f"--{key}", str(value)]
    return args


def _losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(ln)["loss"] for ln in lines]


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / f"step_{STEPS:08d}" / "trainable.safetensors"))


@pytest.fixture(scope="module")
def two_process_runs(train_setup, tmp_path_factory):
    """Two runs of 2 processes × 2 pairs: one killed after its second checkpoint and resumed,
    one uninterrupted.  The resumption and the uninterrupted run share one launch (one start-up
    of the processes)."""
    base = tmp_path_factory.mktemp("dist_2x2")
    resumed, straight = base / "resumed", base / "straight"
    args = _train_args(train_setup, resumed, batch_size=2)
    killed = run_until(torchrun_command(args),
                       lambda: (resumed / "checkpoints" / "step_00000002").is_dir())
    assert killed, "the run ended before it could be killed"
    unfinished = not (resumed / "checkpoints" / f"step_{STEPS:08d}").exists()
    done = run(driver_command([[*args, "--resume", "latest"],
                               _train_args(train_setup, straight, batch_size=2)]))
    return resumed, straight, done.stdout, unfinished


# ------------------------------------------------------------------------------------ training
def test_total_batch_of_4_gives_the_same_weights_however_split(train_setup, two_process_runs,
                                                              tmp_path):
    """1 process × 4 pairs, 2 processes × 2 pairs and 1 process × 2 pairs × 2 accumulation
    steps: the same pairs and the same per-sample draws, so the same weights after 6 Adam
    steps (float rounding only)."""
    _, out2, stdout, _ = two_process_runs
    record = json.loads((out2 / "config.json").read_text())
    assert (record["num_processes"], record["batch_size"], record["total_batch_size"]) == (2, 2, 4)
    summaries = [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]
    assert len(summaries) == 2  # one per run, printed by the main process only
    assert all((s["num_processes"], s["total_batch_size"]) == (2, 4) for s in summaries)
    assert "2 process(es) x 2 pairs x 1 accumulation step(s) = total batch 4" in stdout

    assert main(_train_args(train_setup, tmp_path / "1x4", total_batch_size=4)) == 0
    assert main(_train_args(train_setup, tmp_path / "1x2x2", batch_size=2,
                            gradient_accumulation_steps=2)) == 0
    reference = _final_weights(tmp_path / "1x4")
    for other in (out2, tmp_path / "1x2x2"):
        weights = _final_weights(other)
        assert weights.keys() == reference.keys()
        num = sum(float(((weights[k] - v).double() ** 2).sum()) for k, v in reference.items())
        den = sum(float((v.double() ** 2).sum()) for v in reference.values())
        assert math.sqrt(num / den) <= 1e-5, other
        assert _losses(other) == pytest.approx(_losses(tmp_path / "1x4"), rel=1e-5)
    moved = load_file(str(tmp_path / "1x4" / "checkpoints" / "step_00000001" /
                          "trainable.safetensors"))
    assert any(not torch.equal(moved[k], reference[k]) for k in reference)  # it did train


def test_two_process_run_killed_and_resumed_logs_the_same_losses(two_process_runs):
    resumed, straight, _, unfinished = two_process_runs
    assert unfinished  # it was killed before its last step
    assert _losses(resumed) == _losses(straight)  # bit for bit
    steps = [json.loads(ln)["step"] for ln in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))
    final, want = _final_weights(resumed), _final_weights(straight)
    assert all(torch.equal(final[k], want[k]) for k in want)


# ------------------------------------------------------------------------------------ generation
@pytest.fixture(scope="module")
def gen_setup(tmp_path_factory):
    from cfld.data.synthetic import make_sample_root

    base = tmp_path_factory.mktemp("dist_gen")
    root = make_sample_root(base / "root", people=2, poses=3, size=(128, 88), seed=1,
                            test_people=2)
    make_pixel_pipeline(output_size=(128, 88)).save_pretrained(base / "pipe")
    return root, base / "pipe"


def _generate_args(setup, out: Path) -> list[str]:
    root, model = setup
    return list(map(str, ["generate", "--model", model, "--pairs", root / PAIRS_TEST, "--data",
                          root, "--out", out, "--steps", "4", "--batch-size", "2", "--seed", "3"]))


def _evaluate_args(setup, generated: Path, out: Path) -> list[str]:
    root, _ = setup
    return list(map(str, ["evaluate", "--generated", generated, "--data", root, "--size",
                          "128x88", "--fid-reference", "train", "--fid-stats-cache",
                          out.parent / f"cache_{out.stem}", "--batch-size", "3", "--out", out,
                          "--no-progress"]))


def test_generate_and_evaluate_on_two_processes_equal_one(gen_setup, tmp_path, capsys):
    """2-process ``generate --pairs``, killed and resumed, writes the 1-process run's PNGs byte
    for byte with no pair done twice; 2-process ``evaluate`` gives the 1-process metrics."""
    root, _ = gen_setup
    names = [generated_name(s, t) + ".png" for s, t in read_pairs(root / PAIRS_TEST)]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(_generate_args(gen_setup, one)) == 0
    assert main(_evaluate_args(gen_setup, one, tmp_path / "one.json")) == 0
    assert sorted(p.name for p in one.glob("*.png")) == sorted(names)
    capsys.readouterr()

    killed = run_until(torchrun_command(_generate_args(gen_setup, two)),
                       lambda: len(list(two.glob("*.png"))) >= 2)
    assert killed, "the run ended before it could be killed"
    left = len(list(two.glob("*.png")))
    assert 2 <= left < len(names)
    done = run(driver_command([_generate_args(gen_setup, two),
                               _evaluate_args(gen_setup, two, tmp_path / "two.json")]))
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("done: "))
    m = re.match(r"done: (\d+) generated, (\d+) skipped \(already there\), 0 failed; "
                 r"2 process\(es\) wrote (\d+) \+ (\d+) ", line)
    assert m, line
    generated, skipped, first, second = map(int, m.groups())
    assert (generated, skipped) == (len(names) - left, left)  # nothing done twice
    assert first + second == generated and first > 0 and second > 0
    assert sorted(p.name for p in two.iterdir()) == sorted(names)  # no temporary file left
    for name in names:
        assert (two / name).read_bytes() == (one / name).read_bytes(), name

    a = json.loads((tmp_path / "one.json").read_text())
    b = json.loads((tmp_path / "two.json").read_text())
    assert (a["num_processes"], b["num_processes"]) == (1, 2)
    assert a["num_pairs"] == b["num_pairs"] == len(names)
    for key in ("fid", "lpips", "ssim", "ssim_256", "psnr", "silhouette_iou",
                "part_colour_error"):
        assert a[key] is not None and b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), key
