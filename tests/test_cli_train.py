"""`cfld train --config FILE [--set key=value ...] --dry-run`: the resolved configuration."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cfld.cli import main
from cfld.training import TrainConfig


def _dry(capsys, *args: str) -> dict:
    """The dry run's configuration fields (``resolved`` and ``num_processes`` checked apart)."""
    assert main(["train", *args, "--dry-run"]) == 0
    got = json.loads(capsys.readouterr().out)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(got) == names | {"num_processes", "resolved"}
    return {k: v for k, v in got.items() if k in names}


def test_every_config_field_is_reachable_from_the_command_line(capsys, tmp_path):
    from cfld.commands.train import FLAG_NAMES, SET_ONLY, field_help

    docs = field_help()
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(docs.get(n) for n in names), [n for n in names if not docs.get(n)]
    got = _dry(capsys, "--data", "d", "--out", "o")
    # Defaults untouched, resolved for 1 process: 8 pairs per process = the total batch.
    want = TrainConfig(data_root="d", output_dir="o", batch_size=8, total_batch_size=8)
    assert got == want.to_dict()
    assert set(FLAG_NAMES) | set(SET_ONLY) <= set(names)


def test_flags_config_file_and_set_resolve_in_that_order(capsys, tmp_path):
    saved = TrainConfig(data_root="root", output_dir=str(tmp_path / "run"), lr=3e-4,
                        batch_size=4, decay_epochs=(10, 20))
    path = saved.save(tmp_path / "config.json")
    got = _dry(capsys, "--config", str(path), "--batch-size", "2", "--no-export",
               "--uniform-timesteps", "--adam-betas", "0.9", "0.99",
               "--set", "snr_gamma=5", "--set", 'model_overrides={"unet_trainable": "all"}',
               "--set", "lr=1e-3")
    want = dataclasses.replace(saved, batch_size=2, total_batch_size=2, export=False,
                               cubic_sampling=False,
                               adam_betas=(0.9, 0.99), snr_gamma=5.0, lr=1e-3,
                               model_overrides={"unet_trainable": "all"})
    assert TrainConfig.from_dict(got) == want
    assert got["decay_epochs"] == [10, 20]


@pytest.mark.parametrize("args, message", [
    (["--data", "d"], "--out is required"),
    (["--data", "d", "--out", "o", "--set", "nope=1"], "KEY one of"),
    (["--data", "d", "--out", "o", "--batch-size", "0"],
     "argument --batch-size: must be an integer from 1"),
    (["--data", "d", "--out", "o", "--preset", "huge"], "unknown preset"),
])
def test_bad_configurations_end_in_one_line(capsys, args, message):
    assert main(["train", *args, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_dry_run_prints_what_the_run_will_use(capsys, tmp_path):
    """The resolved numbers, not the arguments: the total divided by processes × accumulation,
    the paper's LR rule, the preset's sizes, the data root's pairs and the steps they give."""
    from cfld.data.synthetic import make_sample_root
    from cfld.presets import get_preset

    root = make_sample_root(tmp_path / "root", people=2, poses=3, size=(64, 44), seed=0,
                            test_people=1)
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "run"), "--preset", "tiny",
                 "--total-batch-size", "8", "--gradient-accumulation-steps", "2", "--scale-lr",
                 "--epochs", "3", "--dry-run", "--num-processes", "2"]) == 0
    got = json.loads(capsys.readouterr().out)
    r = got["resolved"]
    assert (r["num_processes"], r["per_process_batch_size"], r["gradient_accumulation_steps"],
            r["total_batch_size"]) == (2, 2, 2, 8)
    assert r["lr"] == got["lr"] == pytest.approx(5e-7 * 8) and "--scale-lr" in r["lr_rule"]
    assert (got["batch_size"], got["total_batch_size"], got["num_processes"]) == (2, 8, 2)
    assert r["summary"].startswith("batch: 2 process(es) x 2 pairs x 2 accumulation step(s)")
    tiny = get_preset("tiny")
    assert r["preset"] == {"name": "tiny", "image_size": list(tiny.image_size),
                           "test_size": list(tiny.test_size), "pose_size": list(tiny.pose_size),
                           "source_size": tiny.source_size, "autoencoder": "sd_vae",
                           "description": tiny.description}
    assert (r["data"]["layout"], r["data"]["train_pairs"]) == ("deepfashion", 12)
    assert (r["data"]["steps_per_epoch"], r["data"]["total_steps"]) == (1, 3)  # 12 // 8, x 3
    # Without --num-processes: the launcher's count (1 here); --lr kept without --scale-lr.
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "run"),
                 "--total-batch-size", "8", "--lr", "2e-4", "--dry-run"]) == 0
    r = json.loads(capsys.readouterr().out)["resolved"]
    assert (r["num_processes"], r["per_process_batch_size"], r["lr"]) == (1, 8, 2e-4)
    assert "problem" not in r["data"]
    # A total that does not divide, and --num-processes without --dry-run: one-line errors.
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "run"),
                 "--total-batch-size", "6", "--dry-run", "--num-processes", "4"]) == 2
    assert "not divisible by 4 process" in capsys.readouterr().err
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "r2"),
                 "--num-processes", "2"]) == 2
    assert "only goes with --dry-run" in capsys.readouterr().err
