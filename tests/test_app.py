"""The web app without a browser: upload checks, the Blocks, `cfld app` options."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from cfld.app import MAX_UPLOAD_MB, _Inputs, build_app  # noqa: E402
from cfld.cli import build_parser  # noqa: E402
from conftest import make_pixel_pipeline  # noqa: E402


def test_uploads_are_checked(tmp_path):
    inputs = _Inputs(max_mb=0.01)  # 10 KB
    Image.new("RGB", (20, 30), "red").save(tmp_path / "ok.png")
    assert inputs.image(str(tmp_path / "ok.png"), "source photo").size == (20, 30)
    big = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")  # ~120 KB of noise
    with pytest.raises(gr.Error, match="limit is 0.01 MB"):
        inputs.image(str(tmp_path / "big.png"), "source photo")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(gr.Error, match="must be an image"):
        inputs.image(str(tmp_path / "notes.txt"), "source photo")
    (tmp_path / "fake.png").write_bytes(b"not a png at all")
    with pytest.raises(gr.Error, match="not a readable image"):
        inputs.image(str(tmp_path / "fake.png"), "source photo")
    with pytest.raises(gr.Error, match="please upload the source photo"):
        inputs.image(None, "source photo")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(gr.Error, match="not valid JSON"):
        inputs.json(str(tmp_path / "bad.json"), "keypoint JSON")
    with pytest.raises(gr.Error, match="must be a .json"):
        inputs.json(str(tmp_path / "notes.txt"), "keypoint JSON")
    assert MAX_UPLOAD_MB == 10


def test_mask_from_editor_layers(tmp_path):
    inputs = _Inputs(MAX_UPLOAD_MB)
    layer = np.zeros((30, 20, 4), np.uint8)
    layer[5:10, 2:6] = (255, 255, 255, 255)
    editor = {"background": Image.new("RGB", (20, 30)), "layers": [Image.fromarray(layer)],
              "composite": None}
    mask = inputs.mask(editor, None)
    assert np.array_equal(np.asarray(mask) > 0, layer[..., 3] > 0)
    assert inputs.mask({"background": None, "layers": []}, None) is None  # nothing painted


def test_build_app_and_cli_defaults():
    pipe = make_pixel_pipeline(output_size=None)
    demo = build_app(pipe, default_steps=3)
    assert isinstance(demo, gr.Blocks)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"source", "gallery-pose", "pose-preview", "pose-table", "joint-to-move", "generate",
            "result", "reference-editor", "interp-run", "anim-run", "anim-poses"} <= ids
    args = build_parser().parse_args(["app"])
    assert (args.host, args.port, args.model, args.max_upload_mb) == ("127.0.0.1", 7860, None,
                                                                      10.0)
    assert not args.share and build_parser().parse_args(["app", "--share"]).share
    pipe._cfld_shipped = True  # the header says what the shipped model is and what real use needs
    header = next(b for b in build_app(pipe).blocks.values()
                  if getattr(b, "elem_id", None) == "header")
    assert "small model of procedural people" in header.value
    assert "cfld convert --official" in header.value


def test_handlers_of_every_tab(tmp_path):
    """Each tab's handler end to end in-process (1 DDIM step, random small model)."""
    from cfld.animation import gallery_poses

    pipe = make_pixel_pipeline()
    demo = build_app(pipe, default_steps=1, guidance_type="none")
    fns = {f.name: f.fn for f in demo.fns.values()}
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (256, 176, 3), dtype=np.uint8)).save(
            tmp_path / f"{name}.png")
    a, b, kp = str(tmp_path / "a.png"), str(tmp_path / "b.png"), str(tmp_path / "kp.json")
    gallery_poses()["walking"].to_json(kp)
    settings = [1, 2.0, 2.0, 0, "ddim"]

    table, preview = fns["editor_from_example"]("arms_raised")
    image = fns["generate_from_editor"](a, table, *settings)
    assert image.size == (44, 64) and preview.size[1] >= 256
    with pytest.raises(gr.Error, match="must be an image"):
        fns["generate_from_editor"](kp, table, *settings)

    layer = np.zeros((256, 176, 4), np.uint8)
    layer[80:150, 40:130] = 255
    editor = {"background": Image.open(a), "layers": [Image.fromarray(layer)],
              "composite": None}
    styled, mask = fns["run_style"](editor, None, [], kp, b, *settings)
    assert styled.size == (44, 64) and np.asarray(mask).any()
    styled, mask = fns["run_style"]({"background": Image.open(a), "layers": []}, None,
                                    ["head"], kp, b, *settings)  # body parts → drawn mask
    assert mask.size == (176, 256) and np.asarray(mask).any()
    with pytest.raises(gr.Error, match="paint the region"):
        fns["run_style"]({"background": Image.open(a), "layers": []}, None, [], kp, b,
                         *settings)

    strip, frames = fns["run_interpolate"](a, b, "walking", None, 2, *settings)
    assert len(frames) == 2 and strip.size[1] == 64
    gif, frames = fns["run_animate_through"](a, None, ["standing_front", "walking"], table, 2,
                                             5, *settings)
    with Image.open(gif) as g:
        assert g.n_frames == 2 and len(frames) == 2
