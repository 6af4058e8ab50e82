"""The web app without a browser: upload checks, the Blocks, `cfld app` options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
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


def _same(a: Image.Image, b: Image.Image) -> None:
    assert a.size == b.size
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_handlers_of_every_tab_equal_the_library_calls_with_the_panels_settings(tmp_path):
    """Each tab's handler end to end in-process (1 DDIM step, random small model): its images
    are the library call made by hand with the panel's steps, seed and scheduler on the inputs
    the tab names (the editor's pose, the painted or the drawn part mask, both sources, the
    chosen poses in order); the masks shown are the ones used."""
    from cfld.animation import animate, gallery_poses, interpolate_sequence
    from cfld.app import pose_editor
    from cfld.pipelines import official_scheduler
    from cfld.pipelines.editing import image_strip, interpolate, style_transfer
    from cfld.pipelines.schedulers import make_scheduler
    from cfld.pose.masks import part_mask

    pipe = make_pixel_pipeline(perturb=True)
    demo = build_app(pipe, default_steps=1, guidance_type="none")
    fns = {f.name: f.fn for f in demo.fns.values()}
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (256, 176, 3), dtype=np.uint8)).save(
            tmp_path / f"{name}.png")
    a, b, kp = str(tmp_path / "a.png"), str(tmp_path / "b.png"), str(tmp_path / "kp.json")
    gallery = gallery_poses()
    gallery["walking"].to_json(kp)
    settings = [1, 2.0, 2.0, 3, "ddim"]
    src_a, src_b = (Image.open(p).convert("RGB") for p in (a, b))

    def by_hand() -> dict:
        pipe.scheduler = make_scheduler("ddim", official_scheduler())
        return dict(num_inference_steps=1, guidance_type="none", scale_pose=2.0, scale_app=2.0,
                    generator=torch.Generator().manual_seed(3))

    table, preview = fns["editor_from_example"]("arms_raised")
    _same(preview, pose_editor.render_preview(table))
    image = fns["generate_from_editor"](a, table, *settings)
    edited = pose_editor.table_to_keypoints(table)
    np.testing.assert_allclose(edited.coords, gallery["arms_raised"].coords, atol=1e-3)
    _same(image, pipe(src_a, edited, **by_hand()).images[0])
    with pytest.raises(gr.Error, match="must be an image"):
        fns["generate_from_editor"](kp, table, *settings)

    layer = np.zeros((256, 176, 4), np.uint8)
    layer[80:150, 40:130] = 255
    editor = {"background": Image.open(a), "layers": [Image.fromarray(layer)],
              "composite": None}
    styled, mask = fns["run_style"](editor, None, [], kp, b, *settings)
    np.testing.assert_array_equal(np.asarray(mask) > 0, layer[..., 3] > 0)
    painted = (layer[..., 3] > 0).astype(np.uint8) * 255
    _same(styled, style_transfer(pipe, src_a, painted, src_b, reference_pose=gallery["walking"],
                                 **by_hand())[0])
    styled, mask = fns["run_style"]({"background": Image.open(a), "layers": []}, None,
                                    ["head"], kp, b, *settings)  # body parts → drawn mask
    drawn = Image.fromarray(part_mask(gallery["walking"], ["head"])).resize((176, 256),
                                                                           Image.NEAREST)
    _same(mask, drawn)
    _same(styled, style_transfer(pipe, src_a, "head", src_b, reference_pose=gallery["walking"],
                                 **by_hand())[0])
    with pytest.raises(gr.Error, match="paint the region"):
        fns["run_style"]({"background": Image.open(a), "layers": []}, None, [], kp, b,
                         *settings)

    strip, frames = fns["run_interpolate"](a, b, "walking", None, 2, *settings)
    expected = interpolate(pipe, src_a, src_b, gallery["walking"], n_frames=2, **by_hand())
    for got, want in zip(frames, expected, strict=True):
        _same(got, want)
    _same(strip, image_strip(expected))
    gif, frames = fns["run_animate_through"](a, None, ["standing_front", "walking"], table, 2,
                                             5, *settings)
    poses = interpolate_sequence([gallery["standing_front"], gallery["walking"]], 2)
    expected = animate(pipe, src_a, poses, **by_hand())
    for got, want in zip(frames, expected, strict=True):
        _same(got, want)
    with Image.open(gif) as g:
        assert g.n_frames == 2
