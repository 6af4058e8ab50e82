"""Pose sequences: reading them, frames with the same noise, GIF output, `cfld animate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cfld.animation import (
    POSE_GALLERY_DIR,
    animate,
    gallery_poses,
    interpolate_poses,
    load_pose_sequence,
    parse_pose_sequence,
    save_frames,
    save_gif,
    save_pose_sequence,
    save_video,
)
from cfld.cli import main
from cfld.pose import Keypoints
from conftest import make_pixel_pipeline

FAST = dict(num_inference_steps=1, guidance_type="none")  # one UNet call per frame


@pytest.fixture(scope="module")
def pipe():
    return make_pixel_pipeline(perturb=True)


def photo(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (256, 176, 3), dtype=np.uint8))


def test_gallery_poses():
    poses = gallery_poses()
    assert len(poses) >= 6 and len(list(POSE_GALLERY_DIR.glob("*.json"))) == len(poses)
    assert {"standing_front", "walking", "arms_raised", "side", "back"} <= set(poses)
    for kp in poses.values():
        assert kp.frame == (256, 176) and kp.present.sum() >= 13
    assert not poses["back"].present[0]  # no face seen from the back


def test_pose_sequence_formats(tmp_path):
    poses = list(gallery_poses().values())[:3]
    folder = tmp_path / "seq"
    for name, kp in zip(["b.json", "c.json", "a.json"], poses):  # sorted by name on reading
        kp.to_json(folder / name)
    assert load_pose_sequence(folder) == [poses[2], poses[0], poses[1]]
    save_pose_sequence(poses, tmp_path / "seq.json")
    assert load_pose_sequence(tmp_path / "seq.json") == poses
    (tmp_path / "list.json").write_text(json.dumps([kp.to_dict() for kp in poses]))
    assert load_pose_sequence(tmp_path / "list.json") == poses
    with pytest.raises(ValueError, match="frame 1"):
        parse_pose_sequence({"frames": [poses[0].to_dict(), {"frame": [256, 176]}]})
    with pytest.raises(ValueError, match="non-empty list"):
        parse_pose_sequence({"frames": []})
    with pytest.raises(FileNotFoundError):
        load_pose_sequence(tmp_path / "missing.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no keypoint"):
        load_pose_sequence(tmp_path / "empty")


def test_interpolate_poses():
    a, b = gallery_poses()["standing_front"], gallery_poses()["back"]
    seq = interpolate_poses(a, b, 3)
    assert seq[0] == Keypoints(np.where(b.present[:, None], a.coords, -1), a.frame)
    np.testing.assert_allclose(seq[1].coords[1], (a.coords[1] + b.coords[1]) / 2)
    assert not seq[1].present[0]  # missing at one end → missing in between


def test_animate_frames_same_noise_and_gif(pipe, tmp_path):
    poses = list(gallery_poses().values())[:2]
    kw = dict(output_type="pt", **FAST)
    frames = animate(pipe, photo(), poses, generator=torch.Generator().manual_seed(7), **kw)
    again = animate(pipe, photo(), poses, generator=torch.Generator().manual_seed(7), **kw)
    assert len(frames) == 2
    assert all(torch.equal(x, y) for x, y in zip(frames, again))  # same seed → same frames
    # Every frame starts from the same noise: frame k is a plain generation with the seed.
    plain = pipe(photo(), poses[1], generator=torch.Generator().manual_seed(7), **kw).images[0]
    torch.testing.assert_close(frames[1], plain, atol=1e-6, rtol=0)
    assert (frames[0] - frames[1]).abs().mean() > 1e-6  # the pose changes the frame

    images = [Image.fromarray((f.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
              for f in frames]
    paths = save_frames(images, tmp_path / "frames")
    assert [p.name for p in paths] == ["frame_0000.png", "frame_0001.png"]
    gif = save_gif(images, tmp_path / "anim.gif", fps=5)
    with Image.open(gif) as g:
        assert g.n_frames == 2 and g.size == (44, 64) and g.is_animated
    with pytest.raises(ValueError):
        save_gif(images, tmp_path / "x.gif", fps=0)
    # MP4 through OpenCV: read back, same frame count and size, colours kept (lossy codec).
    import cv2

    mp4 = save_video(images, tmp_path / "anim.mp4", fps=5)
    cap = cv2.VideoCapture(str(mp4))
    read = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        read.append(frame[:, :, ::-1].astype(np.float32))  # BGR → RGB
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert fps == pytest.approx(5, abs=0.01)
    assert len(read) == 2 and read[0].shape == (64, 44, 3)
    for got, want in zip(read, images):  # noise-like frames: compare mean colours (lossy codec)
        want = np.asarray(want, dtype=np.float32)
        assert np.abs(got.mean((0, 1)) - want.mean((0, 1))).max() < 6
    assert not list(tmp_path.glob(".*.tmp.mp4"))  # atomic: no temporary left behind
    with pytest.raises(ValueError, match="fps"):
        save_video(images, tmp_path / "y.mp4", fps=0)
    with pytest.raises(ValueError, match="differ in size"):
        save_video([images[0], images[0].resize((40, 64))], tmp_path / "z.mp4")
    with pytest.raises(ValueError, match=".mp4"):
        save_video(images, tmp_path / "z.avi")


def test_cli_animate_writes_the_library_frames(pipe, tmp_path, capsys):
    """`cfld animate`: the frame PNGs are animate() on the saved model with the flags' poses,
    steps, guidance and seed; the GIF has one frame per pose at 1/fps seconds each."""
    pipe.save_pretrained(tmp_path / "model")
    poses = list(gallery_poses().values())[:2]
    save_pose_sequence(poses, tmp_path / "seq.json")
    photo().save(tmp_path / "src.png")
    args = ["animate", "--source", str(tmp_path / "src.png"), "--poses",
            str(tmp_path / "seq.json"), "--out", str(tmp_path / "out"), "--fps", "4",
            "--model", str(tmp_path / "model"), "--steps", "1", "--guidance-type", "none",
            "--seed", "3"]
    assert main([*args, "--mp4", str(tmp_path / "out" / "anim.mp4")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "anim.mp4", "animation.gif", "frame_0000.png", "frame_0001.png"]
    # The CLI runs at the pipeline's default precision ("auto"); the fixture is fp32.
    want = animate(pipe, photo(), poses, generator=torch.Generator().manual_seed(3),
                   autocast="auto", **FAST)
    for i, frame in enumerate(want):
        with Image.open(tmp_path / "out" / f"frame_{i:04d}.png") as img:
            np.testing.assert_array_equal(np.asarray(img.convert("RGB")), np.asarray(frame))
    assert not np.array_equal(np.asarray(want[0]), np.asarray(want[1]))  # the poses differ
    with Image.open(tmp_path / "out" / "animation.gif") as g:
        assert g.n_frames == 2 and g.info["duration"] == 250
    assert main([*args[:4], str(tmp_path / "missing"), *args[5:]]) == 2
    assert "not found" in capsys.readouterr().err
