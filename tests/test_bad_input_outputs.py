"""The second bad-input campaign's rules, beyond "one clear line": existing outputs are replaced
only with --overwrite and then as a whole (a failure leaves the old files), a training run is
never replaced, data-root names and links stay inside the root (a linked root still works),
odd image modes are read by value, warnings print as one line and stay catchable, TensorBoard
failures do not stop training, app uploads are deleted once read.  And the corpus' size."""

from __future__ import annotations

import errno
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bad_inputs
from cfld.cli import main
from conftest import make_pixel_pipeline


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    from cfld.data.synthetic import make_sample_root

    base = tmp_path_factory.mktemp("outputs-corpus")
    model = base / "model"
    make_pixel_pipeline(output_size=(64, 44)).save_pretrained(model)
    root = make_sample_root(base / "root", people=2, poses=2, size=(64, 44), seed=1,
                            test_people=2)
    good = bad_inputs.write_images(base)["good"]
    return {"base": base, "model": model, "root": root, "good": good,
            "odd": bad_inputs.write_odd_images(base),
            "link": bad_inputs.symlinked_root(base, root, good)}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------- existing outputs
def test_data_synth_refuses_then_replaces_the_root_as_a_whole(tmp_path, capsys, monkeypatch):
    out = tmp_path / "synth"
    assert main(["data", "synth", "--out", str(out), "--people", "1", "--poses", "2",
                 "--size", "32x22", "--seed", "1"]) == 0
    (out / "notes.txt").write_text("mine")  # a user file in the root: never touched
    before = _files(out)
    args = ["data", "synth", "--out", str(out), "--people", "2", "--poses", "3", "--size",
            "32x22", "--seed", "2"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "fasion-resize-pairs-train.csv" in err
    assert _files(out) == before  # refused before any work: nothing changed

    import cfld.data.synthetic_root as synthetic_root

    real = synthetic_root.synthesize

    def dies_half_way(folder, **kw):
        real(folder, **kw)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(synthetic_root, "synthesize", dies_half_way)
    assert main([*args, "--overwrite"]) == 2
    assert "no space left" in capsys.readouterr().err
    assert _files(out) == before  # the work failed: the old root is whole, no temporaries
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]
    monkeypatch.setattr(synthetic_root, "synthesize", real)
    assert main([*args, "--overwrite"]) == 0
    after = _files(out)
    assert after["notes.txt"] == b"mine"
    pairs = after["fasion-resize-pairs-train.csv"].decode().splitlines()
    assert len(pairs) == 1 + 2 * 3 * 2  # the new root: 2 people x 3 poses, 6 ordered pairs each
    images = {Path(k).name for k in after if k.startswith("train_highres/")}
    assert images == set(after["train.lst"].decode().split())  # replaced, not merged: 6 images
    assert len(images) == 6


def test_demo_refuses_then_replaces_grid_and_metrics(ctx, tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "grid.png").write_text("an earlier grid")
    model = tmp_path / "model"  # the demo scores 128x88 images (SSIM's 51x51 window)
    make_pixel_pipeline(output_size=(128, 88)).save_pretrained(model)
    args = ["demo", "--model", str(model), "--out", str(out), "--pairs", "2",
            "--steps", "1"]
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "grid.png").read_text() == "an earlier grid"
    assert main([*args, "--overwrite"]) == 0
    assert Image.open(out / "grid.png").width > 4 * 88
    assert json.loads((out / "metrics.json").read_text())["num_pairs"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "metrics.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "model"]  # no temporaries


def test_a_new_animation_replaces_a_longer_one_whole(ctx, tmp_path, capsys):
    out = tmp_path / "frames"
    out.mkdir()
    for i in range(5):  # an earlier 5-frame animation
        Image.new("RGB", (8, 8)).save(out / f"frame_{i:04d}.png")
    args = ["animate", "--model", str(ctx["model"]), "--source", str(ctx["good"]), "--poses",
            "walking,side", "--frames", "2", "--out", str(out), "--steps", "1"]
    assert main(args) == 2
    assert "frame_0000.png and 4 more" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["animation.gif", "frame_0000.png",
                                                     "frame_0001.png"]
    assert Image.open(out / "frame_0000.png").size == (44, 64)


def test_evaluate_checks_its_output_before_any_work(ctx, tmp_path, capsys, monkeypatch):
    import cfld.metrics.evaluate as evaluate

    calls = []

    def fake_evaluate(*_a, **kw):
        calls.append(kw["out"])
        return {"notes": [], "num_pairs": 0, "seconds_total": 0.0}

    monkeypatch.setattr(evaluate, "evaluate_folder", fake_evaluate)
    monkeypatch.setattr(evaluate, "format_table", lambda _r: "table")
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "metrics.json").write_text('{"earlier": true}')
    args = ["evaluate", "--generated", str(gen), "--data", str(ctx["root"])]
    assert main(args) == 2 and calls == []
    assert "metrics.json" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0 and calls == [gen / "metrics.json"]


def test_a_training_run_is_never_replaced(ctx, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    assert main(["train", "--data", str(ctx["root"]), "--out", str(run), "--max-steps",
                 "1"]) == 2
    err = capsys.readouterr().err
    assert "metrics.jsonl" in err and "--resume latest" in err
    assert (run / "metrics.jsonl").read_text() == '{"step": 1}\n'
    assert sorted(p.name for p in run.iterdir()) == ["metrics.jsonl"]


def test_replace_entries_leaves_other_files_and_cleans_up(tmp_path):
    from cfld.checks.writes import replace_entries

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    (out / "data").mkdir()
    (out / "data" / "old.txt").write_text("old")
    (out / "x").write_text("a file where a folder comes")

    def write(tmp: Path) -> int:
        (tmp / "data").mkdir()
        (tmp / "data" / "new.txt").write_text("new")
        (tmp / "x").mkdir()
        return 7

    assert replace_entries(out, write) == 7
    assert _files(out) == {"keep.txt": b"keep", "data/new.txt": b"new"}
    assert (out / "x").is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ------------------------------------------------------------------- data roots and links
def test_links_out_of_the_data_root_are_refused_everywhere(ctx, tmp_path):
    from cfld.data.check import check_root
    from cfld.data.datasets import DeepFashionTest
    from cfld.generation import generate_pairs

    escape = ctx["link"]["escape"]
    with pytest.raises(ValueError, match="symbolic link to .*good.png, outside the data root"):
        DeepFashionTest(escape, gen_size=(64, 44), cond_size=(32, 32), pose_size=(64, 44))
    assert any("symbolic link" in p for p in check_root(escape, decode_images=False).problems)
    from cfld.data.formats import read_pairs

    pairs = read_pairs(ctx["link"]["escape_pairs"])
    with pytest.raises(ValueError, match="copy the file into the root"):
        generate_pairs(make_pixel_pipeline(), escape, pairs, tmp_path / "gen")
    assert not (tmp_path / "gen").exists()


def test_a_root_whose_image_folder_is_a_link_still_works(ctx, tmp_path, capsys):
    from cfld.data.datasets import DeepFashionTest

    linked = ctx["link"]["linked_dir"]
    assert (linked / "test_highres").is_symlink()
    ds = DeepFashionTest(linked, gen_size=(64, 44), cond_size=(32, 32), pose_size=(64, 44))
    assert ds[0]["img_src"].shape == (3, 64, 44)
    assert main(["generate", "--model", str(ctx["model"]), "--pairs",
                 str(ctx["link"]["escape_pairs"]), "--data", str(linked), "--out",
                 str(tmp_path), "--steps", "1", "--limit", "1"]) == 0
    assert len(list(tmp_path.glob("*___*.png"))) == 1


# ------------------------------------------------------------------- odd images, by value
def test_odd_image_modes_are_read_by_value(ctx):
    from cfld.data.images import open_image

    odd = ctx["odd"]
    with Image.open(odd["cmyk"]) as im:
        expected = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(np.asarray(open_image(odd["cmyk"])).astype(int) - expected).max() <= 1
    with Image.open(odd["palette_alpha"]) as im:
        transparent = np.asarray(im) == 0  # palette index 0 is the transparent one
    rgb = np.asarray(open_image(odd["palette_alpha"]))
    assert transparent.any() and (rgb[transparent] == 255).all()  # on white, not black
    assert open_image(odd["bad_exif"]).size == (44, 64)  # an unknown orientation is ignored
    with Image.open(odd["animated"]) as im:
        first = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(open_image(odd["animated"])), first)
    with Image.open(odd["float_wide"]) as im:
        values = np.asarray(im, dtype=np.float64)
    grey = np.asarray(open_image(odd["float_wide"], mode="L")).astype(int)
    assert np.abs(grey - np.round(values / 65535 * 255)).max() <= 1  # scaled, not clipped
    assert grey.max() > 200 and grey.min() < 50


# ------------------------------------------------------------------- warnings
#: A command that warns: `cfld data check` replaced by one that reads a pairs csv with a
#: repeated row (cfld's own warning) and warns from outside cfld.
WARNING_COMMAND = """
import sys, warnings
import cfld.commands.data as data

def check(args):
    from cfld.data.formats import read_pairs
    read_pairs(sys.argv[1])
    warnings.warn("from elsewhere\\nsecond line", FutureWarning)
    return 0

data._check = check
from cfld.cli import main
sys.exit(main(["data", "check", "root"]))
"""


def test_cli_warnings_are_one_clean_line_and_still_catchable(tmp_path):
    import subprocess
    import sys

    from cfld.checks.messages import one_line_warnings
    from cfld.data.formats import read_pairs

    csv = tmp_path / "pairs.csv"
    csv.write_text("from,to\na.jpg,b.jpg\na.jpg,b.jpg\n")
    proc = subprocess.run([sys.executable, "-c", WARNING_COMMAND, str(csv)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"cfld data: warning: {csv}: 1 duplicate pair row(s), first: line 3 repeats line 2 "
        "(a.jpg -> b.jpg)",
        "cfld data: warning: from elsewhere second line (FutureWarning from <string>)"]
    with pytest.warns(UserWarning, match="duplicate pair"), one_line_warnings("cfld x"):
        read_pairs(csv)  # the formatting changes, the warning is still a warning
    assert warnings.formatwarning.__module__ == "warnings"  # restored after the block


# ------------------------------------------------------------------- TensorBoard
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_tensorboard_write_failures_warn_once_and_training_goes_on(tmp_path, code, capfd):
    import tensorboard.summary.writer.record_writer as record_writer

    from cfld.checks.tensorboard import GuardedWriter

    writer = GuardedWriter(tmp_path / "tensorboard")
    writer.add_scalar("train/loss", 1.0, 0)
    writer.flush()
    real = record_writer.RecordWriter.write

    def refuse(self, data):
        raise OSError(code, os.strerror(code))

    record_writer.RecordWriter.write = refuse
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            for step in range(1, 6):
                writer.add_scalar("train/loss", 1.0, step)
                writer.flush()
            writer.close()
    finally:
        record_writer.RecordWriter.write = real
    messages = [str(w.message) for w in seen]
    assert len(messages) == 1 and "TensorBoard logging stopped" in messages[0]
    assert ("no space left" if code == errno.ENOSPC else "Read-only") in messages[0]
    assert "metrics.jsonl" in messages[0] and not writer.active
    assert "Traceback" not in capfd.readouterr().err  # the writer thread's is not printed


def test_training_goes_on_when_tensorboard_cannot_write(tmp_path, monkeypatch):
    """The trainer's writer is the guarded one: a full log disk is one warning, the run ends
    normally and every step is in metrics.jsonl."""
    import tensorboard.summary.writer.record_writer as record_writer

    from cfld.data.synthetic import make_sample_root

    root = make_sample_root(tmp_path / "root", people=1, poses=2, size=(64, 44), seed=0,
                            test_people=1)

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(record_writer.RecordWriter, "write", full)
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="TensorBoard logging stopped.*no space left") as seen:
        code = main(["train", "--data", str(root), "--out", str(out), "--max-steps", "3",
                     "--batch-size", "1", "--sample-every", "-1", "--no-progress",
                     "--log-every", "1", "--checkpoint-every", "0", "--no-export"])
    assert code == 0
    assert sum("TensorBoard" in str(w.message) for w in seen) == 1
    steps = [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_tensorboard_that_cannot_open_is_a_warning(tmp_path):
    from cfld.checks.tensorboard import GuardedWriter

    (tmp_path / "tensorboard").write_text("a file where the log folder goes")
    with pytest.warns(UserWarning, match="TensorBoard logging stopped"):
        writer = GuardedWriter(tmp_path / "tensorboard")
    writer.add_scalar("x", 1.0, 0)  # does nothing, raises nothing
    writer.close()


# ------------------------------------------------------------------- the app's uploads
@pytest.fixture
def upload_app(tmp_path):
    pytest.importorskip("gradio")
    from cfld.app import AppHandlers

    cache = tmp_path / "gradio"
    cache.mkdir()
    return AppHandlers(make_pixel_pipeline(), guidance_type="none", upload_dir=cache), cache


def _upload(cache: Path, name: str, source: Path) -> Path:
    folder = cache / f"hash-{name}"  # Gradio puts each upload in a folder of its own
    folder.mkdir()
    dst = folder / name
    dst.write_bytes(source.read_bytes())
    return dst


def test_uploads_are_deleted_once_read_and_a_second_click_still_works(ctx, upload_app):
    app, cache = upload_app
    quiet = lambda *a, **k: None  # noqa: E731
    upload = _upload(cache, "me.png", ctx["good"])
    first, _ = app.run_generate(str(upload), "walking", None, None, 1, 2.0, 2.0, 0, "ddim",
                                progress=quiet)
    assert not upload.exists() and list(cache.iterdir()) == []  # file and its folder gone
    again, _ = app.run_generate(str(upload), "walking", None, None, 1, 2.0, 2.0, 0, "ddim",
                                progress=quiet)  # the browser sends the same path again
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    bad = _upload(cache, "bad.png", ctx["odd"]["empty"])
    for _ in range(2):  # a bad upload: the same message twice, its file gone after the first
        with pytest.raises(Exception, match="not a readable image"):
            app.run_generate(str(bad), "walking", None, None, 1, 2.0, 2.0, 0, "ddim",
                             progress=quiet)
        assert not bad.exists()
    kp = _upload(cache, "kp.json", bad_inputs.POSE_GALLERY_DIR / "02_walking.json")
    app.run_generate(str(ctx["good"]), "walking", None, str(kp), 1, 2.0, 2.0, 0, "ddim",
                     progress=quiet)
    assert not kp.exists() and ctx["good"].exists()  # a file outside the upload folder stays


def test_two_clicks_racing_for_one_upload_both_get_it(ctx, upload_app):
    gr = pytest.importorskip("gradio")
    app, cache = upload_app
    upload = _upload(cache, "race.png", ctx["good"])
    key = (os.path.realpath(upload),)

    def late_reader():  # the other click read and deleted the file while this one started
        app.uploads._remember(key, Image.new("RGB", (20, 30), (1, 2, 3)), 1800)
        raise gr.Error("the upload did not arrive, please upload it again")

    got = app.uploads.consume([upload], late_reader)
    assert got.size == (20, 30) and not upload.exists()
    assert app.uploads.image(str(upload), "photo").getpixel((0, 0)) == (1, 2, 3)


def test_the_editor_payload_is_deleted_once_decoded(ctx, upload_app):
    gr = pytest.importorskip("gradio")
    from cfld.app.layout import checked_upload

    app, cache = upload_app
    editor = gr.ImageEditor(type="pil", label="Reference photo")
    checked_upload(editor, app.uploads)
    background = _upload(cache, "ref.png", ctx["good"])
    payload = editor.data_model.model_validate(
        {"background": {"path": str(background)}, "layers": [], "composite": None})
    value = editor.preprocess(payload)
    assert value["background"].size == (88, 128) and not background.exists()
    assert editor.preprocess(payload)["background"].size == (88, 128)  # again, from memory


# ------------------------------------------------------------------- the corpus' size
#: Cases of the parametrised corpus, recorded: (first campaign, second campaign "c2-").  A
#: change of the corpus must change this record (cases are not dropped by accident).
RECORDED = {"cli": (110, 51), "api": (83, 30), "app": (27, 21)}


def test_the_corpus_size_is_recorded_and_at_least_80():
    import test_bad_input_api
    import test_bad_input_app
    import test_bad_input_cli

    got = {}
    for name, module in (("cli", test_bad_input_cli), ("api", test_bad_input_api),
                         ("app", test_bad_input_app)):
        ids = [c[0] for c in module.CASES]
        assert len(ids) == len(set(ids)), f"{name}: repeated case ids"
        second = sum(i.startswith("c2-") for i in ids)
        got[name] = (len(ids) - second, second)
    assert got == RECORDED
    assert sum(a + b for a, b in got.values()) >= 80
    assert sum(b for _, b in got.values()) >= 30
