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
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cfld.cli import main
from cfld.data import PAIRS_TEST, read_pairs
from cfld.data.formats import generated_name
from cfld.training.batches import BatchPlan
from conftest import make_pixel_pipeline, tiny_vae, torch_threads
from multiprocess import driver_command, run, run_until, torchrun_command

STEPS = 6  # optimiser steps of the training runs: 2 epochs of 3 total batches of 4 pairs


# ------------------------------------------------------------------------------------ fixtures
pytestmark = pytest.mark.usefixtures("one_thread")  # as each launched process has


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


def _cut_after(run_dir: Path, copy: Path, step: int) -> Path:
    """A copy of a finished run as a run stopped after checkpoint ``step`` would leave it."""
    shutil.copytree(run_dir, copy)
    for ckpt in (copy / "checkpoints").iterdir():
        if int(ckpt.name.split("_")[1]) > step:
            shutil.rmtree(ckpt)
    return copy


@pytest.fixture(scope="module")
def one_process_run(train_setup, tmp_path_factory):
    """1 process × 4 pairs (total batch 4), uninterrupted."""
    out = tmp_path_factory.mktemp("dist_1x4") / "1x4"
    with torch_threads(1):  # a module fixture runs before the function-scoped one_thread
        assert main(_train_args(train_setup, out, total_batch_size=4)) == 0
    return out


@pytest.fixture(scope="module")
def two_process_runs(train_setup, one_process_run, tmp_path_factory):
    """Two runs of 2 processes × 2 pairs: one killed after its second checkpoint and resumed,
    one uninterrupted; and the 1-process run, stopped after step 2, resumed on 2 processes.
    The three share one launch (one start-up of the processes)."""
    base = tmp_path_factory.mktemp("dist_2x2")
    resumed, straight = base / "resumed", base / "straight"
    from_one = _cut_after(one_process_run, base / "from_one", 2)
    args = _train_args(train_setup, resumed, batch_size=2)
    killed = run_until(torchrun_command(args),
                       lambda: (resumed / "checkpoints" / "step_00000002").is_dir())
    assert killed, "the run ended before it could be killed"
    unfinished = not (resumed / "checkpoints" / f"step_{STEPS:08d}").exists()
    done = run(driver_command([[*args, "--resume", "latest"],
                               _train_args(train_setup, straight, batch_size=2),
                               [*_train_args(train_setup, from_one, total_batch_size=4),
                                "--resume", "latest"]]))
    return resumed, straight, done.stdout, unfinished, from_one


# ------------------------------------------------------------------------------------ the pieces
def test_batch_plan_divides_the_total_like_the_authors():
    from cfld.training.batches import resolve_batch_plan

    plan = resolve_batch_plan(None, 224, 1, 8, 1e-4)  # the authors' run: 8 GPUs
    assert (plan.per_process, plan.total, plan.lr) == (28, 224, 1e-4)
    assert resolve_batch_plan(None, 224, 1, 8, 1e-4, scale_lr=True).lr == pytest.approx(1.12e-4)
    assert resolve_batch_plan(None, None, 2, 2, 1e-4).total == 32  # 8 per process by default
    assert resolve_batch_plan(3, None, 2, 2, 1e-4).total == 12
    assert resolve_batch_plan(28, 224, 1, 8, 1e-4).per_process == 28  # consistent: fine
    with pytest.raises(ValueError, match="not divisible by 3 process"):
        resolve_batch_plan(None, 10, 1, 3, 1e-4)
    with pytest.raises(ValueError, match="give only one"):
        resolve_batch_plan(4, 224, 1, 8, 1e-4)
    assert plan.sample_indices(0, 1) == list(range(28, 56))
    assert BatchPlan(2, 2, 2).sample_indices(1, 0) == [4, 5]


def test_sampler_shares_every_step_between_processes_and_micro_batches():
    from cfld.training.batches import EpochBatchSampler

    plan = BatchPlan(2, 2, 2)  # 2 pairs × 2 processes × 2 micro-batches = 8 per step
    ranks = [EpochBatchSampler(20, 2, seed=5, rank=r, world_size=2, accumulation=2)
             for r in range(2)]
    for r in ranks:
        r.set_epoch(3)
    perm = ranks[0].permutation(3).tolist()
    assert ranks[0].batches_per_epoch == 2 and len(ranks[0]) == 4
    micro = [list(r) for r in ranks]
    for step in range(2):
        for a in range(2):
            for rank in range(2):
                positions = [step * plan.total + i for i in plan.sample_indices(a, rank)]
                assert micro[rank][step * 2 + a] == [perm[i] for i in positions]
    seen = [i for batches in micro for b in batches for i in b]
    assert len(seen) == len(set(seen)) == 16  # no overlap, drop_last
    ranks[1].set_epoch(3, start=1)
    assert list(ranks[1]) == micro[1][2:]


def test_sample_draws_depend_on_the_sample_not_on_the_split():
    from cfld.training.draws import SampleDraws

    def draws(indices):
        d = SampleDraws(7, 3, indices)
        return d.normal((2, 3)), d.uniform(), d.uniform()

    whole = draws([0, 1, 2, 3])
    halves = [draws([0, 1]), draws([2, 3])]
    for k in range(3):
        a, b = halves[0][k], halves[1][k]
        # rows [sources; targets]: the sources of pairs 0-3, then their targets
        joined = torch.cat([a[:2], b[:2], a[2:], b[2:]])
        assert torch.equal(whole[k], joined)
    assert not torch.equal(draws([0, 1])[0], SampleDraws(7, 4, [0, 1]).normal((2, 3)))


def test_drop_path_draws_from_the_samples_own_generators():
    from cfld.models.swin import DropPath
    from cfld.seeding import sample_generators, seeded_generator

    layer = DropPath(0.5).train()
    x = torch.ones(6, 4, 3)
    with sample_generators([seeded_generator(1, i) for i in range(6)]):
        whole = layer(x)
    parts = []
    for rows in (range(0, 2), range(2, 6)):
        with sample_generators([seeded_generator(1, i) for i in rows]):
            parts.append(layer(x[list(rows)]))
    assert torch.equal(whole, torch.cat(parts))
    keep = torch.stack([torch.rand((), generator=seeded_generator(1, i)) < 0.5 for i in range(6)])
    assert torch.equal(whole[:, 0, 0], keep.float() * 2)
    torch.manual_seed(0)  # outside a block: torch's global generator, as the authors' code
    first = layer(x)
    torch.manual_seed(0)
    assert torch.equal(layer(x), first)


def test_seeds_are_stable_and_tell_their_parts_apart():
    from cfld.seeding import derive_seed

    assert derive_seed(3407, 0, 1) == derive_seed(3407, 0, 1) < 2**63
    assert len({derive_seed(1, "a", "b"), derive_seed(1, "b", "a"), derive_seed(1, "ab"),
                derive_seed("1", "a", "b"), derive_seed(1, "a", "b", 0)}) == 5


def test_several_processes_in_groups_of_one_is_an_error(monkeypatch):
    from cfld.distributed import LaunchError, check_group, launched_processes, processes

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    check_group(1)
    assert processes().world == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched_processes() == 2
    with pytest.raises(LaunchError, match="torchrun --nproc_per_node N"):
        check_group(1)
    check_group(2)


# ------------------------------------------------------------------------------------ training
def _assert_same_training(run_dir: Path, reference: Path) -> None:
    """Final weights within 1e-5 relative error, losses within 1e-5 (float rounding only)."""
    weights, want = _final_weights(run_dir), _final_weights(reference)
    assert weights.keys() == want.keys()
    num = sum(float(((weights[k] - v).double() ** 2).sum()) for k, v in want.items())
    den = sum(float((v.double() ** 2).sum()) for v in want.values())
    assert math.sqrt(num / den) <= 1e-5, run_dir
    assert _losses(run_dir) == pytest.approx(_losses(reference), rel=1e-5)


def test_total_batch_of_4_gives_the_same_weights_however_split(train_setup, two_process_runs,
                                                              one_process_run, tmp_path):
    """1 process × 4 pairs, 2 processes × 2 pairs and 1 process × 2 pairs × 2 accumulation
    steps: the same pairs and the same per-sample draws, so the same weights after 6 Adam
    steps (float rounding only)."""
    _, out2, stdout, _, _ = two_process_runs
    record = json.loads((out2 / "config.json").read_text())
    assert (record["num_processes"], record["batch_size"], record["total_batch_size"]) == (2, 2, 4)
    summaries = [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]
    assert len(summaries) == 3  # one per run, printed by the main process only
    assert all((s["num_processes"], s["total_batch_size"]) == (2, 4) for s in summaries)
    assert "2 process(es) x 2 pairs x 1 accumulation step(s) = total batch 4" in stdout

    assert main(_train_args(train_setup, tmp_path / "1x2x2", batch_size=2,
                            gradient_accumulation_steps=2)) == 0
    for other in (out2, tmp_path / "1x2x2"):
        _assert_same_training(other, one_process_run)
    reference = _final_weights(one_process_run)
    moved = load_file(str(one_process_run / "checkpoints" / "step_00000001" /
                          "trainable.safetensors"))
    assert any(not torch.equal(moved[k], reference[k]) for k in reference)  # it did train


def test_two_process_run_killed_and_resumed_logs_the_same_losses(two_process_runs):
    resumed, straight, _, unfinished, _ = two_process_runs
    assert unfinished  # it was killed before its last step
    assert _losses(resumed) == _losses(straight)  # bit for bit
    steps = [json.loads(ln)["step"] for ln in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))
    final, want = _final_weights(resumed), _final_weights(straight)
    assert all(torch.equal(final[k], want[k]) for k in want)


def test_resume_on_another_process_count_continues_the_same_steps(train_setup, two_process_runs,
                                                                  one_process_run, tmp_path,
                                                                  capsys):
    """A checkpoint resumes on another process count at the same total batch (2 → 1 and 1 → 2
    processes): the losses and weights of the uninterrupted run, up to float rounding.  Another
    total batch is refused (exit 2), naming both process counts and the fix."""
    _, straight, stdout, _, from_one = two_process_runs
    assert "resuming a 1-process checkpoint on 2 process(es)" in stdout
    assert json.loads((from_one / "config.json").read_text())["num_processes"] == 2
    _assert_same_training(from_one, one_process_run)  # 1 → 2 processes
    assert _losses(from_one)[:2] == _losses(one_process_run)[:2]  # kept from the 1-process run

    to_one = _cut_after(straight, tmp_path / "to_one", 3)
    capsys.readouterr()
    # --batch-size 2 on 1 process is a total of 2: another step, refused.
    assert main([*_train_args(train_setup, to_one, batch_size=2), "--resume", "latest"]) == 2
    err = capsys.readouterr().err
    assert "written by 2 process(es) at a total batch of 4" in err
    assert "this run has 1 process(es) and a total batch of 2" in err
    assert "--total-batch-size 4" in err
    assert main([*_train_args(train_setup, to_one, total_batch_size=4), "--resume", "latest"]) == 0
    assert "resuming a 2-process checkpoint on 1 process(es)" in capsys.readouterr().out
    _assert_same_training(to_one, straight)  # 2 → 1 processes
    steps = [json.loads(ln)["step"] for ln in (to_one / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))


# ------------------------------------------------------------------------------------ generation
@pytest.fixture(scope="module")
def gen_setup(tmp_path_factory):
    from cfld.data.synthetic import make_sample_root

    base = tmp_path_factory.mktemp("dist_gen")
    root = make_sample_root(base / "root", people=2, poses=3, size=(128, 88), seed=1,
                            test_people=2)
    make_pixel_pipeline(output_size=(128, 88)).save_pretrained(base / "pipe")
    return root, base / "pipe"


@pytest.fixture(scope="module")
def reference_images(gen_setup, tmp_path_factory):
    """Every pair's image from one process (the images the other runs must reproduce)."""
    out = tmp_path_factory.mktemp("dist_one") / "one"
    # A module fixture runs before the function-scoped one_thread: set the launched processes'
    # thread count here too (CPU kernels round differently with another thread count).
    with torch_threads(1):
        assert main(_generate_args(gen_setup, out)) == 0
    return out


def _generate_args(setup, out: Path, batch_size: int = 2) -> list[str]:
    root, model = setup
    return list(map(str, ["generate", "--model", model, "--pairs", root / PAIRS_TEST, "--data",
                          root, "--out", out, "--steps", "4", "--batch-size", batch_size,
                          "--seed", "3"]))


def _evaluate_args(setup, generated: Path, out: Path) -> list[str]:
    root, _ = setup
    return list(map(str, ["evaluate", "--generated", generated, "--data", root, "--size",
                          "128x88", "--fid-reference", "train", "--fid-stats-cache",
                          out.parent / f"cache_{out.stem}", "--batch-size", "3", "--out", out,
                          "--no-progress"]))


def test_generate_and_evaluate_on_two_processes_equal_one(gen_setup, reference_images,
                                                         tmp_path, capsys):
    """2-process ``generate --pairs``, killed and resumed, writes the 1-process run's PNGs byte
    for byte with no pair done twice; 2-process ``evaluate`` gives the 1-process metrics."""
    root, _ = gen_setup
    names = [generated_name(s, t) + ".png" for s, t in read_pairs(root / PAIRS_TEST)]
    one, two = reference_images, tmp_path / "two"
    assert main(_evaluate_args(gen_setup, one, tmp_path / "one.json")) == 0
    assert sorted(p.name for p in one.glob("*.png")) == sorted(names)
    capsys.readouterr()

    # --batch-size 3, not the reference's 2: each image is computed on its own (batch_invariant)
    killed = run_until(torchrun_command(_generate_args(gen_setup, two, batch_size=3)),
                       lambda: len(list(two.glob("*.png"))) >= 2)
    assert killed, "the run ended before it could be killed"
    left = len(list(two.glob("*.png")))
    assert 2 <= left < len(names)
    done = run(driver_command([_generate_args(gen_setup, two, batch_size=3),
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


def test_generate_pairs_limit_and_failures_leave_every_image_unchanged(gen_setup,
                                                                       reference_images,
                                                                       tmp_path, capsys):
    """``--limit`` and a pair list with a broken pair give the images of the full run (per-pair
    noise, batches always run at the same shape); the broken pair is reported, not fatal."""
    root, _ = gen_setup
    pairs = read_pairs(root / PAIRS_TEST)
    full, part, mixed = reference_images, tmp_path / "part", tmp_path / "mixed"
    assert main([*_generate_args(gen_setup, part), "--limit", "3"]) == 0
    assert sorted(p.name for p in part.iterdir()) == sorted(
        generated_name(s, t) + ".png" for s, t in pairs[:3])
    for f in part.iterdir():
        assert f.read_bytes() == (full / f.name).read_bytes(), f.name
    csv = tmp_path / "pairs.csv"
    csv.write_text("from,to\n" + f"missing.jpg,{pairs[0][1]}\n" + f"{pairs[4][0]},{pairs[4][1]}\n")
    args = _generate_args(gen_setup, mixed)
    args[args.index("--pairs") + 1] = str(csv)
    capsys.readouterr()
    assert main(args) == 1  # a failure is reported in the exit code
    out = capsys.readouterr().out
    bad = generated_name("missing.jpg", pairs[0][1])
    assert f"failed: {bad}: source image test_highres/missing.jpg not found" in out
    assert "1 generated, 0 skipped (already there), 1 failed" in out
    good = generated_name(*pairs[4]) + ".png"
    assert [p.name for p in mixed.iterdir()] == [good]
    assert (mixed / good).read_bytes() == (full / good).read_bytes()


def test_generated_images_do_not_depend_on_the_batch_size(gen_setup, reference_images,
                                                         tmp_path):
    """``--batch-size`` 1, 3 and 4 (2 processes with 3: the test above) write the reference
    run's PNGs (``--batch-size 2``) byte for byte: each image is computed on its own, in a call
    of fixed shape (batch_invariant, the default).  ``--threads 1`` gives the 1-thread images
    in a process that has 2 threads (images depend on the thread count, README "Scaling
    out")."""
    names = sorted(p.name for p in reference_images.glob("*.png"))
    for batch, threads in ((1, ["--threads", "1"]), (3, ["--threads", "1"]), (4, [])):
        out = tmp_path / f"b{batch}"
        torch.set_num_threads(2)  # restored by one_thread
        # without --threads, batch mode on a CPU runs on 1 thread, as each launched process
        assert main([*_generate_args(gen_setup, out, batch_size=batch), *threads]) == 0
        assert torch.get_num_threads() == 1
        assert sorted(p.name for p in out.iterdir()) == names
        for name in names:
            assert (out / name).read_bytes() == (reference_images / name).read_bytes(), (batch,
                                                                                       name)


def test_the_examples_are_valid_launch_files(tmp_path, capsys):
    """examples/: both accelerate configs load with accelerate; the Slurm script is valid bash and
    its `cfld train` flags resolve to a configuration (`--dry-run`)."""
    import shlex
    import subprocess

    from accelerate.commands.config.config_args import load_config_from_file

    examples = Path(__file__).resolve().parents[1] / "examples"
    for name, procs, machines in (("accelerate_8gpu.yaml", 8, 1),
                                  ("accelerate_multinode.yaml", 16, 2)):
        cfg = load_config_from_file(str(examples / name))
        assert (cfg.distributed_type.value, cfg.num_processes, cfg.num_machines,
                cfg.mixed_precision) == ("MULTI_GPU", procs, machines, "fp16"), name
    script = examples / "slurm_train.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    command = script.read_text().split("-m cfld.cli ", 1)[1].split('"', 1)[0]
    for var in ("DATA", "RUN", "SD", "SWIN"):
        command = command.replace(f"${var}", str(tmp_path / var.lower()))
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == "train" and "--total-batch-size" in args
    assert main([*args, "--dry-run"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert (resolved["total_batch_size"], resolved["mixed_precision"]) == (224, "fp16")
