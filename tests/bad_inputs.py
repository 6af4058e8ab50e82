"""The bad-input corpus, made from code (nothing large is committed): broken images, keypoint
files, data files, model folders and weight files, each next to a good one."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from cfld.animation import POSE_GALLERY_DIR
from cfld.checks.numbers import MAX_FRAMES


class Payload:
    """A pickle that would call ``print`` when loaded without ``weights_only``."""

    def __reduce__(self):
        return (print, ("this must never run",))


def png_with_size(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width`` × ``height`` (a decompression bomb)."""
    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr:ihdr + 17])) & 0xFFFFFFFF
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def exif_rotated_jpeg(path: Path) -> tuple[Path, np.ndarray]:
    """A JPEG stored 32 wide × 48 high whose EXIF says "rotate 90° clockwise to view" (so it is
    shown 48 wide × 32 high); returns it and the upright pixels expected."""
    rng = np.random.default_rng(3)
    stored = np.zeros((48, 32, 3), np.uint8)
    stored[:24] = (250, 20, 20)  # red top half as stored
    stored[24:] = (20, 20, 250)
    stored += rng.integers(0, 5, stored.shape, dtype=np.uint8)
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the stored image must be turned 90° clockwise
    img.save(path, exif=exif.tobytes(), quality=95)
    return path, np.rot90(stored, k=-1)


def write_keypoint_variants(folder: Path) -> dict[str, Path]:
    """A good keypoint JSON and broken ones, by name."""
    good = json.loads(sorted(POSE_GALLERY_DIR.glob("*.json"))[0].read_text())
    frame, kps = good["frame"], good["keypoints"]
    variants = {
        "good": good,
        "all_missing": {"frame": frame, "keypoints": [[-1, -1]] * 18},
        "one_joint": {"frame": frame, "keypoints": [kps[0]] + [[-1, -1]] * 17},
        "strings": {"frame": frame, "keypoints": [[str(y), str(x)] for y, x in kps]},
        "booleans": {"frame": frame, "keypoints": [[True, False]] + kps[1:]},
        "null": {"frame": frame, "keypoints": [None] + kps[1:]},
        "seventeen": {"frame": frame, "keypoints": kps[:17]},
        "outside": {"frame": frame, "keypoints": [[frame[0] + 50, 3]] + kps[1:]},
        "bad_frame": {"frame": [0, -5], "keypoints": kps},
        "bool_frame": {"frame": [True, True], "keypoints": kps},
        "no_frame": {"keypoints": kps},
        "not_object": [1, 2, 3],
    }
    out = {name: folder / f"kp_{name}.json" for name in variants}
    for name, value in variants.items():
        out[name].write_text(json.dumps(value))
    out["nan"] = folder / "kp_nan.json"
    nan = {"frame": frame, "keypoints": [["NAN", kps[0][1]]] + kps[1:]}
    out["nan"].write_text(json.dumps(nan).replace('"NAN"', "NaN"))
    out["deep"] = folder / "kp_deep.json"
    out["deep"].write_text("[" * 100_000 + "]" * 100_000)
    out["not_json"] = folder / "kp_not_json.json"
    out["not_json"].write_text("{frame: oops")
    out["binary"] = folder / "kp_binary.json"
    out["binary"].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    out["too_many_frames"] = folder / "poses_too_many.json"
    out["too_many_frames"].write_text(json.dumps({"frames": [good] * (MAX_FRAMES + 1)}))
    out["sequence"] = folder / "poses_ok.json"
    out["sequence"].write_text(json.dumps({"frames": [good, good]}))
    return out


def write_images(folder: Path) -> dict[str, Path]:
    """A good photo and broken or unusual ones, by name."""
    rng = np.random.default_rng(0)
    out = {"good": folder / "good.png"}
    Image.fromarray(rng.integers(0, 255, (128, 88, 3), dtype=np.uint8)).save(out["good"])
    out["tiny"] = folder / "tiny.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(out["tiny"])
    out["bomb"] = png_with_size(folder / "bomb.png", 100_000, 100_000)
    out["truncated"] = folder / "truncated.png"
    out["truncated"].write_bytes(out["good"].read_bytes()[:200])
    out["garbage"] = folder / "garbage.png"
    out["garbage"].write_bytes(rng.integers(0, 255, 4096, dtype=np.uint8).tobytes())
    out["grey16"] = folder / "grey16.png"
    Image.fromarray(np.full((64, 44), 32896, np.uint16)).save(out["grey16"])  # 50 % grey
    out["exif"], _ = exif_rotated_jpeg(folder / "exif.jpg")
    out["folder"] = folder / "a_folder.png"
    out["folder"].mkdir()
    return out


def write_odd_images(folder: Path) -> dict[str, Path]:
    """Images of unusual modes, EXIF and sizes (the second campaign): some must be read
    correctly, some refused with a message."""
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 255, (64, 44, 3), dtype=np.uint8)
    out = {"cmyk": folder / "cmyk.jpg"}
    Image.fromarray(rgb).convert("CMYK").save(out["cmyk"], quality=95)
    out["palette_alpha"] = folder / "palette_alpha.png"
    pal = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(out["palette_alpha"], transparency=0)
    out["bad_exif"] = folder / "bad_exif.jpg"
    exif = Image.Exif()
    exif[0x0112] = 42  # not an orientation: must be ignored, not crash
    Image.fromarray(rgb).save(out["bad_exif"], exif=exif.tobytes())
    out["animated"] = folder / "animated.gif"
    frames = [Image.fromarray(np.roll(rgb, k, axis=1)) for k in range(3)]
    frames[0].save(out["animated"], save_all=True, append_images=frames[1:])
    out["float_nan"] = folder / "float_nan.tif"
    f = rng.random((64, 44)).astype(np.float32)
    f[3, 4] = np.nan
    Image.fromarray(f, "F").save(out["float_nan"])
    out["float_wide"] = folder / "float_wide.tif"
    Image.fromarray((rng.random((64, 44)) * 60000).astype(np.float32), "F").save(
        out["float_wide"])
    out["long_side"] = folder / "long_side.png"
    Image.new("RGB", (20_000, 16), (9, 9, 9)).save(out["long_side"])
    out["empty"] = folder / "empty.png"
    out["empty"].write_bytes(b"")
    out["wrong_ext"] = folder / "photo.txt"
    Image.fromarray(rgb).save(out["wrong_ext"], format="PNG")
    return out


def write_more_keypoints(folder: Path) -> dict[str, Path]:
    """Keypoint files the first corpus lacks: JSON infinities, huge frames, extra joints,
    nested coordinates, empty and UTF-16 files, a pose sequence of one frame."""
    good = json.loads(sorted(POSE_GALLERY_DIR.glob("*.json"))[0].read_text())
    frame, kps = good["frame"], good["keypoints"]
    out: dict[str, Path] = {}

    def put(name: str, text: str | bytes) -> None:
        out[name] = folder / f"kp2_{name}.json"
        if isinstance(text, bytes):
            out[name].write_bytes(text)
        else:
            out[name].write_text(text)

    put("inf", json.dumps({"frame": frame, "keypoints": [[0.5, 1]] + kps[1:]})
        .replace("0.5", "1e999", 1))  # json.loads turns 1e999 into inf
    put("huge_frame", json.dumps({"frame": [10**9, 10**9], "keypoints": kps}))
    put("nineteen", json.dumps({"frame": frame, "keypoints": kps + [kps[0]]}))
    put("nested", json.dumps({"frame": frame, "keypoints": [[kps[0]]] + kps[1:]}))
    put("triple", json.dumps({"frame": frame, "keypoints": [kps[0] + [1]] + kps[1:]}))
    put("empty", "")
    put("utf16", json.dumps(good).encode("utf-16"))
    put("frame_float", json.dumps({"frame": [256.5, 176], "keypoints": kps}))
    put("keypoints_object", json.dumps({"frame": frame, "keypoints": {"nose": [1, 2]}}))
    put("one_frame_sequence", json.dumps({"frames": [good]}))
    put("empty_sequence", json.dumps({"frames": []}))
    return out


def write_data_files(folder: Path, root: Path) -> dict[str, Path]:
    """Pairs csv variants against the data root ``root``."""
    from cfld.data import PAIRS_TEST

    out = {"good": root / PAIRS_TEST}
    out["traversal"] = folder / "pairs_traversal.csv"
    out["traversal"].write_text("from,to\n../../../../etc/hostname,x.jpg\n")
    out["absolute"] = folder / "pairs_absolute.csv"
    out["absolute"].write_text("from,to\n/etc/hostname,x.jpg\n")
    out["binary"] = folder / "pairs_binary.csv"
    out["binary"].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    out["latin1"] = folder / "pairs_latin1.csv"
    out["latin1"].write_bytes("from,to\ncaf\xe9.jpg,b.jpg\n".encode("latin-1"))
    out["semicolon"] = folder / "pairs_semicolon.csv"
    out["semicolon"].write_text("from;to\na.jpg;b.jpg\n")
    return out


def write_model_variants(folder: Path, good: Path) -> dict[str, Path]:
    """Broken copies of the pipeline folder ``good``, by name."""
    weights = "model/diffusion_pytorch_model.safetensors"

    def copy(name: str) -> Path:
        dst = folder / name
        shutil.copytree(good, dst)
        return dst

    out = {"good": good, "empty": folder / "empty"}
    out["empty"].mkdir()
    out["evil_index"] = copy("evil_index")
    index = json.loads((good / "model_index.json").read_text())
    (out["evil_index"] / "model_index.json").write_text(
        json.dumps({**index, "vae": ["cfld_evil_module", "Anything"]}))
    out["bad_index_json"] = copy("bad_index_json")
    (out["bad_index_json"] / "model_index.json").write_text("{not json")
    out["truncated_weights"] = copy("truncated_weights")
    w = out["truncated_weights"] / weights
    w.write_bytes(w.read_bytes()[:-1000])
    out["garbage_weights"] = copy("garbage_weights")
    (out["garbage_weights"] / weights).write_bytes(b"\xff" * 64)
    out["bad_config_json"] = copy("bad_config_json")
    (out["bad_config_json"] / "model" / "config.json").write_text('{"unet_config": ')
    out["mistyped_config"] = copy("mistyped_config")
    cfg_path = out["mistyped_config"] / "model" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["unet_confg"] = cfg.pop("unet_config")
    cfg_path.write_text(json.dumps(cfg))
    out["wrong_type_config"] = copy("wrong_type_config")
    cfg_path = out["wrong_type_config"] / "model" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["pose_adapter_config"] = "three"
    cfg_path.write_text(json.dumps(cfg))
    out["missing_weights"] = copy("missing_weights")
    (out["missing_weights"] / weights).unlink()
    return out


def write_more_models(folder: Path, good: Path) -> dict[str, Path]:
    """More broken pipeline folders: a list as model_index.json, NaN in config.json, a folder
    where the weights file goes, a file given as the model folder, a missing component."""
    weights = "model/diffusion_pytorch_model.safetensors"

    def copy(name: str) -> Path:
        dst = folder / name
        shutil.copytree(good, dst)
        return dst

    out = {"index_list": copy("index_list")}
    (out["index_list"] / "model_index.json").write_text("[1, 2, 3]")
    out["config_nan"] = copy("config_nan")
    cfg_path = out["config_nan"] / "model" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["appearance_config"]["conv_kernel_size"][0] = float("nan")
    cfg_path.write_text(json.dumps(cfg))  # Python writes NaN, which JSON does not have
    out["weights_folder"] = copy("weights_folder")
    (out["weights_folder"] / weights).unlink()
    (out["weights_folder"] / weights).mkdir()
    out["as_file"] = folder / "model_as_file.safetensors"
    shutil.copy(good / weights, out["as_file"])
    out["no_vae_folder"] = copy("no_vae_folder")
    shutil.rmtree(out["no_vae_folder"] / "vae")
    return out


def symlinked_root(folder: Path, root: Path, outside: Path) -> dict[str, Path]:
    """Copies of ``root``: ``escape`` with a test and a training image replaced by symbolic
    links to ``outside`` (a file outside the root), ``linked_dir`` whose test image folder is
    itself a link to a folder elsewhere (fine: the data root may live on another disk)."""
    from cfld.data import PAIRS_TEST

    escape = folder / "escape_root"
    shutil.copytree(root, escape)
    first = (escape / PAIRS_TEST).read_text().splitlines()[1].split(",")[0]
    victim = escape / "test_highres" / first
    victim.unlink()
    victim.symlink_to(outside)
    trained = sorted((escape / "train_highres").iterdir())[0]  # read by the FID reference
    trained.unlink()
    trained.symlink_to(outside)
    linked = folder / "linked_dir_root"
    shutil.copytree(root, linked)
    shutil.move(str(linked / "test_highres"), str(folder / "elsewhere_test_highres"))
    (linked / "test_highres").symlink_to(folder / "elsewhere_test_highres")
    return {"escape": escape, "linked_dir": linked, "escape_pairs": escape / PAIRS_TEST}


def write_weight_payloads(folder: Path) -> dict[str, Path]:
    """A pickle payload and a broken archive under weight-file names."""
    import torch

    out = {"payload": folder / "payload.pt", "broken": folder / "broken.pth",
           "official": folder / "official_payload"}
    torch.save({"weights": Payload()}, out["payload"])
    out["broken"].write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    out["official"].mkdir()
    shutil.copy(out["payload"], out["official"] / "pytorch_model.bin")
    shutil.copy(out["broken"], out["official"] / "pytorch_model_1.bin")
    return out


__all__ = ["Payload", "exif_rotated_jpeg", "png_with_size", "symlinked_root", "write_data_files",
           "write_images", "write_keypoint_variants", "write_model_variants",
           "write_more_keypoints", "write_more_models", "write_odd_images",
           "write_weight_payloads"]
