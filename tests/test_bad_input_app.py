"""The bad-input corpus through the web app's handlers (no browser): each case is a gr.Error
message naming the problem (never a traceback, a clamped value or "Could not preprocess input
component"); the good uploads next to them work; the app's files do not pile up."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

import bad_inputs  # noqa: E402
from cfld.app import AppHandlers, build_app  # noqa: E402
from conftest import make_pixel_pipeline  # noqa: E402

NAN, INF = float("nan"), float("inf")
SETTINGS = dict(steps=1, scale_pose=2.0, scale_app=2.0, seed=0, scheduler="ddim")


def _quiet(*_a, **_k):
    return None


@pytest.fixture(scope="module")
def app_ctx(tmp_path_factory):
    base = tmp_path_factory.mktemp("app-corpus")
    c = {"app": AppHandlers(make_pixel_pipeline(), guidance_type="none"),
         "img": bad_inputs.write_images(base), "kp": bad_inputs.write_keypoint_variants(base),
         "base": base, "odd": bad_inputs.write_odd_images(base),
         "kp2": bad_inputs.write_more_keypoints(base)}
    (base / "notes.txt").write_text("not an image")
    (base / "text_as.png").write_text("not an image either")
    return c


def _generate(c, source=None, pose_json=None, **kw):
    settings = {**SETTINGS, **kw}
    return c["app"].run_generate(str(source or c["img"]["good"]), "walking", None,
                                 None if pose_json is None else str(pose_json),
                                 settings["steps"], settings["scale_pose"],
                                 settings["scale_app"], settings["seed"], settings["scheduler"],
                                 progress=_quiet)


def _interpolate(c, frames):
    s = SETTINGS
    return c["app"].run_interpolate(str(c["img"]["good"]), str(c["img"]["good"]), "walking",
                                    None, frames, s["steps"], s["scale_pose"], s["scale_app"],
                                    s["seed"], s["scheduler"], progress=_quiet)


def _animate(c, frames=2, fps=8, sequence=None):
    s = SETTINGS
    return c["app"].run_animate(str(c["img"]["good"]), None if sequence is None else
                                str(sequence), "walking", "walking", frames, fps, s["steps"],
                                s["scale_pose"], s["scale_app"], s["seed"], s["scheduler"],
                                progress=_quiet)


CASES = [
    ("steps-negative", lambda c: _generate(c, steps=-3), "num_inference_steps must be"),
    ("steps-zero", lambda c: _generate(c, steps=0), "from 1 to 1000"),
    ("steps-nan", lambda c: _generate(c, steps=NAN), "num_inference_steps"),
    ("scale-pose-inf", lambda c: _generate(c, scale_pose=INF), "scale_pose"),
    ("scale-app-nan", lambda c: _generate(c, scale_app=NAN), "scale_app"),
    ("seed-nan", lambda c: _generate(c, seed=NAN), "seed must be"),
    ("seed-huge", lambda c: _generate(c, seed=2.0**70), "seed must be"),
    ("seed-negative", lambda c: _generate(c, seed=-1), "seed must be"),
    ("scheduler-unknown", lambda c: _generate(c, scheduler="nope"), "unknown scheduler"),
    ("upload-text-as-png", lambda c: _generate(c, source=c["base"] / "text_as.png"),
     "not a readable image"),
    ("upload-txt", lambda c: _generate(c, source=c["base"] / "notes.txt"), "must be an image"),
    ("upload-bomb", lambda c: _generate(c, source=c["img"]["bomb"]), "pixels"),
    ("upload-truncated", lambda c: _generate(c, source=c["img"]["truncated"]),
     "not a readable image"),
    ("upload-1x1", lambda c: _generate(c, source=c["img"]["tiny"]), "at least 16"),
    ("upload-missing", lambda c: _generate(c, source=c["base"] / "gone.png"),
     "did not arrive"),
    ("pose-json-all-missing", lambda c: _generate(c, pose_json=c["kp"]["all_missing"]),
     "0 of 18 joints"),
    ("pose-json-deep", lambda c: _generate(c, pose_json=c["kp"]["deep"]), "nested too deeply"),
    ("pose-json-nan", lambda c: _generate(c, pose_json=c["kp"]["nan"]), "NaN"),
    ("pose-json-strings", lambda c: _generate(c, pose_json=c["kp"]["strings"]),
     "pair of numbers"),
    ("pose-json-not-json", lambda c: _generate(c, pose_json=c["kp"]["not_json"]),
     "not valid JSON"),
    ("pose-json-binary", lambda c: _generate(c, pose_json=c["kp"]["binary"]), "binary"),
    ("interp-frames-huge", lambda c: _interpolate(c, 100_000), "frames must be"),
    ("interp-frames-nan", lambda c: _interpolate(c, NAN), "frames must be"),
    ("anim-fps-zero", lambda c: _animate(c, fps=0), "fps must be"),
    ("anim-frames-huge", lambda c: _animate(c, frames=10**6), "frames must be"),
    ("anim-sequence-too-long", lambda c: _animate(c, sequence=c["kp"]["too_many_frames"]),
     "limit is 500"),
    ("array-upload-range", lambda c: c["app"].uploads.image(np.full((20, 20, 3), 7.0), "photo"),
     r"\[0, 1\]"),
]


def _editor(c, table):
    return c["app"].generate_from_editor(str(c["img"]["good"]), table, 1, 2.0, 2.0, 0, "ddim",
                                         progress=_quiet)


def _row(y, x):
    return [[j, "nose", y, x] for j in range(18)]


#: The second campaign: cases of the same classes the first corpus did not have ("c2-").
SECOND = [
    ("c2-steps-string", lambda c: _generate(c, steps="5"), "num_inference_steps .*got '5'"),
    ("c2-seed-string", lambda c: _generate(c, seed="7"), "seed must be .*got '7'"),
    ("c2-scale-negative", lambda c: _generate(c, scale_pose=-1), "scale_pose .*from 0"),
    ("c2-scheduler-none", lambda c: _generate(c, scheduler=None), "unknown scheduler"),
    ("c2-upload-empty-file", lambda c: _generate(c, source=c["odd"]["empty"]),
     "not a readable image"),
    ("c2-upload-long-side", lambda c: _generate(c, source=c["odd"]["long_side"]),
     "limit is 8192 on a side"),
    ("c2-upload-gif", lambda c: _generate(c, source=c["odd"]["animated"]), "must be an image"),
    ("c2-upload-wrong-extension", lambda c: _generate(c, source=c["odd"]["wrong_ext"]),
     "must be an image"),
    ("c2-pose-json-inf", lambda c: _generate(c, pose_json=c["kp2"]["inf"]), "finite numbers"),
    ("c2-pose-json-empty", lambda c: _generate(c, pose_json=c["kp2"]["empty"]), "not valid JSON"),
    ("c2-pose-json-utf16", lambda c: _generate(c, pose_json=c["kp2"]["utf16"]), "UTF-16"),
    ("c2-pose-json-huge-frame", lambda c: _generate(c, pose_json=c["kp2"]["huge_frame"]),
     "1/100"),
    ("c2-interp-frames-fraction", lambda c: _interpolate(c, 1.5), "frames must be .*got 1.5"),
    ("c2-anim-fps-inf", lambda c: _animate(c, fps=INF), "fps must be"),
    ("c2-anim-through-nothing", lambda c: c["app"].run_animate_through(
        str(c["img"]["good"]), None, [], None, 3, 6, 1, 2.0, 2.0, 0, "ddim", progress=_quiet),
     "choose the poses"),
    ("c2-style-nothing-to-restyle", lambda c: c["app"].run_style(
        {"background": Image.open(c["img"]["good"]), "layers": []}, None, [], None,
        str(c["img"]["good"]), 1, 2.0, 2.0, 0, "ddim", progress=_quiet), "paint the region"),
    ("c2-editor-nan", lambda c: _editor(c, _row(NAN, 3)), "not a finite number"),
    ("c2-editor-text", lambda c: _editor(c, _row("abc", 3)), "'abc' is not a number"),
    ("c2-editor-short", lambda c: _editor(c, _row(3, 3)[:5]), "18 rows"),
    ("c2-editor-collapsed", lambda c: _editor(c, _row(3, 3)), "1/100"),
    ("c2-array-bool", lambda c: c["app"].uploads.image(np.zeros((20, 20, 3), bool), "photo"),
     "dtype bool"),
]
CASES += SECOND


@pytest.mark.parametrize("case, call, match", CASES, ids=[c[0] for c in CASES])
def test_bad_upload_or_setting_is_a_message(case, call, match, app_ctx):
    with pytest.raises(gr.Error, match=match):
        call(app_ctx)


def test_good_uploads_work(app_ctx):
    image, skeleton = _generate(app_ctx)
    assert image.size == (44, 64)
    image, _ = _generate(app_ctx, source=app_ctx["img"]["exif"], pose_json=app_ctx["kp"]["good"],
                         steps=2.0, seed=3.0)  # slider floats are whole numbers
    assert image.size == (44, 64)
    gif, frames = _animate(app_ctx)
    assert os.path.isfile(gif) and len(frames) == 2


def test_old_animations_are_pruned_and_the_folder_removed_on_close(tmp_path):
    app = AppHandlers(make_pixel_pipeline(), guidance_type="none")
    old = os.path.join(app.gif_dir, "animation-old.gif")
    Image.new("RGB", (4, 4)).save(old)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = os.path.join(app.gif_dir, "animation-new.gif")
    Image.new("RGB", (4, 4)).save(fresh)
    assert app.prune_results() == [old] and os.path.isfile(fresh)
    app.close()
    assert not os.path.exists(app.gif_dir)


def test_uploads_reach_the_checks_unopened_and_gradio_cleans_its_cache(app_ctx):
    from gradio.components.image import ImageData

    demo = build_app(make_pixel_pipeline(), default_steps=1)
    assert demo.delete_cache is not None  # Gradio removes old uploads from its cache
    source = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "source")
    text = str(app_ctx["base"] / "text_as.png")
    # Gradio would open it with PIL and fail as "Could not preprocess input component"; the
    # path goes to the handlers, whose checks name the problem.
    assert source.preprocess(ImageData(path=text, orig_name="text_as.png")) == text
    editor = next(b for b in demo.blocks.values() if isinstance(b, gr.ImageEditor))
    payload = editor.data_model.model_validate(
        {"background": {"path": text}, "layers": [], "composite": None})
    with pytest.raises(gr.Error, match="not a readable image"):
        editor.preprocess(payload)


def test_a_served_upload_is_deleted_once_the_handler_has_read_it(app_ctx, tmp_path, monkeypatch):
    """Through the real server (Gradio's upload route and queue): the uploaded photo is in
    Gradio's cache only until Generate has read it; the result stays for the browser."""
    import glob
    import socket

    client_mod = pytest.importorskip("gradio_client")
    import httpx

    from cfld.animation import gallery_poses
    from cfld.app import launch_app
    from cfld.app.pose_editor import keypoints_to_table

    cache = tmp_path / "gradio-cache"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    demo = build_app(make_pixel_pipeline(), default_steps=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = launch_app(demo, host="127.0.0.1", port=port, prevent_thread_lock=True)
    try:
        table = {"headers": ["#", "joint", "y", "x"],
                 "data": keypoints_to_table(gallery_poses()["walking"])}
        for attempt in range(3):  # a loaded machine can drop the client's first connection
            try:
                client = client_mod.Client(url, verbose=False, download_files=False)
                result = client.predict(client_mod.handle_file(str(app_ctx["img"]["good"])),
                                        table, 1, 2.0, 2.0, 0, "ddim",
                                        api_name="/generate_from_editor")
                break
            except (OSError, TimeoutError, httpx.HTTPError) as err:
                if attempt == 2:
                    pytest.fail(f"the served app did not answer: {err!r}")
                time.sleep(2)
        files = [os.path.basename(p) for p in glob.glob(str(cache / "**"), recursive=True)
                 if os.path.isfile(p)]  # before close(), which empties Gradio's cache
        assert os.path.isfile(result["path"])  # the result: kept for the browser to fetch
    finally:
        demo.close()
    assert "good.png" not in files  # the upload: deleted once read
