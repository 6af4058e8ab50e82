"""Real weights in one command: `cfld convert --pretrained-sd` writes a complete pipeline folder
that loads with no other argument; hub ids fail at once offline; the shipped model loads by
name.  The authors' checkpoint is the random-weight fixture, SD-1.5 a tiny random VAE."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
import torch

from cfld import CFLDModel, CFLDPipeline
from cfld.cli import main
from conftest import tiny_vae


@pytest.fixture(scope="module")
def converted(fixtures_dir, tmp_path_factory):
    """`cfld convert` of the official_tiny fixture with a tiny SD-1.5 (its vae/ folder)."""
    root = tmp_path_factory.mktemp("weights")
    tiny_vae().save_pretrained(root / "sd" / "vae")
    src = fixtures_dir / "official_tiny"
    args = ["convert", "--official", str(src), "--config", str(src / "config.json"),
            "--pretrained-sd", str(root / "sd"), "--out", str(root / "cfld-fashion")]
    assert main(args) == 0
    return root


def test_convert_writes_a_complete_pipeline_folder(converted, capsys):
    out = converted / "cfld-fashion"
    assert sorted(p.name for p in out.iterdir()) == ["model", "model_index.json", "scheduler",
                                                     "vae"]
    umask = os.umask(0)
    os.umask(umask)
    for path in out.rglob("*"):  # every file written with the umask's permissions (0644)
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    index = json.loads((out / "model_index.json").read_text())
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    pipe = CFLDPipeline.from_pretrained(out)  # no vae=, no scheduler=
    assert type(pipe.vae).__name__ == "AutoencoderKL"
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"  # the authors' schedule
    image = pipe(torch.rand(1, 3, 64, 64) * 2 - 1, "walking", num_inference_steps=1,
                 generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == pipe.default_output_size[::-1]
    # The lower-level API reads the same folder (its model/ component).
    model = CFLDModel.from_pretrained(out)
    assert torch.equal(model.uncond_prompt, pipe.model.uncond_prompt)


def test_generate_with_the_converted_folder_needs_no_other_flag(converted, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (88, 128), (200, 40, 40)).save(tmp_path / "src.png")
    old = os.umask(0o022)
    try:
        code = main(["generate", "--model", str(converted / "cfld-fashion"), "--source",
                     str(tmp_path / "src.png"), "--pose", "walking", "--out",
                     str(tmp_path / "out.png"), "--steps", "1", "--grid"])
    finally:
        os.umask(old)
    out = capsys.readouterr().out
    assert code == 0
    for name in ("out.png", "out_grid.png"):  # every file written is named, mode 0644
        assert f"wrote {tmp_path / name}" in out
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_hub_ids_fail_at_once_offline(fixtures_dir, tmp_path, capsys):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE"):
        CFLDPipeline.from_pretrained("someone/cfld-fashion-not-cached")
    src = fixtures_dir / "official_tiny"
    code = main(["convert", "--official", str(src), "--config", str(src / "config.json"),
                 "--pretrained-sd", "stable-diffusion-v1-5/stable-diffusion-v1-5", "--out",
                 str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "HF_HUB_OFFLINE" in err and "download it once" in err
    assert not (tmp_path / "x").exists()
    assert time.perf_counter() - t0 < 30  # no retries against an unreachable hub


def test_the_shipped_model_loads_by_name(capsys):
    from cfld.shipped import is_shipped, load_pipeline

    pipe = CFLDPipeline.from_pretrained("cfld-synthetic")
    assert is_shipped(pipe) and pipe.model.dtype == torch.float32
    assert is_shipped(load_pipeline("cfld-synthetic"))
    assert CFLDModel.from_pretrained("cfld-synthetic").config.unet_trainable == "all"
    with pytest.raises(FileNotFoundError, match="cfld-synthetic"):
        load_pipeline("cfld-fashion-missing")
