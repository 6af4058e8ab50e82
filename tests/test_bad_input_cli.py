"""The bad-input corpus through the command line: every case exits with code 2 and one line that
names the problem and the fix, never a traceback, and writes nothing; the good inputs next to
them still work.  The corpus is made from code (tests/bad_inputs.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bad_inputs
from cfld.cli import main
from conftest import make_pixel_pipeline

GEN = "generate --model {model_good} --source {img_good} --pose {kp_good} --steps 1 " \
      "--scheduler ddim"
BATCH = "generate --model {model_good} --pairs {pairs_good} --data {root} --steps 1 " \
        "--scheduler ddim"
INTERP = "edit interpolate --model {model_good} --source-a {img_good} --source-b {img_good} " \
         "--pose {kp_good} --steps 1"
ANIM = "animate --model {model_good} --source {img_good} --poses {kp_sequence} --steps 1"
TRAIN = "train --data {root} --out {out} --dry-run"

#: (id, command line, fragments the one-line message must contain).
CASES: list[tuple[str, str, tuple[str, ...]]] = [
    # ---- impossible numbers, refused by the flags' type= (the API's rules)
    ("steps-negative", GEN + " --out {out}/o.png --steps -3", ("--steps", "from 1 to 1000")),
    ("steps-zero", GEN + " --out {out}/o.png --steps 0", ("--steps", "from 1 to 1000")),
    ("steps-fraction", GEN + " --out {out}/o.png --steps 2.5", ("--steps", "an integer")),
    ("steps-word", GEN + " --out {out}/o.png --steps many", ("--steps", "an integer")),
    ("steps-huge", GEN + " --out {out}/o.png --steps 100000", ("--steps", "to 1000")),
    ("scale-pose-nan", GEN + " --out {out}/o.png --scale-pose nan", ("--scale-pose", "finite")),
    ("scale-app-inf", GEN + " --out {out}/o.png --scale-app inf", ("--scale-app", "finite")),
    ("scale-negative", GEN + " --out {out}/o.png --scale-app -2", ("--scale-app", "from 0")),
    ("seed-2^70", GEN + " --out {out}/o.png --seed 1180591620717411303424", ("--seed", "2**32")),
    ("seed-negative", GEN + " --out {out}/o.png --seed -1", ("--seed", "from 0")),
    ("batch-size-zero", BATCH + " --out {out} --batch-size 0", ("--batch-size", "from 1")),
    ("batch-size-negative", BATCH + " --out {out} --batch-size -2", ("--batch-size", "from 1")),
    ("limit-negative", BATCH + " --out {out} --limit -1", ("--limit", ">= 1")),
    ("limit-zero", BATCH + " --out {out} --limit 0", ("--limit", ">= 1")),
    ("size-huge", GEN + " --out {out}/o.png --size 100000x100000", ("too large", "4096")),
    ("size-zero", GEN + " --out {out}/o.png --size 0x5", ("positive integers",)),
    ("size-word", GEN + " --out {out}/o.png --size big", ("HxW", "256x176")),
    ("size-with-keep-square", GEN + " --out {out}/o.png --keep-square --size 7x5",
     ("keep_square", "give one of them")),
    ("device-bogus", GEN + " --out {out}/o.png --device bogus", ("--device", "cpu, cuda")),
    ("device-cuda-absent", GEN + " --out {out}/o.png --device cuda", ("--device", "--device cpu")),
    ("device-index-absent", GEN + " --out {out}/o.png --device cuda:7", ("--device", "cpu")),
    ("demo-pairs-zero", "demo --out {out} --pairs 0", ("--pairs", "from 1")),
    ("demo-steps-negative", "demo --out {out} --steps -1", ("--steps", "from 1")),
    ("demo-seed-nan", "demo --out {out} --seed nan", ("--seed", "an integer")),
    ("interp-frames-huge", INTERP + " --out {out} --frames 100000", ("--frames", "to 500")),
    ("interp-frames-one", INTERP + " --out {out} --frames 1", ("--frames", "from 2")),
    ("animate-fps-zero", ANIM + " --out {out} --fps 0", ("--fps", "(0, 120]")),
    ("animate-fps-nan", ANIM + " --out {out} --fps nan", ("--fps", "finite")),
    ("evaluate-batch-zero", "evaluate --generated {out} --data {root} --batch-size 0",
     ("--batch-size", "from 1")),
    ("evaluate-device-bogus", "evaluate --generated {out} --data {root} --device gpu0",
     ("--device", "not a device")),
    ("synth-people-zero", "data synth --out {out} --people 0", ("--people", "from 1")),
    ("synth-poses-one", "data synth --out {out} --poses 1", ("--poses", "from 2")),
    ("synth-size-tiny", "data synth --out {out} --size 5x5", ("at least 16",)),
    ("app-port", "app --port 70000", ("--port", "65535")),
    ("app-upload-zero", "app --max-upload-mb 0", ("--max-upload-mb", "(0, 4096]")),
    ("train-decay-negative", TRAIN + " --decay-epochs -3", ("--decay-epochs", "(0, ")),
    ("train-lr-nan", TRAIN + " --lr nan", ("--lr", "finite")),
    ("train-batch-zero", TRAIN + " --batch-size 0", ("--batch-size", "from 1")),
    ("train-drop-prob", TRAIN + " --drop-prob 2", ("--drop-prob", "from 0 to 1")),
    ("train-warmup-rate", TRAIN + " --warmup-rate 0", ("--warmup-rate", "(0, 1]")),
    ("train-set-string-int", TRAIN + " --set batch_size=\"8\"", ("batch_size", "'8'")),
    ("train-set-string-bool", TRAIN + " --set export=\"yes\"", ("export", "true or false")),
    ("train-set-nan", TRAIN + " --set lr=NaN", ("lr", "finite")),
    ("train-set-seed-huge", TRAIN + " --set seed=1180591620717411303424", ("seed", "2**32")),
    ("train-set-deep", TRAIN + " --set model_overrides=" + "[" * 50_000 + "]" * 50_000,
     ("--set model_overrides", "nested too deeply")),
    ("train-set-bool-beta", TRAIN + " --set adam_betas=[true,0.9]", ("adam_betas", "True")),
    ("train-config-binary", "train --config {img_good} --dry-run", ("binary", "training config")),
    ("train-config-deep", "train --config {kp_deep} --dry-run", ("nested too deeply",)),
    ("train-config-list", "train --config {kp_not_object} --dry-run", ("JSON object",)),
    # ---- input files: missing, folders, unreadable, bombs, unusable content
    ("source-missing", GEN + " --out {out}/o.png --source {corpus}/nope.png", ("not found",)),
    ("source-folder", GEN + " --out {out}/o.png --source {img_folder}", ("is a folder",)),
    ("source-bomb", GEN + " --out {out}/o.png --source {img_bomb}", ("decompression bomb",)),
    ("source-truncated", GEN + " --out {out}/o.png --source {img_truncated}",
     ("not a readable image", "re-copy")),
    ("source-garbage", GEN + " --out {out}/o.png --source {img_garbage}",
     ("not a readable image",)),
    ("source-1x1", GEN + " --out {out}/o.png --source {img_tiny}", ("1×1", "at least 16")),
    ("pose-all-missing", GEN + " --out {out}/o.png --pose {kp_all_missing}",
     ("0 of 18 joints", "at least 2")),
    ("pose-one-joint", GEN + " --out {out}/o.png --pose {kp_one_joint}", ("1 of 18 joints",)),
    ("pose-strings", GEN + " --out {out}/o.png --pose {kp_strings}", ("pair of numbers",)),
    ("pose-booleans", GEN + " --out {out}/o.png --pose {kp_booleans}", ("pair of numbers",)),
    ("pose-null", GEN + " --out {out}/o.png --pose {kp_null}", ("pair of numbers",)),
    ("pose-nan", GEN + " --out {out}/o.png --pose {kp_nan}", ("NaN", "finite numbers")),
    ("pose-17-joints", GEN + " --out {out}/o.png --pose {kp_seventeen}", ("18", "got 17")),
    ("pose-outside-frame", GEN + " --out {out}/o.png --pose {kp_outside}",
     ("outside", "frame")),
    ("pose-bad-frame", GEN + " --out {out}/o.png --pose {kp_bad_frame}", ("'frame'", "[H, W]")),
    ("pose-bool-frame", GEN + " --out {out}/o.png --pose {kp_bool_frame}", ("'frame'",)),
    ("pose-no-frame", GEN + " --out {out}/o.png --pose {kp_no_frame}", ("'frame'",)),
    ("pose-deep-json", GEN + " --out {out}/o.png --pose {kp_deep}", ("nested too deeply",)),
    ("pose-not-json", GEN + " --out {out}/o.png --pose {kp_not_json}", ("not valid JSON",)),
    ("pose-binary", GEN + " --out {out}/o.png --pose {kp_binary}", ("binary",)),
    ("pose-folder", GEN + " --out {out}/o.png --pose {corpus}", ("is a folder",)),
    ("pairs-traversal", BATCH + " --out {out} --pairs {pairs_traversal}",
     ("'../../../../etc/hostname'", "inside the data root", "line 2")),
    ("pairs-absolute", BATCH + " --out {out} --pairs {pairs_absolute}", ("inside the data root",)),
    ("pairs-binary", BATCH + " --out {out} --pairs {pairs_binary}", ("pairs_binary.csv", "binary")),
    ("pairs-latin1", BATCH + " --out {out} --pairs {pairs_latin1}", ("pairs_latin1.csv", "UTF-8")),
    ("pairs-separator", BATCH + " --out {out} --pairs {pairs_semicolon}", ("separator",)),
    ("pairs-folder", BATCH + " --out {out} --pairs {corpus}", ("is a folder",)),
    ("data-missing", BATCH + " --out {out} --data {corpus}/no_root", ("--data", "not found")),
    ("poses-too-many", ANIM + " --out {out} --poses {kp_too_many_frames}", ("limit is 500",)),
    ("interp-source-folder", INTERP + " --out {out} --source-a {img_folder}", ("is a folder",)),
    ("pose-photo-folder", "pose {img_folder} --out {out}/kp.json", ("is a folder",)),
    ("pose-photo-missing", "pose {corpus}/none.jpg --out {out}/kp.json", ("not found",)),
    # ---- model folders and weight files, named file by file
    ("model-empty", GEN + " --out {out}/o.png --model {model_empty}",
     ("model_index.json", "config.json")),
    ("model-evil-index", GEN + " --out {out}/o.png --model {model_evil_index}",
     ("cfld_evil_module", "refused before importing")),
    ("model-index-not-json", GEN + " --out {out}/o.png --model {model_bad_index_json}",
     ("model_index.json", "not valid JSON")),
    ("model-truncated-weights", GEN + " --out {out}/o.png --model {model_truncated_weights}",
     ("diffusion_pytorch_model.safetensors", "truncated")),
    ("model-garbage-weights", GEN + " --out {out}/o.png --model {model_garbage_weights}",
     ("not a safetensors file",)),
    ("model-config-not-json", GEN + " --out {out}/o.png --model {model_bad_config_json}",
     ("config.json", "not valid JSON")),
    ("model-config-typo", GEN + " --out {out}/o.png --model {model_mistyped_config}",
     ("unet_confg", "valid:")),
    ("model-config-type", GEN + " --out {out}/o.png --model {model_wrong_type_config}",
     ("config.json", "not describe a valid CFLDModel")),
    ("model-missing-weights", GEN + " --out {out}/o.png --model {model_missing_weights}",
     ("diffusion_pytorch_model.safetensors not found",)),
    ("model-missing", GEN + " --out {out}/o.png --model {corpus}/no_model",
     ("model folder not found",)),
    ("vae-missing", GEN + " --out {out}/o.png --vae {corpus}/no_vae", ("--vae", "not found")),
    ("vae-with-shipped", "generate --source {img_good} --pose {kp_good} --out {out}/o.png "
     "--vae {corpus}/model/vae", ("--vae", "shipped model")),
    ("pose-unknown-name", GEN + " --out {out}/o.png --pose nosuchpose",
     ("nosuchpose", "example pose")),
    ("convert-payload", "convert --official {weights_official} --out {out}",
     ("pytorch_model.bin", "refused", "plain state dict")),
    ("convert-out-exists", "convert --official {weights_official} --out {corpus}/model/model",
     ("config.json", "--overwrite")),
    # ---- outputs, checked before any work
    ("out-bmp", GEN + " --out {out}/x.bmp", ("x.bmp", "unsupported image type")),
    ("out-exists", GEN + " --out {exists_png}", ("already exists", "--overwrite")),
    ("out-grid-exists", GEN + " --out {exists_dir}/g.png --grid", ("g_grid.png", "--overwrite")),
    ("out-parent-is-file", GEN + " --out {exists_png}/o.png", ("is a file",)),
    ("batch-out-is-file", BATCH + " --out {exists_png}", ("existing file", "folder")),
    ("style-out-exists", "edit style --model {model_good} --reference {img_good} --source "
     "{img_good} --pose {kp_good} --parts upper_clothes --out {exists_png}",
     ("already exists", "--overwrite")),
    ("style-unknown-part", "edit style --model {model_good} --reference {img_good} --source "
     "{img_good} --pose {kp_good} --parts wings --out {out}/o.png", ("wings", "choose from")),
    ("interp-frames-exist", INTERP + " --out {exists_dir} --frames 2",
     ("frame_0000.png", "--overwrite")),
    ("animate-gif-type", ANIM + " --out {out} --gif {out}/a.png", ("must end in .gif",)),
    ("animate-mp4-type", ANIM + " --out {out} --mp4 {out}/a.avi", ("a.avi", ".mp4")),
    ("pose-out-type", "pose {img_good} --out {out}/kp.txt", ("kp.txt", ".json")),
    ("pose-out-exists", "pose {img_good} --out {exists_json}", ("already exists", "--overwrite")),
    ("pose-frame-huge", "pose {img_good} --out {out}/kp.json --frame 100000x100000",
     ("too large",)),
    ("synth-out-is-file", "data synth --out {exists_png}", ("existing file",)),
]

EVAL = "evaluate --generated {corpus} --data {root}"
#: The second campaign (2026-12-01, after the validation layer landed): cases of the same
#: classes that the first corpus did not have.  Their ids start with "c2-".
SECOND: list[tuple[str, str, tuple[str, ...]]] = [
    # ---- existing outputs, refused before any work (named, with the flag that allows it)
    ("c2-demo-out-exists", "demo --out {exists_demo}", ("grid.png", "--overwrite")),
    ("c2-evaluate-out-exists", EVAL + " --out {exists_json}", ("already exists", "--overwrite")),
    ("c2-evaluate-default-out-exists", "evaluate --generated {exists_demo} --data {root}",
     ("metrics.json", "--overwrite")),
    ("c2-evaluate-out-type", EVAL + " --out {out}/m.txt", ("m.txt", ".json")),
    ("c2-synth-root-exists", "data synth --out {root} --people 1 --poses 2",
     ("fasion-resize-pairs-train.csv", "--overwrite")),
    ("c2-train-run-exists", "train --data {root} --out {exists_run}",
     ("already holds a training run", "--resume latest")),
    ("c2-distill-run-exists", "distill --teacher {model_good} --data {root} --out {exists_run}",
     ("already holds a training run", "--resume latest")),
    ("c2-animate-earlier-longer", ANIM + " --out {exists_frames}",
     ("frame_0007.png", "--overwrite")),
    ("c2-interp-earlier-longer", INTERP + " --out {exists_frames} --frames 2",
     ("frame_0007.png", "--overwrite")),
    ("c2-grid-is-folder", GEN + " --out {exists_dir}/h.png --grid", ("h_grid.png", "folder")),
    ("c2-pose-skeleton-bmp", "pose {img_good} --out {out}/kp.json --skeleton {out}/s.bmp",
     ("s.bmp", "unsupported file type")),
    # ---- paths: a symbolic link out of the data root
    ("c2-pairs-symlink-escape", "generate --model {model_good} --pairs {link_escape_pairs} "
     "--data {link_escape} --out {out} --steps 1", ("symbolic link", "copy the file into")),
    ("c2-evaluate-symlink-escape", "evaluate --generated {gen} --data {link_escape} --out "
     "{out}/m.json --no-progress", ("ground-truth image", "symbolic link")),
    # ---- numbers: overflow, other spellings, impossible sizes
    ("c2-scale-overflow", GEN + " --out {out}/o.png --scale-pose 1e309",
     ("--scale-pose", "finite")),
    ("c2-seed-hex", GEN + " --out {out}/o.png --seed 0x10", ("--seed", "an integer")),
    ("c2-size-negative", GEN + " --out {out}/o.png --size -5x10", ("--size=VALUE",)),
    ("c2-size-negative-eq", GEN + " --out {out}/o.png --size=-5x10", ("HxW", "'-5x10'")),
    ("c2-size-three", GEN + " --out {out}/o.png --size 256x176x3", ("HxW", "256x176x3")),
    ("c2-size-fraction", GEN + " --out {out}/o.png --size 64.5x44", ("HxW", "64.5x44")),
    ("c2-evaluate-size-huge", EVAL + " --size 99999x99999", ("too large", "4096")),
    ("c2-animate-fps-huge", ANIM + " --out {out} --fps 1e9", ("--fps", "(0, 120]")),
    ("c2-interp-frames-fraction", INTERP + " --out {out} --frames 2.5", ("--frames", "integer")),
    ("c2-pose-frame-zero", "pose {img_good} --frame 0x0", ("positive integers",)),
    ("c2-train-set-inf", TRAIN + " --set lr=1e999", ("lr", "finite")),
    ("c2-train-set-bool-epochs", TRAIN + " --set epochs=true", ("epochs", "got True")),
    ("c2-train-set-root-int", TRAIN + " --set data_root=5", ("data_root", "a string")),
    ("c2-train-epochs-zero", TRAIN + " --epochs 0", ("--epochs", "from 1")),
    ("c2-synth-people-float", "data synth --out {out} --people 1e9", ("--people", "integer")),
    # ---- odd images
    ("c2-source-float-nan", GEN + " --out {out}/o.png --source {odd_float_nan}",
     ("float_nan.tif", "NaN or infinite")),
    ("c2-source-empty-file", GEN + " --out {out}/o.png --source {odd_empty}",
     ("empty.png", "not a readable image")),
    # ---- keypoints
    ("c2-pose-inf", GEN + " --out {out}/o.png --pose {kp2_inf}", ("finite numbers",)),
    ("c2-pose-huge-frame", GEN + " --out {out}/o.png --pose {kp2_huge_frame}",
     ("1/100", "'frame' must be")),
    ("c2-pose-19-joints", GEN + " --out {out}/o.png --pose {kp2_nineteen}", ("18", "got 19")),
    ("c2-pose-nested", GEN + " --out {out}/o.png --pose {kp2_nested}", ("pair of numbers",)),
    ("c2-pose-triple", GEN + " --out {out}/o.png --pose {kp2_triple}", ("pair of numbers",)),
    ("c2-pose-empty-file", GEN + " --out {out}/o.png --pose {kp2_empty}", ("not valid JSON",)),
    ("c2-pose-utf16", GEN + " --out {out}/o.png --pose {kp2_utf16}", ("UTF-16", "UTF-8")),
    ("c2-pose-frame-float", GEN + " --out {out}/o.png --pose {kp2_frame_float}",
     ("'frame'", "positive integers")),
    ("c2-pose-keypoints-object", GEN + " --out {out}/o.png --pose {kp2_keypoints_object}",
     ("'keypoints'", "got dict")),
    ("c2-animate-empty-sequence", ANIM.replace("{kp_sequence}", "{kp2_empty_sequence}")
     + " --out {out}", ("non-empty list",)),
    ("c2-animate-comma", ANIM.replace("{kp_sequence}", ",") + " --out {out}",
     ("not found", "choose from")),
    # ---- model folders
    ("c2-model-index-list", GEN + " --out {out}/o.png --model {m2_index_list}",
     ("model_index.json", "JSON object")),
    ("c2-model-config-nan", GEN + " --out {out}/o.png --model {m2_config_nan}",
     ("config.json", "NaN")),
    ("c2-model-weights-folder", GEN + " --out {out}/o.png --model {m2_weights_folder}",
     ("diffusion_pytorch_model.safetensors", "is a folder")),
    ("c2-model-is-a-file", GEN + " --out {out}/o.png --model {m2_as_file}",
     ("is a file", "model_index.json")),
    ("c2-model-no-vae-folder", GEN + " --out {out}/o.png --model {m2_no_vae_folder}",
     ("'vae'", "missing")),
    ("c2-convert-missing", "convert --official {corpus}/none --out {out}", ("not found",)),
    # ---- other files given as weights: named by what they are, not as refused payloads
    ("c2-swin-weights-png", "train --data {root} --out {out} --max-steps 1 --pretrained-swin "
     "{img_good}", ("Swin weights", "looks like a PNG image")),
    ("c2-inception-weights-png", "evaluate --generated {gen} --data {root} --out {out}/m.json "
     "--no-progress --inception-weights {img_good}", ("Inception weights", "a PNG image")),
    ("c2-lpips-weights-text", "evaluate --generated {gen} --data {root} --out {out}/m.json "
     "--no-progress --lpips-weights {exists_json}", ("LPIPS weights", "a text file")),
    ("c2-fid-cache-is-file", "evaluate --generated {gen} --data {root} --out {out}/m.json "
     "--no-progress --fid-stats-cache {img_good}", ("--fid-stats-cache", "give a folder")),
]
CASES += SECOND


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    """Every file the cases name, made here; the placeholders of the command lines."""
    from cfld.data.formats import PAIRS_TEST, generated_name, read_pairs
    from cfld.data.synthetic import make_sample_root

    base = tmp_path_factory.mktemp("corpus")
    model = base / "model"
    make_pixel_pipeline(output_size=(64, 44)).save_pretrained(model)
    root = make_sample_root(base / "root", people=2, poses=2, size=(64, 44), seed=1,
                            test_people=2)
    ctx = {"corpus": base, "root": root}
    groups = {"img": bad_inputs.write_images(base), "kp": bad_inputs.write_keypoint_variants(base),
              "pairs": bad_inputs.write_data_files(base, root),
              "model": bad_inputs.write_model_variants(base, model),
              "weights": bad_inputs.write_weight_payloads(base),
              "odd": bad_inputs.write_odd_images(base),
              "kp2": bad_inputs.write_more_keypoints(base),
              "m2": bad_inputs.write_more_models(base, model),
              "link": bad_inputs.symlinked_root(base, root, base / "good.png")}
    for group, paths in groups.items():
        ctx.update({f"{group}_{name}": path for name, path in paths.items()})
    (base / "exists").mkdir()
    for name in ("o.png", "g_grid.png", "frame_0000.png"):
        Image.new("RGB", (8, 8)).save(base / "exists" / name)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(base / "exists.png")
    (base / "exists.json").write_text("{}")
    (base / "exists" / "h_grid.png").mkdir()
    (base / "exists_demo").mkdir()  # an earlier `cfld demo` (and evaluate) output
    for name in ("grid.png", "metrics.json"):
        (base / "exists_demo" / name).write_text("earlier results")
    (base / "exists_frames").mkdir()  # the end of an earlier, longer animation
    Image.new("RGB", (8, 8)).save(base / "exists_frames" / "frame_0007.png")
    ctx["exists_frames"] = base / "exists_frames"
    (base / "exists_run").mkdir()  # an earlier training run (killed before its checkpoint)
    (base / "exists_run" / "config.json").write_text("{}")
    (base / "exists_run" / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n')
    gen = base / "generated"  # the test pairs' ground truth, as generated images
    gen.mkdir()
    for a, b in read_pairs(root / PAIRS_TEST):
        Image.open(root / "test_highres" / b).save(gen / f"{generated_name(a, b)}.png")
    ctx["gen"] = gen
    ctx.update(exists_dir=base / "exists", exists_png=base / "exists.png",
               exists_json=base / "exists.json", exists_demo=base / "exists_demo",
               exists_run=base / "exists_run")
    return {k: str(v) for k, v in ctx.items()}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file's (size, modification time): what a write would change."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("case, command, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_and_nothing_written(case, command, fragments, corpus,
                                                         tmp_path, capsys):
    out = tmp_path / "out"
    argv = command.format(**corpus, out=out).split()
    before = _snapshot(Path(corpus["corpus"]))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines()
             if ln.strip() and "Warning" not in ln and "it/s]" not in ln]  # progress bars
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in: {lines[0]}"
    assert not out.exists() or not any(out.iterdir()), "an output was written"
    assert _snapshot(Path(corpus["corpus"])) == before, "an input or existing output changed"


def test_the_evil_module_is_never_imported(corpus, tmp_path, monkeypatch):
    """model_index.json's class names are refused before diffusers imports the module."""
    (tmp_path / "cfld_evil_module.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').write('yes')\nclass Anything: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(GEN.format(**corpus).split() + ["--model", corpus["model_evil_index"],
                                                "--out", str(tmp_path / "o.png")]) == 2
    assert not (tmp_path / "imported").exists()


# ------------------------------------------------------------------------ the good inputs next
def _run_ok(argv: list[str], capsys) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_good_single_generation_then_overwrite(corpus, tmp_path, capsys):
    out = tmp_path / "o.png"
    _run_ok(GEN.format(**corpus).split() + ["--out", str(out), "--grid"], capsys)
    assert Image.open(out).size == (44, 64) and (tmp_path / "o_grid.png").is_file()
    _run_ok(GEN.format(**corpus).split() + ["--out", str(out), "--grid", "--overwrite"], capsys)
    _run_ok(GEN.format(**corpus).split() + ["--out", str(tmp_path / "folder")], capsys)
    assert len(list((tmp_path / "folder").glob("*.png"))) == 1


def test_good_batch_generation_and_limit(corpus, tmp_path, capsys):
    _run_ok(BATCH.format(**corpus).split() + ["--out", str(tmp_path), "--limit", "1",
                                             "--batch-size", "1"], capsys)
    assert len(list(tmp_path.glob("*___*.png"))) == 1


def test_unusual_but_valid_images_are_used_correctly(corpus, tmp_path, capsys):
    """EXIF-rotated JPEG, 16-bit grey PNG: accepted, and read as they are meant to look."""
    from cfld.data.images import open_image

    upright = open_image(corpus["img_exif"])
    assert upright.size == (48, 32)  # turned as its EXIF orientation says
    arr = np.asarray(upright).astype(int)
    assert arr[:, :24, 0].mean() < 60 and arr[:, 24:, 0].mean() > 190  # red half on the right
    grey = np.asarray(open_image(corpus["img_grey16"]))
    assert np.abs(grey.astype(int) - 128).max() <= 1  # 50 % grey, not white
    for name in ("img_exif", "img_grey16"):
        _run_ok(GEN.format(**corpus).split() + ["--source", corpus[name],
                                                "--out", str(tmp_path / f"{name}.png")], capsys)


def test_good_training_configuration_still_resolves(corpus, tmp_path, capsys):
    got = json.loads(_run_ok(TRAIN.format(**corpus, out=tmp_path).split()
                             + ["--decay-epochs", "0.5", "2", "--seed", "7"], capsys))
    assert got["decay_epochs"] == [0.5, 2] and got["seed"] == 7


def test_outputs_follow_the_umask(corpus, tmp_path, capsys):
    previous = os.umask(0o027)
    try:
        _run_ok(GEN.format(**corpus).split() + ["--out", str(tmp_path / "o.png")], capsys)
    finally:
        os.umask(previous)
    assert (tmp_path / "o.png").stat().st_mode & 0o777 == 0o640
