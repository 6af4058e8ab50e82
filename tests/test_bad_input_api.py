"""The bad-input corpus through the Python API: each case raises ValueError (or a subclass) or
FileNotFoundError naming the problem, before any work, and never a wrong result; the good inputs
next to them still work.  Writes: the umask's permissions, stale temporaries removed, a full or
read-only disk named."""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bad_inputs
from cfld.checks import check_device, parse_json
from cfld.checks.files import inside_root
from cfld.checks.models import load_torch_file
from cfld.checks.outputs import OutputError, output_file, run_dir
from cfld.checks.writes import atomic_dir, clean_stale_temps, write_bytes_atomic
from cfld.data.formats import read_pairs
from cfld.data.images import open_image
from cfld.pose import Keypoints
from cfld.training import TrainConfig
from conftest import make_pixel_pipeline

BAD = (ValueError, FileNotFoundError)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """The pipeline, a good source and pose, and the corpus files (tests/bad_inputs.py)."""
    from cfld.data.synthetic import make_sample_root

    base = tmp_path_factory.mktemp("api-corpus")
    pipe = make_pixel_pipeline(output_size=(64, 44))
    model = base / "model"
    pipe.save_pretrained(model)
    root = make_sample_root(base / "root", people=2, poses=2, size=(64, 44), seed=1,
                            test_people=2)
    c = {"pipe": pipe, "base": base, "root": root,
         "img": bad_inputs.write_images(base), "kp": bad_inputs.write_keypoint_variants(base),
         "pairs": bad_inputs.write_data_files(base, root),
         "model": bad_inputs.write_model_variants(base, model),
         "weights": bad_inputs.write_weight_payloads(base),
         "odd": bad_inputs.write_odd_images(base), "kp2": bad_inputs.write_more_keypoints(base),
         "m2": bad_inputs.write_more_models(base, model),
         "link": bad_inputs.symlinked_root(base, root, base / "good.png"), "run": base / "run"}
    c["run"].mkdir()
    (c["run"] / "config.json").write_text("{}")
    c["source"] = open_image(c["img"]["good"])
    c["pose"] = Keypoints.from_json(c["kp"]["good"])
    return c


def _gen(c, **kw):
    return c["pipe"](kw.pop("source", c["source"]), kw.pop("pose", c["pose"]),
                     num_inference_steps=kw.pop("num_inference_steps", 1), **kw)


def _kp(c, name):
    return c["kp"][name]


def _mask(c, mask):
    from cfld.pipelines.editing import style_transfer

    return style_transfer(c["pipe"], c["source"], mask, c["source"], num_inference_steps=1,
                          reference_pose=c["pose"])


def _checkpoint_with(c, tmp_path, state_file):
    from cfld.training.state import load_checkpoint

    ckpt = tmp_path / "step_00000001"
    ckpt.mkdir()
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(ckpt / "trainable.safetensors"))
    (ckpt / "state.pt").write_bytes(Path(state_file).read_bytes())
    return load_checkpoint(ckpt)


NAN, INF = float("nan"), float("inf")
#: (id, call(ctx, tmp_path), exception, regex the message must match).
CASES = [
    ("steps-negative", lambda c, t: _gen(c, num_inference_steps=-3), ValueError,
     "num_inference_steps must be an integer from 1 to 1000"),
    ("steps-zero", lambda c, t: _gen(c, num_inference_steps=0), ValueError, "from 1 to 1000"),
    ("steps-fraction", lambda c, t: _gen(c, num_inference_steps=2.5), ValueError, "got 2.5"),
    ("steps-string", lambda c, t: _gen(c, num_inference_steps="20"), ValueError, "got '20'"),
    ("steps-bool", lambda c, t: _gen(c, num_inference_steps=True), ValueError, "got True"),
    ("scale-pose-nan", lambda c, t: _gen(c, scale_pose=NAN), ValueError, "scale_pose .*finite"),
    ("scale-app-inf", lambda c, t: _gen(c, scale_app=INF), ValueError, "scale_app .*finite"),
    ("guidance-scale-nan", lambda c, t: _gen(c, guidance_scale=NAN), ValueError,
     "guidance_scale"),
    ("guidance-scales-inf", lambda c, t: _gen(c, guidance_scales={"full": INF}), ValueError,
     r"guidance_scales\['full'\]"),
    ("eta-out-of-range", lambda c, t: _gen(c, eta=2.0), ValueError, "eta must be"),
    ("output-size-huge", lambda c, t: _gen(c, output_size=(100_000, 100_000)), ValueError,
     "at most 4096"),
    ("output-size-zero", lambda c, t: _gen(c, output_size=(0, 5)), ValueError, "positive"),
    ("output-size-and-keep-square", lambda c, t: _gen(c, output_size=(7, 5), keep_square=True),
     ValueError, "contradict"),
    ("source-tensor-nan", lambda c, t: _gen(c, source=torch.full((3, 32, 32), NAN)), ValueError,
     "NaN or inf"),
    ("source-tensor-int", lambda c, t: _gen(c, source=torch.zeros(3, 32, 32, dtype=torch.int64)),
     ValueError, "floating point"),
    ("source-tensor-0-255", lambda c, t: _gen(c, source=torch.full((3, 32, 32), 200.0)),
     ValueError, r"\[-1, 1\]"),
    ("source-tensor-1x1", lambda c, t: _gen(c, source=torch.zeros(1, 3, 1, 1)), ValueError,
     "at least 16"),
    ("source-array-float-range", lambda c, t: _gen(c, source=np.full((32, 32, 3), 7.0)),
     ValueError, r"\[0, 1\]"),
    ("source-array-int16", lambda c, t: _gen(c, source=np.full((32, 32, 3), 999, np.int16)),
     ValueError, "uint8"),
    ("source-array-nan", lambda c, t: _gen(c, source=np.full((32, 32, 3), NAN)), ValueError,
     "finite"),
    ("source-array-grey", lambda c, t: _gen(c, source=np.zeros((32, 32), np.uint8)), ValueError,
     r"\(H, W, 3\)"),
    ("source-pil-1x1", lambda c, t: _gen(c, source=Image.new("RGB", (1, 1))), ValueError,
     "1×1 pixels"),
    ("source-missing", lambda c, t: _gen(c, source=str(t / "none.png")), FileNotFoundError,
     "not found"),
    ("source-folder", lambda c, t: _gen(c, source=c["img"]["folder"]), ValueError, "folder"),
    ("source-bomb", lambda c, t: _gen(c, source=c["img"]["bomb"]), ValueError,
     "decompression bomb"),
    ("source-empty-list", lambda c, t: _gen(c, source=[]), ValueError, "empty"),
    ("pose-tensor-nan", lambda c, t: _gen(c, pose=torch.full((21, *c["pipe"].pose_size), NAN)),
     ValueError, "finite values"),
    ("pose-all-missing", lambda c, t: _gen(c, pose=Keypoints.missing()), ValueError,
     "0 of 18 joints"),
    ("pose-file-all-missing", lambda c, t: _gen(c, pose=_kp(c, "all_missing")), ValueError,
     "0 of 18 joints"),
    ("pose-dict-strings", lambda c, t: _gen(c, pose={"frame": [256, 176],
                                                    "keypoints": [["1", "2"]] * 18}),
     ValueError, "pair of numbers"),
    ("pose-dict-bools", lambda c, t: _gen(c, pose={"frame": [256, 176],
                                                  "keypoints": [[True, 2]] * 18}),
     ValueError, "pair of numbers"),
    ("pose-dict-17", lambda c, t: _gen(c, pose={"frame": [256, 176], "keypoints": [[1, 2]] * 17}),
     ValueError, "18"),
    ("pose-dict-frame", lambda c, t: _gen(c, pose={"frame": [0, 5], "keypoints": [[1, 2]] * 18}),
     ValueError, "'frame'"),
    ("pose-empty-list", lambda c, t: _gen(c, pose=[]), ValueError, "empty"),
    ("latents-nan", lambda c, t: _gen(c, latents=torch.full((1, *c["pipe"].latent_shape), NAN)),
     ValueError, "finite"),
    ("keypoints-strings", lambda c, t: Keypoints(np.array([["1", "2"]] * 18)), ValueError,
     "must be numbers"),
    ("keypoints-bools", lambda c, t: Keypoints(np.ones((18, 2), bool)), ValueError,
     "must be numbers"),
    ("keypoints-nan", lambda c, t: Keypoints(np.full((18, 2), NAN)), ValueError, "finite"),
    ("keypoints-frame-bool", lambda c, t: Keypoints(np.zeros((18, 2)), (True, True)), ValueError,
     "positive integers"),
    ("keypoints-deep-file", lambda c, t: Keypoints.from_json(_kp(c, "deep")), ValueError,
     "nested too deeply"),
    ("keypoints-nan-file", lambda c, t: Keypoints.from_json(_kp(c, "nan")), ValueError, "NaN"),
    ("keypoints-binary-file", lambda c, t: Keypoints.from_json(_kp(c, "binary")), ValueError,
     "binary"),
    ("keypoints-folder", lambda c, t: Keypoints.from_json(c["base"]), ValueError, "folder"),
    ("annotation-row-deep", lambda c, t: Keypoints.from_strings("[" * 100_000, "[]"),
     ValueError, "keypoints_y is not a JSON list"),
    ("image-truncated", lambda c, t: open_image(c["img"]["truncated"]), ValueError,
     "not a readable image"),
    ("image-garbage", lambda c, t: open_image(c["img"]["garbage"]), ValueError,
     "not a readable image"),
    ("image-bomb", lambda c, t: open_image(c["img"]["bomb"]), ValueError, "megapixels"),
    ("mask-empty", lambda c, t: _mask(c, np.zeros((64, 44))), ValueError, "mask is empty"),
    ("mask-nan", lambda c, t: _mask(c, np.full((64, 44), NAN)), ValueError, "NaN"),
    ("interpolate-frames-huge", lambda c, t: __import__("cfld.pipelines.editing", fromlist=["x"])
     .interpolate(c["pipe"], c["source"], c["source"], c["pose"], n_frames=100_000),
     ValueError, "from 1 to 500"),
    ("interpolate-weights-nan", lambda c, t: __import__("cfld.pipelines.editing",
                                                        fromlist=["x"]).interpolate(
        c["pipe"], c["source"], c["source"], c["pose"], weights=[0.0, NAN]), ValueError,
     "finite"),
    ("animate-too-many", lambda c, t: __import__("cfld.animation", fromlist=["x"]).animate(
        c["pipe"], c["source"], [c["pose"]] * 501), ValueError, "limit is 500"),
    ("animate-bad-pose-before-work", lambda c, t: __import__("cfld.animation", fromlist=["x"])
     .animate(c["pipe"], c["source"], [c["pose"], Keypoints.missing()], num_inference_steps=1),
     ValueError, "pose 1 has 0 of 18"),
    ("generate-one-exists", lambda c, t: __import__("cfld.generation", fromlist=["x"])
     .generate_one(c["pipe"], c["img"]["good"], c["kp"]["good"], c["img"]["good"]),
     OutputError, "already exists"),
    ("generate-one-bmp", lambda c, t: __import__("cfld.generation", fromlist=["x"])
     .generate_one(c["pipe"], c["img"]["good"], c["kp"]["good"], t / "x.bmp"), OutputError,
     "unsupported image type"),
    ("generate-one-seed", lambda c, t: __import__("cfld.generation", fromlist=["x"])
     .generate_one(c["pipe"], c["img"]["good"], c["kp"]["good"], t / "o.png", seed=2**70),
     ValueError, "seed must be"),
    ("generate-pairs-batch", lambda c, t: __import__("cfld.generation", fromlist=["x"])
     .generate_pairs(c["pipe"], c["root"], [], t, batch_size=-2), ValueError, "batch_size"),
    ("generate-pairs-traversal", lambda c, t: __import__("cfld.generation", fromlist=["x"])
     .generate_pairs(c["pipe"], c["root"], [("../../x.jpg", "y.jpg")], t), ValueError,
     "inside the data root"),
    ("pipeline-evil-index", lambda c, t: type(c["pipe"]).from_pretrained(
        c["model"]["evil_index"]), ValueError, "refused before importing"),
    ("pipeline-empty-folder", lambda c, t: type(c["pipe"]).from_pretrained(c["model"]["empty"]),
     FileNotFoundError, "model_index.json"),
    ("pipeline-truncated", lambda c, t: type(c["pipe"]).from_pretrained(
        c["model"]["truncated_weights"]), ValueError, "truncated"),
    ("pipeline-config-typo", lambda c, t: type(c["pipe"]).from_pretrained(
        c["model"]["mistyped_config"]), ValueError, "unet_confg"),
    ("pipeline-config-type", lambda c, t: type(c["pipe"]).from_pretrained(
        c["model"]["wrong_type_config"]), ValueError, "object of options"),
    ("torch-payload", lambda c, t: load_torch_file(c["weights"]["payload"]), ValueError,
     "refused"),
    ("torch-broken", lambda c, t: load_torch_file(c["weights"]["broken"]), ValueError,
     "not a readable PyTorch"),
    ("lpips-payload", lambda c, t: __import__("cfld.metrics.lpips", fromlist=["x"]).LPIPS(
        weights=c["weights"]["payload"]), ValueError, "LPIPS weights .* refused"),
    ("inception-payload", lambda c, t: __import__("cfld.metrics.fid", fromlist=["x"])
     .CFLDInceptionFeatures(weights=c["weights"]["payload"]), ValueError,
     "Inception weights .* refused"),
    ("swin-payload", lambda c, t: __import__("cfld.models.source_encoder", fromlist=["x"])
     .load_swin_pretrained(c["pipe"].model.source_encoder, c["weights"]["payload"]), ValueError,
     "Swin weights .* refused"),
    ("checkpoint-payload", lambda c, t: _checkpoint_with(c, t, c["weights"]["payload"]),
     ValueError, "state.pt .* refused"),
    ("config-string-int", lambda c, t: TrainConfig(data_root="r", batch_size="8").validate(),
     ValueError, "batch_size must be an integer"),
    ("config-nan-lr", lambda c, t: TrainConfig(data_root="r", lr=NAN).validate(), ValueError,
     "lr must be"),
    ("config-decay-negative", lambda c, t: TrainConfig(data_root="r", decay_epochs=(-3,))
     .validate(), ValueError, "decay_epochs"),
    ("config-bool-string", lambda c, t: TrainConfig(data_root="r", export="yes").validate(),
     ValueError, "true or false"),
    ("config-seed-huge", lambda c, t: TrainConfig(data_root="r", seed=2**70).validate(),
     ValueError, "seed must be"),
    ("config-overrides-type", lambda c, t: TrainConfig(data_root="r", model_overrides="x")
     .validate(), ValueError, "model_overrides must be an object"),
    ("pairs-binary", lambda c, t: read_pairs(c["pairs"]["binary"]), ValueError,
     "pairs_binary.csv is a binary file"),
    ("pairs-traversal", lambda c, t: read_pairs(c["pairs"]["traversal"]), ValueError,
     "line 2.*inside the data root"),
    ("pairs-latin1", lambda c, t: read_pairs(c["pairs"]["latin1"]), ValueError, "UTF-8"),
    ("device-bogus", lambda c, t: check_device("bogus"), ValueError, "not a device name"),
    ("device-cuda", lambda c, t: check_device("cuda:9"), ValueError, "cuda"),
    ("load-pipeline-device", lambda c, t: __import__("cfld.shipped", fromlist=["x"])
     .load_pipeline(str(c["model"]["good"]), device="bogus"), ValueError, "not a device"),
    ("json-deep", lambda c, t: parse_json("[" * 100_000 + "]" * 100_000), ValueError,
     "nested too deeply"),
    ("json-nan", lambda c, t: parse_json('{"x": NaN}'), ValueError, "NaN"),
]


def _api(module: str, name: str):
    return getattr(__import__(module, fromlist=["x"]), name)


#: The second campaign: cases of the same classes the first corpus did not have ("c2-").
SECOND = [
    ("c2-generator-str", lambda c, t: _gen(c, generator="seed"), ValueError,
     "generator must be a torch.Generator"),
    ("c2-generator-empty-list", lambda c, t: _gen(c, generator=[]), ValueError, "empty list"),
    ("c2-scale-bool", lambda c, t: _gen(c, scale_pose=True), ValueError, "got True"),
    ("c2-output-size-float", lambda c, t: _gen(c, output_size=(64.5, 44)), ValueError,
     "positive integers"),
    ("c2-source-pil-float-nan", lambda c, t: _gen(c, source=Image.fromarray(
        np.full((32, 32), NAN, np.float32), "F")), ValueError, "NaN or infinite"),
    ("c2-source-file-float-nan", lambda c, t: _gen(c, source=c["odd"]["float_nan"]), ValueError,
     "float_nan.tif.*NaN or infinite"),
    ("c2-keypoints-18x3", lambda c, t: Keypoints(np.zeros((18, 3))), ValueError,
     r"shape \(18, 2\)"),
    ("c2-pose-collapsed", lambda c, t: _gen(c, pose=Keypoints(np.full((18, 2), 5.0), (256, 176))),
     ValueError, "1/100"),
    ("c2-pose-huge-frame", lambda c, t: _gen(c, pose=Keypoints(c["pose"].coords, (10**9, 10**9))),
     ValueError, "'frame' must be"),
    ("c2-pose-file-inf", lambda c, t: _gen(c, pose=str(c["kp2"]["inf"])), ValueError, "finite"),
    ("c2-keypoints-object-file", lambda c, t: Keypoints.from_json(c["kp2"]["keypoints_object"]),
     ValueError, "got dict"),
    ("c2-keypoints-utf16-file", lambda c, t: Keypoints.from_json(c["kp2"]["utf16"]), ValueError,
     "UTF-16"),
    ("c2-animate-empty", lambda c, t: _api("cfld.animation", "animate")(c["pipe"], c["source"],
                                                                         []),
     ValueError, "empty"),
    ("c2-interpolate-frames-fraction", lambda c, t: _api("cfld.pipelines.editing", "interpolate")(
        c["pipe"], c["source"], c["source"], c["pose"], n_frames=2.5), ValueError, "integer"),
    ("c2-dataset-symlink", lambda c, t: _api("cfld.data.datasets", "DeepFashionTest")(
        c["link"]["escape"], gen_size=(64, 44), cond_size=(32, 32), pose_size=(64, 44)),
     ValueError, "symbolic link"),
    ("c2-generate-pairs-symlink", lambda c, t: _api("cfld.generation", "generate_pairs")(
        c["pipe"], c["link"]["escape"], read_pairs(c["link"]["escape_pairs"]), t), ValueError,
     "copy the file into the root"),
    ("c2-fid-reference-symlink", lambda c, t: _api("cfld.metrics.reference", "reference_stats")(
        c["link"]["escape"], (64, 44), {}, t / "cache", 2, False, print), ValueError,
     "training image .*symbolic link"),
    ("c2-inside-root-dotdot", lambda c, t: inside_root(c["root"], "a/../../x.jpg"), ValueError,
     "outside the data root"),
    ("c2-inside-root-drive", lambda c, t: inside_root(c["root"], "C:/x.jpg"), ValueError,
     "plain file names"),
    ("c2-output-file-is-folder", lambda c, t: output_file(c["base"]), OutputError,
     "existing folder"),
    ("c2-run-dir-exists", lambda c, t: run_dir(c["run"], resume=False), OutputError,
     "--resume latest"),
    ("c2-output-dir-clash", lambda c, t: _api("cfld.checks.outputs", "output_dir")(
        c["run"], names=["config.json"]), OutputError, "--overwrite"),
    ("c2-config-lr-inf", lambda c, t: TrainConfig(data_root="r", lr=INF).validate(), ValueError,
     "lr must be"),
    ("c2-config-epochs-bool", lambda c, t: TrainConfig(data_root="r", epochs=True).validate(),
     ValueError, "epochs must be"),
    ("c2-pipeline-index-list", lambda c, t: type(c["pipe"]).from_pretrained(
        c["m2"]["index_list"]), ValueError, "JSON object"),
    ("c2-pipeline-config-nan", lambda c, t: type(c["pipe"]).from_pretrained(
        c["m2"]["config_nan"]), ValueError, "NaN"),
    ("c2-torch-load-png", lambda c, t: load_torch_file(c["img"]["good"]), ValueError,
     "not a PyTorch weights file .*PNG image"),
    ("c2-torch-load-empty", lambda c, t: load_torch_file(c["odd"]["empty"]), ValueError,
     "an empty file"),
    ("c2-torch-load-safetensors", lambda c, t: load_torch_file(c["m2"]["as_file"]), ValueError,
     "give it a .safetensors name"),
    ("c2-load-pipeline-file", lambda c, t: _api("cfld.shipped", "load_pipeline")(
        str(c["m2"]["as_file"])), ValueError, "is a file"),
]
CASES += SECOND


@pytest.mark.parametrize("case, call, exc, match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_named_error(case, call, exc, match, ctx, tmp_path):
    with pytest.raises(exc, match=match) as info:
        call(ctx, tmp_path)
    assert isinstance(info.value, BAD)
    assert not any(p.suffix == ".png" for p in tmp_path.rglob("*")), "an output was written"


# ------------------------------------------------------------------------ the good inputs next
def test_good_inputs_still_work(ctx):
    out = _gen(ctx, output_size=(32, 22))
    assert out.images[0].size == (22, 32)
    assert _gen(ctx, source=torch.zeros(3, 32, 32), num_inference_steps=1.0).images
    assert _gen(ctx, source=np.full((32, 32, 3), 0.5)).images  # float arrays in [0, 1]
    assert _gen(ctx, pose=str(ctx["kp"]["good"]), keep_square=True).images[0].size == (64, 64)
    assert _gen(ctx, source=str(ctx["img"]["exif"]), pose=ctx["kp"]["one_joint"].parent
                / "kp_good.json").images


def test_uploaded_16bit_and_alpha_images_are_converted_by_value(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent: white, not black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.asarray(open_image(tmp_path / "a.png")).min() == 255
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "w.png")
    Image.fromarray(np.full((8, 8), 257 * 64, np.uint16)).save(tmp_path / "g.png")
    assert np.asarray(open_image(tmp_path / "w.png")).min() == 255
    assert np.asarray(open_image(tmp_path / "g.png")).max() == 64


# ------------------------------------------------------------------------ writes
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_umask_permissions(tmp_path, umask, mode):
    from cfld.visualize import save_image_atomic

    previous = os.umask(umask)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"x")
        save_image_atomic(Image.new("RGB", (4, 4)), tmp_path / "b.png")
        atomic_dir(tmp_path / "d", lambda d: (d / "f").write_text("x"))
    finally:
        os.umask(previous)
    for p in (tmp_path / "a.bin", tmp_path / "b.png", tmp_path / "d" / "f"):
        assert p.stat().st_mode & 0o777 == mode
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask


def test_stale_temporaries_are_removed_on_the_next_write(tmp_path):
    from cfld.checks.writes import temp_path

    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale = temp_path(tmp_path / "x.png")
    stale = stale.with_name(stale.name.replace(f"-{os.getpid()}-", f"-{dead}-"))
    stale.write_bytes(b"half")
    live = temp_path(tmp_path / "y.png")
    live.write_bytes(b"being written by this process")
    legacy = tmp_path / ".step_00000004.tmp.ab12cd34"
    legacy.mkdir()
    os.utime(legacy, (0, 0))  # an abandoned folder of an earlier version, long ago
    write_bytes_atomic(tmp_path / "z.bin", b"z")
    clean_stale_temps(tmp_path, force=True)
    assert not stale.exists() and not legacy.exists() and live.exists()


def test_a_kill_between_the_renames_of_a_folder_is_repaired(tmp_path):
    backup = tmp_path / ".model.cfld-old"
    backup.mkdir()
    (backup / "w").write_text("old")  # the previous folder, moved aside; the new one never came
    atomic_dir(tmp_path / "model", lambda d: (d / "w").write_text("new"))
    assert (tmp_path / "model" / "w").read_text() == "new" and not backup.exists()


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"),
                                         (errno.EROFS, "Read-only file system"),
                                         (errno.EACCES, "Permission denied")])
def test_a_failed_write_is_named(tmp_path, monkeypatch, code, words):
    import cfld.checks.writes as writes

    def refuse(*_a, **_k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(writes.os, "fsync", refuse)
    with pytest.raises(OutputError, match=f"{words}.*" if code != errno.ENOSPC else words):
        write_bytes_atomic(tmp_path / "a.bin", b"x")
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


def test_torch_save_write_failures_are_named(tmp_path):
    def fail(_tmp):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter "
                           "failed writing file data/0: file write failed")

    with pytest.raises(OutputError, match="disk full"):
        atomic_dir(tmp_path / "ckpt", fail)
    assert list(tmp_path.iterdir()) == []


def test_read_only_output_folder_is_refused_before_work(tmp_path, monkeypatch):
    import cfld.checks.outputs as outputs

    monkeypatch.setattr(outputs.os, "access", lambda *_a: False)
    with pytest.raises(OutputError, match="read-only"):
        output_file(tmp_path / "a" / "b.png")


def test_nan_never_reaches_a_number_rule():
    from cfld.checks.numbers import GUIDANCE_SCALE, STEPS

    for bad in (NAN, INF, -INF, "1", None, True, [1]):
        with pytest.raises(ValueError):
            GUIDANCE_SCALE.check(bad)
    assert STEPS.check(20.0) == 20 and math.isclose(GUIDANCE_SCALE.check(np.float32(1.5)), 1.5)
