"""benchmarks/bench_sampler_quality.py chooses the sampler on validation people and reports the
choice on other, test people (issue 21: no figure is both the basis of a choice and its report)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bsq():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_sampler_quality

        yield bench_sampler_quality
    finally:
        sys.path.remove(str(BENCH))


def _row(sampler, steps, ssim, iou, within):
    return {"sampler": sampler, "steps": steps, "unet_evals_per_image": 3 * steps,
            "ssim": ssim, "iou": iou, "within_spread": within}


def test_the_pick_is_the_fewest_steps_within_the_spread(bsq):
    ref = _row("ddpm", 50, 0.76, 0.76, True)
    rows = [ref, _row("ddim", 10, 0.70, 0.70, False), _row("ddpm", 20, 0.75, 0.75, True),
            _row("ddpm", 15, 0.74, 0.75, True), _row("dpm", 15, 0.75, 0.75, True)]
    pick = bsq.choose(rows)
    assert (pick["sampler"], pick["steps"]) == ("dpm", 15)  # 15 steps; at equal steps, SSIM
    assert pick["speedup_vs_ddpm50"] == pytest.approx(50 / 15)
    none = bsq.choose([ref, _row("ddim", 10, 0.7, 0.7, False)])
    assert (none["sampler"], none["steps"]) == ("ddpm", 50) and "keep DDPM" in none["reason"]


def test_choice_on_validation_people_report_on_test_people(bsq, monkeypatch, tmp_path):
    """The grid runs on the validation seed's pairs only; the test seed's pairs get the
    reference, the pick and the demo's setting; the JSON keeps both, with the seeds."""
    seen = {}

    def fake_pairs(pipe, root, n, people, seed):
        return {"seed": seed, "n": n}

    def fake_evaluate(pipe, data, configs, ref_steps, chunk):
        seen[data["seed"]] = list(configs)
        # on the validation people ddpm-2 is inside the spread, on the test people it is not
        inside = data["seed"] == 11
        rows = [_row("ddpm", ref_steps, 0.8, 0.8, True)]
        rows += [_row(s, n, 0.8, 0.8, inside and s == "ddpm") for s, n in configs]
        return {"reference_row": {}, "seed_spread": {"ssim": 0.01, "iou": 0.01, "pixel": 0.1},
                "rows": rows, "pairs": data["n"]}

    monkeypatch.setattr(bsq, "held_out_pairs", fake_pairs)
    monkeypatch.setattr(bsq, "evaluate", fake_evaluate)
    out = tmp_path / "r.json"
    bsq.main(["--quick", "--out", str(out), "--val-people-seed", "11",
              "--test-people-seed", "12", "--pairs", "5", "--test-pairs", "7"])
    data = json.loads(out.read_text())
    assert set(seen) == {11, 12}
    assert ("ddim", 2) in seen[11] and ("ddpm", 2) in seen[11]
    assert seen[12] == [("ddpm", 2), ("ddpm", 20)]  # the pick, the demo's DDPM-20
    assert data["validation_people_seed"] == 11 and data["test"]["people_seed"] == 12
    assert data["pairs"] == 5 and data["test"]["pairs"] == 7
    assert data["pick"] == {**bsq.choose(data["rows"]), "chosen_on": "validation"}
    assert (data["pick"]["sampler"], data["pick"]["steps"]) == ("ddpm", 2)
    assert data["machine"]["command"].startswith("python benchmarks/bench_sampler_quality.py")


@pytest.mark.parametrize("args, message", [
    (["--val-people-seed", "5", "--test-people-seed", "5"], "must differ"),
    (["--test-people-seed", "0"], "draws the training people"),
    (["--val-people-seed", "0"], "draws the training people"),
])
def test_refuses_shared_or_training_people(bsq, capsys, args, message):
    with pytest.raises(SystemExit) as err:
        bsq.parse(args)
    assert err.value.code == 2 and message in capsys.readouterr().err
