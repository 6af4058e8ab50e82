"""Pose from a real photo (skimage astronaut), offline with MediaPipe's bundled model."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("mediapipe")
skdata = pytest.importorskip("skimage.data")

from cfld.pose import Keypoints  # noqa: E402
from cfld.pose.estimate import (  # noqa: E402
    NoPersonFoundError,
    PoseEstimator,
    estimate_keypoints,
    get_estimator,
)


@pytest.fixture(scope="module")
def estimator():
    est = get_estimator("mediapipe")
    yield est
    est.close()


def test_astronaut_keypoints(estimator) -> None:
    photo = Image.fromarray(skdata.astronaut())  # 512x512, Eileen Collins facing the camera
    assert isinstance(estimator, PoseEstimator)
    kp = estimator(photo)
    assert kp.frame == (512, 512)
    c = kp.coords
    nose, neck, r_sh, l_sh, r_eye, l_eye = c[0], c[1], c[2], c[5], c[14], c[15]
    assert kp.present[[0, 1, 2, 5, 14, 15]].all()
    # Face in the upper, middle-left part of the photo.
    assert 60 < nose[0] < 200 and 150 < nose[1] < 300
    assert 50 < r_eye[0] < nose[0] and 50 < l_eye[0] < nose[0]  # eyes above the nose
    # Shoulders clearly below the face; neck between them.
    assert r_sh[0] > nose[0] + 60 and l_sh[0] > nose[0] + 60
    assert r_sh[1] < neck[1] < l_sh[1]
    # Facing the camera: the person's right side is on the image's left.
    assert r_sh[1] < nose[1] < l_sh[1]
    assert r_eye[1] < l_eye[1]
    assert l_sh[1] - r_sh[1] > 120  # shoulder width is a large part of this portrait

    small = estimate_keypoints(photo, frame=(256, 176), estimator=estimator)
    assert small.frame == (256, 176)
    np.testing.assert_allclose(small.coords[0], [nose[0] / 2, nose[1] * 176 / 512])


@pytest.mark.parametrize("kind", ["grey", "gradient", "coffee"])
def test_no_person_raises(estimator, kind: str) -> None:
    if kind == "grey":
        arr = np.full((256, 256, 3), 128, np.uint8)
    elif kind == "gradient":
        arr = np.tile(np.linspace(0, 255, 256).astype(np.uint8)[None, :, None], (256, 1, 3))
    else:
        arr = skdata.coffee()
    with pytest.raises(ValueError, match="no person found"):
        estimator(Image.fromarray(arr))
    assert issubclass(NoPersonFoundError, ValueError)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="available"):
        get_estimator("openpose")


def test_cli_pose_writes_json(tmp_path, capsys) -> None:
    from cfld.cli import main

    img = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(img)
    out = tmp_path / "kp.json"
    assert main(["pose", str(img), "--out", str(out), "--frame", "256x176",
                 "--skeleton", str(tmp_path / "sk.png")]) == 0
    data = json.loads(out.read_text())
    assert data["frame"] == [256, 176] and len(data["keypoints"]) == 18
    kp = Keypoints.from_json(out)
    assert kp.present[[0, 2, 5]].all()
    # The file is the library's estimate in the asked frame; the skeleton is that pose drawn.
    fresh = get_estimator("mediapipe")
    try:
        want = estimate_keypoints(Image.open(img), frame=(256, 176), estimator=fresh)
    finally:
        fresh.close()
    np.testing.assert_array_equal(kp.present, want.present)
    np.testing.assert_allclose(kp.coords[kp.present], want.coords[want.present], atol=0.01)
    from cfld.pose.render import render_skeleton_image

    with Image.open(tmp_path / "sk.png") as sk:
        assert sk.size == (176, 256)
        np.testing.assert_array_equal(np.asarray(sk.convert("RGB")),
                                      np.asarray(render_skeleton_image(kp)))

    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(grey)
    assert main(["pose", str(grey), "--out", str(tmp_path / "g.json")]) == 2
    assert "no person found" in capsys.readouterr().err
    assert main(["pose", str(tmp_path / "missing.png"), "--out", str(tmp_path / "m.json")]) == 2


def test_missing_mediapipe_is_a_clear_error(monkeypatch) -> None:
    import sys

    from cfld.pose.estimate import MediaPipeEstimator, MissingBackendError

    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)
    with pytest.raises(MissingBackendError, match="pip install 'mediapipe==0.10.21'"):
        MediaPipeEstimator()
