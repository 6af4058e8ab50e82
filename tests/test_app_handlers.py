"""The app's handlers as a plain object: no Blocks, no browser."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip("gradio")

from cfld.animation import gallery_poses  # noqa: E402
from cfld.app import AppHandlers  # noqa: E402
from cfld.pipelines import official_scheduler  # noqa: E402
from cfld.pipelines.schedulers import make_scheduler  # noqa: E402
from cfld.pose.render import render_skeleton_image  # noqa: E402
from conftest import make_pixel_pipeline  # noqa: E402


def test_generate_handler_is_the_pipeline_call_with_the_panels_settings(tmp_path):
    """run_generate = the pipeline called by hand with the panel's steps, pose and appearance
    scales (not swapped: Eq. 7 with random appearance convs, so each scale changes the image),
    seed and scheduler, on the gallery pose; the skeleton beside it is that pose drawn at the
    result's aspect 64×44, scaled to 256 rows: 256×176."""
    pipe = make_pixel_pipeline(perturb=True)
    app = AppHandlers(pipe)  # guidance uc_down_full (Eq. 7)
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 176, 3), dtype=np.uint8)
                    ).save(path)
    image, skeleton = app.run_generate(str(path), "walking", None, None, 2, 1.5, 3.0, 7,
                                       "ddim", progress=lambda *a, **k: None)
    kp = gallery_poses()["walking"]
    pipe.scheduler = make_scheduler("ddim", official_scheduler())
    with Image.open(path) as im:
        src = im.convert("RGB")
    by_hand = pipe(src, kp, num_inference_steps=2, scale_pose=1.5, scale_app=3.0,
                   guidance_type="uc_down_full", generator=torch.Generator().manual_seed(7)
                   ).images[0]
    assert image.size == by_hand.size == (44, 64)
    np.testing.assert_array_equal(np.asarray(image), np.asarray(by_hand))
    swapped = pipe(src, kp, num_inference_steps=2, scale_pose=3.0, scale_app=1.5,
                   generator=torch.Generator().manual_seed(7)).images[0]
    assert not np.array_equal(np.asarray(swapped), np.asarray(image))  # the scales matter
    assert skeleton.size == (176, 256)
    np.testing.assert_array_equal(np.asarray(skeleton),
                                  np.asarray(render_skeleton_image(kp, (256, 176))))
    np.testing.assert_array_equal(np.asarray(app.preview_pose("walking")),
                                  np.asarray(render_skeleton_image(kp)))
    assert app.preview_pose("no such pose") is None
    with pytest.raises(gr.Error, match="unknown scheduler"):
        app.sampling(1, 2.0, 2.0, 0, "nope")
    with pytest.raises(ValueError, match="guidance"):
        AppHandlers(make_pixel_pipeline(), guidance_type="nope")
