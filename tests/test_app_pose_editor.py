"""The app's pose editor and its handlers, without a browser: the table ⇄ keypoints, a joint
moved by a click, bad cells as messages, the editor filled from an example pose, a photo or a
JSON, animation through any poses, and the pop-up notes about the source."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from cfld.app import AppHandlers, pose_editor  # noqa: E402
from cfld.app.handlers import EDITED_POSE  # noqa: E402
from cfld.pose.gallery import example_pose  # noqa: E402
from conftest import make_pixel_pipeline  # noqa: E402

QUIET = dict(progress=lambda *a, **k: None)
SETTINGS = (1, 2.0, 2.0, 0, "ddim")


@pytest.fixture(scope="module")
def app():
    return AppHandlers(make_pixel_pipeline(), guidance_type="none")


def test_table_round_trip_and_moves():
    kp = example_pose("side")
    table = pose_editor.keypoints_to_table(kp)
    assert len(table) == 18 and table[0][:2] == [0, "nose"]
    back = pose_editor.table_to_keypoints(table)
    assert np.array_equal(back.present, kp.present)
    assert np.abs(back.coords[kp.present] - kp.coords[kp.present]).max() <= 0.5
    w, h = pose_editor.preview_size()
    moved = pose_editor.move_joint(table, "4 right_wrist", (w / 2, h / 4), (w, h))
    assert moved[4][2:] == [64, 88] and moved[3] == table[3]
    assert pose_editor.render_preview(moved).size == (w, h)
    bad = [list(r) for r in table]
    bad[2][2] = "ten"
    with pytest.raises(ValueError, match="right_shoulder: y = 'ten' is not a number"):
        pose_editor.table_to_keypoints(bad)
    bad[2][2] = 900
    with pytest.raises(ValueError, match="outside the frame"):
        pose_editor.table_to_keypoints(bad)
    assert pose_editor.render_preview(bad).size == (w, h)  # an incomplete edit still draws
    empty = [[j, n, -1, -1] for j, n, _, _ in table]
    with pytest.raises(ValueError, match="0 of 18 joints"):
        pose_editor.table_to_keypoints(empty)


def test_editor_handlers(app, tmp_path, monkeypatch):
    skimage_data = pytest.importorskip("skimage.data")
    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda msg, *a, **k: warnings.append(msg))
    table, preview = app.editor_from_example("walking")
    assert preview.size == pose_editor.preview_size()
    with pytest.raises(gr.Error, match="pick an example pose"):
        app.editor_from_example("moonwalk")
    Image.fromarray(skimage_data.astronaut()).save(tmp_path / "astronaut.png")
    photo_table, _, picker = app.editor_from_photo(str(tmp_path / "astronaut.png"))
    assert picker["value"] is None  # the example picker is cleared: the editor holds the photo's
    assert photo_table[0][2] > 0 and photo_table[13][2:] == [-1, -1]  # nose found, no ankle
    assert any("left_ankle" in w for w in warnings)
    example_pose("side").to_json(tmp_path / "kp.json")
    json_table, _, _ = app.editor_from_json(str(tmp_path / "kp.json"))
    assert json_table == pose_editor.keypoints_to_table(example_pose("side"))
    bad = [list(r) for r in table]
    bad[0][3] = "x"
    with pytest.raises(gr.Error, match="nose: x = 'x'"):
        app.generate_from_editor(str(tmp_path / "astronaut.png"), bad, *SETTINGS, **QUIET)


def test_generate_animate_and_notes(app, tmp_path, monkeypatch):
    skimage_data = pytest.importorskip("skimage.data")
    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda msg, *a, **k: warnings.append(msg))
    Image.fromarray(skimage_data.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(skimage_data.coffee()).save(tmp_path / "coffee.png")
    table = pose_editor.keypoints_to_table(example_pose("arms_raised"))
    image = app.generate_from_editor(str(tmp_path / "astronaut.png"), table, *SETTINGS, **QUIET)
    assert image.size == (44, 64) and warnings == []  # not the shipped model, a person: no note
    monkeypatch.setattr(app.pipe, "_cfld_shipped", True, raising=False)
    app.generate_from_editor(str(tmp_path / "coffee.png"), table, *SETTINGS, **QUIET)
    assert any("small model of procedural people" in w for w in warnings)
    assert any("no person found" in w for w in warnings)
    gif, frames = app.run_animate_through(str(tmp_path / "astronaut.png"), None,
                                          ["walking", EDITED_POSE, "side"], table, 5, 4,
                                          *SETTINGS, **QUIET)
    assert len(frames) == 5
    with Image.open(gif) as g:
        assert g.n_frames == 5
    with pytest.raises(gr.Error, match="choose the poses"):
        app.run_animate_through(str(tmp_path / "astronaut.png"), None, [], table, 5, 4,
                                *SETTINGS, **QUIET)


def test_user_errors_print_no_traceback(app):
    with pytest.raises(gr.Error) as err:
        app.generate_from_editor(None, None, *SETTINGS, **QUIET)
    assert err.value.print_exception is False
