"""Training killed (SIGKILL) during a step and during a checkpoint write, then resumed: the same
losses and weights as an uninterrupted run, nothing missing from metrics.jsonl, no temporary
files left; a damaged newest checkpoint is passed over for the previous intact one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cfld.training import TrainConfig, train

STEPS = 6
# A child process that trains and kills itself with SIGKILL at a chosen moment: before the
# optimiser update of step N ("step"), or half-way through writing checkpoint N ("checkpoint").
DRIVER = r"""
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from cfld.training import TrainConfig, train
config, mode, at = TrainConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], int(sys.argv[3])
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "step":
    adam_step, calls = torch.optim.Adam.step, [0]
    def step(self, *a, **k):
        calls[0] += 1
        if calls[0] == at:
            die()
        return adam_step(self, *a, **k)
    torch.optim.Adam.step = step
else:
    save = torch.save
    def partial_save(obj, f, *a, **k):
        if f"step_{at:08d}" in str(f):
            with open(f, "wb") as fh:
                fh.write(b"PK\x03\x04 half a checkpoint")
            die()
        return save(obj, f, *a, **k)
    torch.save = partial_save
train(config)
"""


# The child uses one thread too: identical float results.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    from cfld.data.synthetic import make_sample_root

    return make_sample_root(tmp_path_factory.mktemp("synth"), people=1, poses=2, size=(64, 44),
                            seed=0, test_people=1)


def _config(data_root: Path, out: Path, **kw) -> TrainConfig:
    base = dict(preset="synthetic", data_root=str(data_root), output_dir=str(out), batch_size=1,
                max_steps=STEPS, lr=1e-3, warmup_steps=2, decay_epochs=(1,), log_every=3,
                sample_every=-1, checkpoint_every=2, keep_checkpoints=3, progress=False,
                export=False, seed=5)
    base.update(kw)
    return TrainConfig(**base)


def _metrics(run: Path) -> list[tuple[int, float]]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [(r["step"], r["loss"]) for r in map(json.loads, lines)]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"step_{STEPS:08d}" / "trainable.safetensors"))


def _leftovers(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*")
                  if ".cfld-tmp" in p.name or ".tmp" in p.name or p.name.endswith(".cfld-old"))


@pytest.fixture(scope="module")
def reference(data_root, tmp_path_factory):
    """The uninterrupted run: its per-step losses and final weights."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("ref") / "run"
    train(_config(data_root, run))
    return _metrics(run), _weights(run)


def _killed_run(data_root: Path, run: Path, mode: str, at: int) -> None:
    config = json.dumps(_config(data_root, run).to_dict())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", DRIVER, config, mode, str(at)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def _resume_and_compare(data_root: Path, run: Path, reference) -> None:
    want_metrics, want_weights = reference
    train(_config(data_root, run, resume="latest"))
    assert _metrics(run) == want_metrics  # every step once, the same losses
    got = _weights(run)
    assert got.keys() == want_weights.keys()
    assert all(torch.equal(got[k], want_weights[k]) for k in got)
    assert _leftovers(run) == []


def test_killed_during_a_step_resumes_exactly(data_root, tmp_path, reference):
    run = tmp_path / "run"
    _killed_run(data_root, run, "step", at=5)  # killed inside step 5, checkpoints at 2 and 4
    # nothing that was logged is lost: steps 1-4 are in metrics.jsonl, flushed before the kill
    assert _metrics(run) == reference[0][:4]
    _resume_and_compare(data_root, run, reference)


def test_killed_during_a_checkpoint_write_resumes_exactly(data_root, tmp_path, reference):
    run = tmp_path / "run"
    _killed_run(data_root, run, "checkpoint", at=4)  # killed half-way through checkpoint 4
    assert _leftovers(run), "the kill should have left a temporary checkpoint folder"
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_00000002"]
    assert _metrics(run) == reference[0][:4]
    _resume_and_compare(data_root, run, reference)


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous(data_root, tmp_path, reference):
    run = tmp_path / "run"
    _killed_run(data_root, run, "step", at=5)
    damaged = run / "checkpoints" / "step_00000004" / "trainable.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:-100])  # truncated
    with pytest.warns(UserWarning, match="step_00000004.*falling back"):
        _resume_and_compare(data_root, run, reference)


def test_every_checkpoint_damaged_is_one_clear_error(data_root, tmp_path, capsys):
    from cfld.cli import main

    run = tmp_path / "run"
    train(_config(data_root, run, max_steps=2, checkpoint_every=2))
    (run / "checkpoints" / "step_00000002" / "state.pt").write_bytes(b"garbage")
    args = ["train", "--data", str(data_root), "--out", str(run), "--resume", "latest",
            "--preset", "synthetic", "--batch-size", "1", "--max-steps", "2", "--seed", "5"]
    with pytest.warns(UserWarning):
        assert main(args) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err
