"""The app's handlers as a plain object: no Blocks, no browser."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from cfld.app import AppHandlers  # noqa: E402
from conftest import make_pixel_pipeline  # noqa: E402


def test_handlers_run_without_the_layout(tmp_path):
    app = AppHandlers(make_pixel_pipeline(), guidance_type="none")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 176, 3), dtype=np.uint8)
                    ).save(tmp_path / "a.png")
    image, skeleton = app.run_generate(str(tmp_path / "a.png"), "walking", None, None,
                                       1, 2.0, 2.0, 0, "ddim", progress=lambda *a, **k: None)
    assert image.size == (44, 64) and skeleton.height >= 256
    assert app.preview_pose("walking") is not None and app.preview_pose("no such pose") is None
    with pytest.raises(gr.Error, match="unknown scheduler"):
        app.sampling(1, 2.0, 2.0, 0, "nope")
    with pytest.raises(ValueError, match="guidance"):
        AppHandlers(make_pixel_pipeline(), guidance_type="nope")
