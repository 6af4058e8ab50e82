"""DeepFashion loader, prepare and check on tiny procedural roots, including broken ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cfld.data.deepfashion import (
    ANNOTATION_TRAIN,
    PAIRS_TEST,
    PAIRS_TRAIN,
    DataError,
    DeepFashionTest,
    DeepFashionTrain,
    FidRealSet,
    check,
    flat_name,
    load_image,
    prepare,
    read_annotations,
    read_pairs,
)
from cfld.data.synthetic import make_sample_root
from cfld.pose import render_pose_map

GOOD_Y = "[20, 40, 41, 70, 100, 42, 72, 101, 120, 170, 220, 121, 171, 221, 15, 16, 18, -1]"
GOOD_X = "[88, 88, 60, 55, 50, 116, 121, 126, 70, 68, 66, 106, 108, 110, 82, 94, 75, 5]"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_sample_root(tmp_path_factory.mktemp("df") / "root", people=3, poses=3,
                            size=(64, 44), seed=0, test_people=1)


@pytest.fixture()
def root(pristine: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "root"
    shutil.copytree(pristine, dst)
    return dst


# ------------------------------------------------------------------------------------ csv
def test_read_pairs(tmp_path: Path) -> None:
    p = tmp_path / "pairs.csv"
    p.write_text("from,to\na.jpg,b.jpg\nb.jpg,a.jpg\n")
    assert read_pairs(p) == [("a.jpg", "b.jpg"), ("b.jpg", "a.jpg")]
    p.write_text(",from,to\n0,a.jpg,b.jpg\n")  # an index column (pandas to_csv) is fine
    assert read_pairs(p) == [("a.jpg", "b.jpg")]
    p.write_text("from;to\na.jpg;b.jpg\n")
    with pytest.raises(DataError, match="uses ';' as separator"):
        read_pairs(p)
    p.write_text("source,target\na.jpg,b.jpg\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['from', 'to'\]"):
        read_pairs(p)
    p.write_text("from,to\na.jpg,b.jpg\nc.jpg\n")
    with pytest.raises(DataError, match="line 3"):
        read_pairs(p)
    p.write_text("from,to\na.jpg,b.jpg\na.jpg,b.jpg\n")
    with pytest.warns(UserWarning, match="duplicate pair"):
        assert len(read_pairs(p)) == 2
    with pytest.raises(DataError, match="line 3 repeats line 2"):
        read_pairs(p, on_duplicate="error")
    with pytest.raises(FileNotFoundError):
        read_pairs(tmp_path / "none.csv")


def test_read_annotations(tmp_path: Path) -> None:
    p = tmp_path / "ann.csv"
    p.write_text(f"name:keypoints_y:keypoints_x\na.jpg:{GOOD_Y}:{GOOD_X}\n")
    kp = read_annotations(p)["a.jpg"]
    assert kp.frame == (256, 176) and kp.present.sum() == 17
    p.write_text(f"name:keypoints_y:keypoints_x\na.jpg:{GOOD_Y}:{GOOD_X}\nb.jpg:[1, 2]:{GOOD_X}\n")
    msg = r"ann.csv, line 3, image 'b.jpg': keypoints_y has 2 values"
    with pytest.raises(DataError, match=msg):
        read_annotations(p)
    p.write_text(f"name:keypoints_y:keypoints_x\nb.jpg:[1, 2, x]:{GOOD_X}\n")
    with pytest.raises(DataError, match="line 2, image 'b.jpg'.*not a JSON list"):
        read_annotations(p)
    p.write_text(f"name,keypoints_y,keypoints_x\na.jpg,{GOOD_Y},{GOOD_X}\n")
    with pytest.raises(DataError, match="uses ',' as separator"):
        read_annotations(p)
    row = f"a.jpg:{GOOD_Y}:{GOOD_X}\n"
    p.write_text("name:keypoints_y:keypoints_x\n" + row + row)
    with pytest.raises(DataError, match="'a.jpg' already annotated on line 2"):
        read_annotations(p)


def test_flat_name_rule() -> None:
    # facts §5.2 example.
    assert (flat_name("WOMEN", "Blouses_Shirts", "id_00000001", "02_1_front.jpg")
            == "fashionWOMENBlouses_Shirtsid0000000102_1front.jpg")


def test_load_image_exact_size(pristine: Path, tmp_path: Path) -> None:
    name = next((pristine / "train_highres").iterdir())
    img = load_image(name, (40, 30))
    assert img.mode == "RGB" and img.size == (30, 40)
    ref = Image.open(name).convert("RGB").resize((30, 40), Image.BICUBIC)
    assert np.array_equal(np.asarray(img), np.asarray(ref))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot read image .*bad.jpg"):
        load_image(bad)


# ------------------------------------------------------------------------------------ datasets
def test_train_dataset_tensors(pristine: Path) -> None:
    sizes = {"gen_size": (64, 64), "cond_size": (32, 32), "pose_size": (32, 32)}
    ds = DeepFashionTrain(pristine, **sizes, seed=0)
    assert len(ds) == 3 * 3 * 2
    item = ds[0]
    assert item["img_src"].shape == item["img_tgt"].shape == (3, 64, 64)
    assert item["img_cond"].shape == (3, 32, 32)
    assert item["pose_img_src"].shape == item["pose_img_tgt"].shape == (21, 32, 32)
    for k in ("img_src", "img_tgt", "img_cond"):
        t = item[k]
        assert t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1 and t.min() < -0.2
    kp = ds.annotations[item["to"]]
    assert torch.equal(item["pose_img_tgt"], torch.from_numpy(render_pose_map(kp, (32, 32))))
    # Seeded flips: reproducible, and both outcomes occur across items.
    ds2 = DeepFashionTrain(pristine, **sizes, seed=0)
    flips = [ds._flip(i) for i in range(len(ds))]
    assert flips == [ds2._flip(i) for i in range(len(ds))]
    assert any(flips) and not all(flips)
    i_flip, i_keep = flips.index(True), flips.index(False)
    src = Image.open(pristine / "train_highres" / ds.pairs[i_flip][0]).convert("RGB")
    expected = np.asarray(src.resize((32, 32), Image.BICUBIC))[:, ::-1]
    got = ((ds[i_flip]["img_cond"].permute(1, 2, 0) * 0.5 + 0.5) * 255).round().byte().numpy()
    assert np.array_equal(got, expected)
    assert torch.equal(ds[i_keep]["img_cond"], ds2[i_keep]["img_cond"])
    ds.set_epoch(1)
    assert [ds._flip(i) for i in range(len(ds))] != flips
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["img_src"].shape == (4, 3, 64, 64) and len(batch["from"]) == 4


def test_test_dataset_and_fid_set(pristine: Path) -> None:
    ds = DeepFashionTest(pristine, gen_size=(64, 64), cond_size=(32, 32), pose_size=(32, 32),
                         test_size=(64, 44))
    item = ds[1]
    assert item["img_gt"].shape == (3, 64, 44)
    assert 0 <= item["img_gt"].min() and item["img_gt"].max() <= 1
    assert item["img_cond"].shape == (3, 32, 32) and item["img_cond"].min() < 0
    assert item["pose_img_src"].shape == item["pose_img_tgt"].shape == (21, 32, 32)
    assert item["img_src"].shape == item["img_tgt"].shape == (3, 64, 64)
    assert isinstance(item["from"], str) and isinstance(item["to"], str)
    fid = FidRealSet(pristine, (32, 22))
    assert len(fid) == 9 and fid[0].shape == (3, 32, 22) and 0 <= fid[0].min() <= fid[0].max() <= 1


# ------------------------------------------------------------------------------------ broken roots
def _first_pair_name(root: Path) -> str:
    return read_pairs(root / PAIRS_TRAIN)[0][0]


def test_missing_image(root: Path) -> None:
    name = _first_pair_name(root)
    (root / "train_highres" / name).unlink()
    problems = check(root)
    assert any(name in p and "missing" in p for p in problems)
    ds = DeepFashionTrain(root, gen_size=(16, 16), cond_size=(16, 16), pose_size=(16, 16))
    with pytest.raises(FileNotFoundError, match=name):
        ds[0]


def test_unreadable_image(root: Path) -> None:
    name = _first_pair_name(root)
    path = root / "train_highres" / name
    path.write_bytes(path.read_bytes()[:60])
    assert any(name in p and "unreadable" in p for p in check(root))
    ds = DeepFashionTrain(root, gen_size=(16, 16), cond_size=(16, 16), pose_size=(16, 16))
    with pytest.raises(DataError, match=name):
        ds[0]


def test_malformed_keypoints(root: Path) -> None:
    ann = root / ANNOTATION_TRAIN
    lines = ann.read_text().splitlines()
    name, ys, xs = lines[2].split(":")
    lines[2] = f"{name}:{ys[:-5]}]:{xs}"
    ann.write_text("\n".join(lines) + "\n")
    problems = check(root)
    assert len(problems) >= 1 and f"line 3, image '{name}'" in problems[0]
    with pytest.raises(DataError, match=f"line 3, image '{name}'"):
        DeepFashionTrain(root)


def test_wrong_separator_and_duplicates(root: Path, capsys) -> None:
    from cfld.cli import main

    pairs = root / PAIRS_TEST
    pairs.write_text(pairs.read_text().replace(",", ";"))
    train_pairs = root / PAIRS_TRAIN
    lines = train_pairs.read_text().splitlines()
    train_pairs.write_text("\n".join(lines + [lines[1]]) + "\n")
    ann = root / ANNOTATION_TRAIN
    alines = ann.read_text().splitlines()
    ann.write_text("\n".join(alines + [alines[1]]) + "\n")
    problems = check(root)
    assert any("uses ';' as separator" in p for p in problems)
    assert any("duplicate pair" in p for p in problems)
    assert any("already annotated" in p for p in problems)
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "problem:" in out and "official 101,966" in out


def test_cli_check_ok(pristine: Path, capsys) -> None:
    from cfld.cli import main

    assert main(["data", "check", str(pristine)]) == 0
    assert "OK" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ prepare
def _fake_inshop(base: Path) -> tuple[Path, list[str], list[str]]:
    """A tiny unzipped img_highres tree (deep inside ``base``) and its list files."""
    src = base / "downloads" / "In-shop" / "img_highres"
    files = [
        ("WOMEN", "Blouses_Shirts", "id_00000001", "02_1_front.jpg"),
        ("WOMEN", "Blouses_Shirts", "id_00000001", "02_2_side.jpg"),
        ("MEN", "Denim", "id_00000080", "01_7_additional.jpg"),
        ("MEN", "Denim", "id_00000080", "01_1_front.jpg"),
    ]
    names = []
    for i, (g, c, item, f) in enumerate(files):
        p = src / g / c / item / f
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((22, 15, 3), 40 * i, np.uint8)).save(p)
        names.append(flat_name(g, c, item, f))
    (src / "MEN" / "Denim" / "id_00000080" / "notes.txt").write_text("ignored")
    return src, names[:2] + names[3:], names[2:3]


def test_prepare_idempotent_and_cwd_independent(tmp_path: Path, monkeypatch) -> None:
    src, train, test = _fake_inshop(tmp_path)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.lst").write_text("\n".join(train + ["fashionMENmissing01_1front.jpg"]) + "\n")
    (lists / "test.lst").write_text("\n".join(test) + "\n")
    monkeypatch.chdir(src / "WOMEN")  # the original script only worked from the parent folder
    out = tmp_path / "prepared"
    counts = prepare(src.parent.parent, out, lists / "train.lst", lists / "test.lst")
    assert counts["train"] == 3 and counts["test"] == 1 and counts["skipped"] == 0
    assert counts["missing_train"] == 1 and counts["missing_test"] == 0
    assert sorted(p.name for p in (out / "train_highres").iterdir()) == sorted(train)
    assert (out / "test_highres" / "fashionMENDenimid0000008001_7additional.jpg").is_file()
    assert (src / "WOMEN" / "Blouses_Shirts" / "id_00000001" / "02_1_front.jpg").is_file()  # copied
    assert (out / "train.lst").is_file()
    again = prepare(src, out, lists / "train.lst", lists / "test.lst")
    assert again["train"] == again["test"] == 0 and again["skipped"] == 4


def test_prepare_output_inside_source_and_cli(tmp_path: Path, capsys) -> None:
    from cfld.cli import main

    src, train, test = _fake_inshop(tmp_path)
    (src / "train.lst").write_text("\n".join(train) + "\n")
    (src / "test.lst").write_text("\n".join(test) + "\n")
    assert main(["data", "prepare", "--src", str(src), "--out", str(src)]) == 0
    assert main(["data", "prepare", "--src", str(src), "--out", str(src)]) == 0  # its own output
    out = capsys.readouterr().out
    assert "copied 0 train and 0 test images, skipped 4" in out
    assert main(["data", "prepare", "--src", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train.lst").write_text("a\n")
    (empty / "test.lst").write_text("b\n")
    with pytest.raises(FileNotFoundError, match="no MEN/ or WOMEN/"):
        prepare(empty, tmp_path / "o")
