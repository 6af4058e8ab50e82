"""The web app: pose transfer, style transfer, interpolation and animation in a browser.

``uploads`` (checks on what users upload), ``handlers`` (:class:`AppHandlers`: what each button
does, testable without a browser), ``layout`` (the Gradio Blocks, :func:`build_app`,
:func:`launch_app`).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from cfld.app.handlers import AppHandlers  # noqa: E402
from cfld.app.layout import app_theme, build_app, launch_app, load_default_pipeline  # noqa: E402
from cfld.app.uploads import MAX_UPLOAD_MB, Uploads  # noqa: E402

#: The upload checks under their earlier name.
_Inputs = Uploads

__all__ = ["MAX_UPLOAD_MB", "AppHandlers", "Uploads", "app_theme", "build_app", "launch_app",
           "load_default_pipeline"]
