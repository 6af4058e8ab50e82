"""`cfld train --config FILE [--set key=value ...] --dry-run`: the resolved configuration."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cfld.cli import main
from cfld.training import TrainConfig


def _dry(capsys, *args: str) -> dict:
    assert main(["train", *args, "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_config_field_is_reachable_from_the_command_line(capsys, tmp_path):
    from cfld.commands.train import FLAG_NAMES, SET_ONLY, field_help

    docs = field_help()
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(docs.get(n) for n in names), [n for n in names if not docs.get(n)]
    got = _dry(capsys, "--data", "d", "--out", "o")
    assert got == TrainConfig(data_root="d", output_dir="o").to_dict()  # defaults untouched
    assert set(FLAG_NAMES) | set(SET_ONLY) <= set(names)


def test_flags_config_file_and_set_resolve_in_that_order(capsys, tmp_path):
    saved = TrainConfig(data_root="root", output_dir=str(tmp_path / "run"), lr=3e-4,
                        batch_size=4, decay_epochs=(10, 20))
    path = saved.save(tmp_path / "config.json")
    got = _dry(capsys, "--config", str(path), "--batch-size", "2", "--no-export",
               "--uniform-timesteps", "--adam-betas", "0.9", "0.99",
               "--set", "snr_gamma=5", "--set", 'model_overrides={"unet_trainable": "all"}',
               "--set", "lr=1e-3")
    want = dataclasses.replace(saved, batch_size=2, export=False, cubic_sampling=False,
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
