"""Appearance editing (paper §4.6, Fig. 6): style transfer by mask, interpolation, their CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cfld.animation import gallery_poses
from cfld.cli import main
from cfld.pipelines import official_scheduler
from cfld.pipelines.editing import (
    BODY_PARTS,
    image_strip,
    interpolate,
    interpolation_weights,
    latent_mask,
    load_mask,
    part_mask,
    reference_latents,
    style_transfer,
)
from cfld.pipelines.schedulers import make_scheduler
from conftest import make_pixel_pipeline

STEPS = 2  # style transfer: step 0 blends with q(z_ref, t), the last step with z_ref
FAST = dict(num_inference_steps=1, guidance_type="none")  # one UNet call per image


@pytest.fixture(scope="module")
def pipe():
    """The shipped model's architecture with random weights, in pixel space (exact AE)."""
    return make_pixel_pipeline(perturb=True)


@pytest.fixture(scope="module")
def pose():
    return gallery_poses()["standing_front"]


def photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (256, 176, 3), dtype=np.uint8))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- masks
def test_part_masks_cover_the_right_places(pose):
    masks = {name: part_mask(pose, name) > 0 for name in BODY_PARTS}
    for name, m in masks.items():
        assert m.shape == pose.frame and m.any(), name
    y = {name: np.nonzero(m)[0].mean() for name, m in masks.items()}
    assert y["head"] < y["upper_clothes"] < y["lower_clothes"] < y["shoes"]
    union = np.logical_or.reduce([m for n, m in masks.items() if n != "body"])
    assert np.array_equal(masks["body"], union)
    assert np.array_equal(part_mask(pose, "head,shoes") > 0, masks["head"] | masks["shoes"])
    with pytest.raises(ValueError, match="unknown body part.*upper_clothes"):
        part_mask(pose, ["hat"])


def test_load_mask_formats(tmp_path):
    white = np.zeros((20, 10), np.uint8)
    white[5:8, 2:4] = 255
    Image.fromarray(white).save(tmp_path / "m.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png"), white > 0)
    # A paint layer on transparency (the app's editor): what was painted, any colour.
    layer = np.zeros((20, 10, 4), np.uint8)
    layer[1:3, 1:3] = (200, 0, 0, 255)
    np.testing.assert_array_equal(load_mask(Image.fromarray(layer, "RGBA")),
                                  layer[..., 3] > 0)
    with pytest.raises(FileNotFoundError):
        load_mask(tmp_path / "missing.png")


def test_latent_mask_max_pools():
    m = np.zeros((64, 64), np.uint8)
    m[5, 9] = 255  # one pixel → the one latent cell that holds it (4× reduction)
    lm = latent_mask(m, (64, 64), (16, 16))
    assert lm.shape == (1, 1, 16, 16) and lm.sum() == 1 and lm[0, 0, 1, 2] == 1


# --------------------------------------------------------------------------- style transfer
@pytest.mark.parametrize("scheduler", ["ddpm", "euler"])
def test_style_transfer_keeps_reference_outside_mask(pipe, pose, scheduler):
    pipe.scheduler = make_scheduler(scheduler, official_scheduler())
    try:
        ref, new = photo(1), photo(2)
        # ddpm with Eq. (7) guidance; euler with no guidance (cheaper, scheduler is the point)
        guidance = "uc_down_full" if scheduler == "ddpm" else "none"
        out = style_transfer(pipe, ref, "upper_clothes", new, num_inference_steps=STEPS,
                             generator=gen(), reference_pose=pose, output_type="pt",
                             keep_square=True, guidance_type=guidance)
    finally:
        pipe.scheduler = official_scheduler()
    recon = pipe.decode_latents(reference_latents(pipe, ref))  # the reference's reconstruction
    m = latent_mask(part_mask(pose, "upper_clothes"), pipe.image_size, pipe.latent_shape[1:])
    inside = F.interpolate(m, size=pipe.image_size, mode="nearest").bool().expand_as(out)
    assert 0.05 < inside.float().mean() < 0.9
    # Outside: exactly the reference (the pixel autoencoder is exact); inside: restyled.
    torch.testing.assert_close(out[~inside], recon[~inside], atol=1e-6, rtol=0)
    assert (out[inside] - recon[inside]).abs().mean() > 0.05


def test_style_transfer_png_mask_is_the_hand_pooled_latent_mask_and_pil_is_truncated(
        pipe, pose, tmp_path):
    """A PNG mask (white = restyle) in the reference's 256×176 frame is squashed to the 64²
    generation by nearest neighbour (row i ← 4i, column j ← ⌊2.75 j⌋) and max-pooled onto the
    16² latent (a cell touching the mask is restyled): passing that latent mask, written out
    here, gives the same image.  The PIL output is the tensor output truncated to 8 bits
    (fidelity §7.5), at the evaluation size 64×44."""
    mask = np.zeros((256, 176), np.uint8)
    mask[100:180, 40:140] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    images = style_transfer(pipe, photo(1), tmp_path / "mask.png", photo(2), generator=gen(),
                            reference_pose=pose, **FAST)
    assert tuple(pipe.image_size) == (64, 64) and tuple(pipe.latent_shape[1:]) == (16, 16)
    squashed = mask[np.arange(64) * 256 // 64][:, np.arange(64) * 176 // 64] > 0
    pooled = squashed.reshape(16, 4, 16, 4).any(axis=(1, 3))
    assert pooled.sum() > squashed.reshape(16, 4, 16, 4).all(axis=(1, 3)).sum()  # partial cells
    by_hand = torch.from_numpy(pooled.astype(np.float32))[None, None]
    pt = style_transfer(pipe, photo(1), by_hand, photo(2), generator=gen(), reference_pose=pose,
                        output_type="pt", **FAST)
    assert len(images) == 1 and images[0].size == (44, 64) and tuple(pt.shape) == (1, 3, 64, 44)
    truncated = np.floor(pt[0].permute(1, 2, 0).numpy() * np.float32(255))  # float32 as saved
    np.testing.assert_array_equal(np.asarray(images[0]), truncated.clip(0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- interpolation
def test_interpolation_endpoints_equal_plain_generation(pipe, pose):
    a, b = photo(1), photo(2)
    frames = interpolate(pipe, a, b, pose, n_frames=3, generator=gen(5), output_type="pt",
                         **FAST)
    plain_a = pipe(a, pose, generator=gen(5), output_type="pt", **FAST)
    plain_b = pipe(b, pose, generator=gen(5), output_type="pt", **FAST)
    assert len(frames) == 3
    torch.testing.assert_close(frames[0], plain_a.images[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(frames[2], plain_b.images[0], atol=1e-6, rtol=0)
    # The middle frame is generated from the halfway conditions, written out: the mean of the
    # two prompts and of every appearance bias, the pose of the (shared) target.
    from cfld import CFLDConditions

    ca, _ = pipe.encode_conditions(a, pose)
    cb, _ = pipe.encode_conditions(b, pose)
    half = CFLDConditions((ca.prompt + cb.prompt) / 2, ca.pose_residuals,
                          {k: (v + cb.app_biases[k]) / 2 for k, v in ca.app_biases.items()})
    plain_half = pipe(conditions=half, generator=gen(5), output_type="pt", **FAST)
    torch.testing.assert_close(frames[1], plain_half.images[0], atol=1e-5, rtol=0)
    assert (frames[1] - frames[0]).abs().mean() > 1e-6  # and it is not an end


def test_interpolation_weights_and_strip():
    assert interpolation_weights(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    with pytest.raises(ValueError):
        interpolation_weights(0)
    strip = image_strip([Image.new("RGB", (44, 64))] * 3, pad=2)
    assert strip.size == (44 * 3 + 4, 64)


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def model_dir(pipe, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "pipe"
    pipe.save_pretrained(out)
    return out


def test_cli_edit_style_and_interpolate_write_the_library_results(model_dir, pipe, pose,
                                                                 tmp_path, capsys):
    photo(1).save(tmp_path / "ref.png")
    photo(2).save(tmp_path / "new.png")
    pose.to_json(tmp_path / "kp.json")
    common = ["--model", str(model_dir), "--steps", "1", "--seed", "1", "--guidance-type",
              "none"]
    assert main(["edit", "style", "--reference", str(tmp_path / "ref.png"), "--parts",
                 "upper_clothes,arms", "--source", str(tmp_path / "new.png"), "--pose",
                 str(tmp_path / "kp.json"), "--out", str(tmp_path / "styled.png"),
                 *common]) == 0
    # The files are the library calls with the flags' settings (the saved model = ``pipe``):
    # the parts, the reference's pose, both photos, 1 step, no guidance, seed 1.
    # The CLI runs at the pipeline's default precision ("auto"); the fixture is fp32.
    settings = dict(num_inference_steps=1, guidance_type="none", autocast="auto")
    want = style_transfer(pipe, photo(1), ["upper_clothes", "arms"], photo(2), generator=gen(1),
                          reference_pose=pose, **settings)[0]
    with Image.open(tmp_path / "styled.png") as img:
        assert img.size == (44, 64)
        np.testing.assert_array_equal(np.asarray(img.convert("RGB")), np.asarray(want))
    assert main(["edit", "interpolate", "--source-a", str(tmp_path / "ref.png"),
                 "--source-b", str(tmp_path / "new.png"), "--pose", str(tmp_path / "kp.json"),
                 "--frames", "2", "--out", str(tmp_path / "interp"), *common]) == 0
    assert sorted(p.name for p in (tmp_path / "interp").iterdir()) == [
        "frame_0000.png", "frame_0001.png", "strip.png"]
    frames = interpolate(pipe, photo(1), photo(2), pose, n_frames=2, generator=gen(1), **settings)
    for name, frame in (("frame_0000.png", frames[0]), ("frame_0001.png", frames[1]),
                        ("strip.png", image_strip(frames))):
        with Image.open(tmp_path / "interp" / name) as img:
            np.testing.assert_array_equal(np.asarray(img.convert("RGB")), np.asarray(frame))
    # User errors end in one line, exit code 2.
    assert main(["edit", "style", "--reference", str(tmp_path / "ref.png"), "--source",
                 str(tmp_path / "new.png"), "--out", str(tmp_path / "x.png"), *common]) == 2
    assert "either --mask" in capsys.readouterr().err
    assert main(["edit", "style", "--reference", str(tmp_path / "ref.png"), "--parts", "hat",
                 "--source", str(tmp_path / "new.png"), "--pose", str(tmp_path / "kp.json"),
                 "--out", str(tmp_path / "x.png"), *common]) == 2
    assert "unknown body part" in capsys.readouterr().err
