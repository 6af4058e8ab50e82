"""The web app's Gradio layout: pose transfer, style transfer, interpolation and animation.

    cfld app [--model DIR] [--host 127.0.0.1] [--port 7860] [--share]

It serves on 127.0.0.1 by default, sends no analytics and loads nothing from outside (system
fonts, no share link unless ``--share``).  The pose-transfer and animation tabs (one pose
panel: the pose editor) are in :mod:`cfld.app.pose_tab`.  :func:`build_app` takes any
:class:`~cfld.CFLDPipeline` so tests can launch it with a small random model; the buttons call
the methods of :class:`~cfld.app.handlers.AppHandlers` (where everything the app does lives);
:func:`launch_app` applies the server settings (upload size limit, theme, no server-side
rendering).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from cfld.app.handlers import AppHandlers
from cfld.app.pose_tab import animation_tab, pose_tab
from cfld.app.uploads import MAX_UPLOAD_MB, Uploads, upload_folder
from cfld.pose.masks import BODY_PARTS
from cfld.scope import SHIPPED_HEADER
from cfld.shipped import is_shipped

if TYPE_CHECKING:
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

#: Image buttons (no "share": it would post to an outside service).
VIEW_BUTTONS = ["download", "fullscreen"]
#: Results are shown large; small model outputs (e.g. 64×44) enlarged without smoothing.
APP_CSS = """
#result img, #style-result img, #anim-gif img, #interp-strip img {
  height: 480px !important; width: auto !important; max-width: 100% !important;
  object-fit: contain; image-rendering: pixelated;
}
#anim-frames-out img, #interp-frames img { image-rendering: pixelated; }
#pose-preview img { cursor: crosshair; }
"""
#: Gradio's ``delete_cache``: every 10 minutes, remove cached uploads older than an hour.
CACHE_CLEANUP = (600, 3600)


def build_app(pipe: CFLDPipeline, default_steps: int | None = None,
              max_upload_mb: float = MAX_UPLOAD_MB,
              title: str = "CFLD: pose-guided person image synthesis",
              guidance_type: str | None = None) -> gr.Blocks:
    """The Gradio Blocks of the app for ``pipe`` (not launched; see :func:`launch_app`).

    Args:
        pipe: A :class:`~cfld.CFLDPipeline` with an autoencoder.
        default_steps: Initial value of the steps slider (default: the model's own, 50 for
            an ordinary model; :func:`cfld.pipelines.distilled.resolve_sampling`).
        max_upload_mb: Uploads above this size are refused with a message.
        title: Page title.
        guidance_type: Guidance of every generation (default: the model's own, Eq. 7 for an
            ordinary model; ``none`` is 3× faster).
    """
    app = AppHandlers(pipe, max_upload_mb=max_upload_mb, guidance_type=guidance_type,
                      upload_dir=upload_folder())
    out_h, out_w = pipe.default_output_size
    # Uploads are deleted once read (cfld.app.uploads); whatever no handler read, and the
    # results, leave Gradio's cache after an hour (checked every 10 minutes).
    with gr.Blocks(title=title, analytics_enabled=False,
                   delete_cache=CACHE_CLEANUP) as demo:
        what = SHIPPED_HEADER if is_shipped(pipe) else (
            f"Model: `{getattr(pipe, 'name_or_path', None) or 'a pipeline given in Python'}`.")
        gr.Markdown(f"## {title}\nCoarse-to-Fine Latent Diffusion (CVPR 2024). Images are "
                    f"generated at {pipe.image_size[0]}×{pipe.image_size[1]} and shown at "
                    f"{out_h}×{out_w}. Uploads up to {max_upload_mb:g} MB.\n\n{what}",
                    elem_id="header")
        settings = _settings(app, default_steps)
        names = list(app.gallery)
        with gr.Tabs():
            with gr.Tab("Pose transfer", id="pose"):
                table = pose_tab(app, names, settings)
            with gr.Tab("Style transfer", id="style"):
                _style_tab(app, names, settings)
            with gr.Tab("Interpolation", id="interpolate"):
                _interpolation_tab(app, names, settings)
            with gr.Tab("Animation", id="animate"):
                animation_tab(app, names, settings, table)
    demo.max_upload_mb = max_upload_mb  # read by launch_app
    for block in demo.blocks.values():
        if isinstance(block, (gr.Image, gr.ImageEditor)) and block.interactive is not False:
            checked_upload(block, app.uploads)
    return demo


def checked_upload(component: gr.Image | gr.ImageEditor,
                   uploads: Uploads | None = None) -> gr.Image | gr.ImageEditor:
    """Hand a file upload to the handlers as its path, unopened, so that the checks of
    :class:`~cfld.app.uploads.Uploads` (type, size, EXIF, bit depth, decompression bombs) give
    the message; whatever Gradio still has to decode itself fails with a clear message too,
    instead of "Could not preprocess input component".  What Gradio decodes itself (the
    editor's background and layers) is read through ``uploads``, which deletes the files once
    read."""
    original = component.preprocess
    label = component.label or "the upload"

    def preprocess(payload: Any) -> Any:
        path = getattr(payload, "path", None)
        url = getattr(payload, "url", None) or ""
        if isinstance(component, gr.Image) and component.type == "filepath" and path and not (
                url.startswith("data:")):
            return str(path)
        try:
            if uploads is None or getattr(component, "type", None) == "filepath":
                return original(payload)  # a path: the handler reads it (and deletes it)
            return uploads.consume(_payload_paths(payload), lambda: original(payload))
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - Gradio's decoders raise anything
            raise gr.Error(f"{label}: not a readable image ({type(err).__name__}); upload a "
                           "PNG or JPEG photo") from None

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


def _payload_paths(payload: Any) -> list[str]:
    """The file paths of a component's payload (an image, or an editor's background, layers
    and composite)."""
    if payload is None:
        return []
    path = getattr(payload, "path", None)
    if path:
        return [str(path)]
    found: list[str] = []
    for name in ("background", "composite", "layers"):
        part = getattr(payload, name, None)
        for item in part if isinstance(part, list) else [part]:
            found += _payload_paths(item)
    return found


def _settings(app: AppHandlers, default_steps: int | None) -> list[Any]:
    """The sampling settings panel (initial values: the model's own, ``app.defaults``); its
    components, in the order every handler takes them."""
    d = app.defaults
    with gr.Accordion("Sampling settings", open=False):
        with gr.Row():
            steps = gr.Slider(1, 200, value=default_steps or d.num_inference_steps, step=1,
                              label="Steps", elem_id="steps")
            scale_pose = gr.Slider(0, 10, value=d.scale_pose, step=0.1,
                                   label="scale_pose (w_pose)")
            scale_app = gr.Slider(0, 10, value=d.scale_app, step=0.1, label="scale_app (w_app)")
            seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
            scheduler = gr.Dropdown(app.scheduler_choices, value=app.default_scheduler,
                                    label="Scheduler")
    return [steps, scale_pose, scale_app, seed, scheduler]


def _style_tab(app: AppHandlers, names: list[str], settings: list[Any]) -> None:
    """Reference photo + painted mask / mask image / body parts + new source."""
    gr.Markdown("Paint over the region to restyle (any brush colour), upload a "
                "mask (white = restyle), or tick body parts. The result keeps the "
                "reference's pose and everything outside the mask.")
    with gr.Row():
        editor = gr.ImageEditor(type="pil", label="Reference photo",
                                sources=["upload"], elem_id="reference-editor",
                                brush=gr.Brush(colors=["#ffffff"],
                                               color_mode="fixed"),
                                transforms=(), layers=False)
        with gr.Column():
            new_source = gr.Image(type="filepath", label="New source (appearance)",
                                  sources=["upload"], elem_id="style-source")
            parts = gr.CheckboxGroup(list(BODY_PARTS), label="…or body parts",
                                     elem_id="style-parts")
            mask_upload = gr.Image(type="filepath", label="…or a mask image",
                                   sources=["upload"], elem_id="style-mask",
                                   image_mode="L")
            ref_pose = gr.File(label="Reference keypoints (optional; default: "
                                     "estimated)", file_types=[".json"],
                               elem_id="style-ref-pose")
    style_btn = gr.Button("Transfer style", variant="primary", elem_id="style-run")
    with gr.Row():
        style_out = gr.Image(label="Result", format="png", interactive=False,
                             elem_id="style-result", height=512,
                             buttons=VIEW_BUTTONS)
        style_mask = gr.Image(label="Mask used", format="png", interactive=False,
                              height=512, buttons=VIEW_BUTTONS,
                              elem_id="style-mask-used")
    style_btn.click(app.run_style, [editor, mask_upload, parts, ref_pose, new_source, *settings],
                    [style_out, style_mask])


def _interpolation_tab(app: AppHandlers, names: list[str], settings: list[Any]) -> None:
    """Two sources and one pose → frames from A to B."""
    with gr.Row():
        src_a = gr.Image(type="filepath", label="Source A (t = 0)",
                         sources=["upload"], elem_id="interp-a")
        src_b = gr.Image(type="filepath", label="Source B (t = 1)",
                         sources=["upload"], elem_id="interp-b")
        with gr.Column():
            interp_pose = gr.Radio(names, value=names[0], label="Example pose",
                                   elem_id="interp-pose")
            interp_json = gr.File(label="…or a keypoint JSON (used instead)",
                                  file_types=[".json"])
            n_frames = gr.Slider(2, 12, value=5, step=1, label="Frames")
    interp_btn = gr.Button("Interpolate", variant="primary", elem_id="interp-run")
    interp_strip = gr.Image(label="Strip (A → B)", format="png", interactive=False,
                            elem_id="interp-strip", height=512, buttons=VIEW_BUTTONS)
    interp_frames = gr.Gallery(label="Frames", columns=4, height="auto", object_fit="contain",
                               format="png", elem_id="interp-frames")
    interp_btn.click(app.run_interpolate,
                     [src_a, src_b, interp_pose, interp_json, n_frames, *settings],
                     [interp_strip, interp_frames])


def app_theme() -> gr.themes.Base:
    """The default look with system fonts (the stock theme would fetch Google Fonts)."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "monospace"]
    return gr.themes.Default(font=system, font_mono=mono)


def launch_app(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860,
               **kwargs: Any) -> object:
    """Launch ``demo`` locally (no share link unless ``share=True``), no analytics, upload size
    limit, system fonts."""
    mb = getattr(demo, "max_upload_mb", MAX_UPLOAD_MB)
    options: dict[str, Any] = dict(server_name=host, server_port=port, share=False,
                                   max_file_size=f"{mb:g}mb", theme=app_theme(), css=APP_CSS,
                                   ssr_mode=False, footer_links=[], show_error=True,
                                   enable_monitoring=False, mcp_server=False)
    options.update(kwargs)
    return demo.launch(**options)


def load_default_pipeline(model: str | None = None, vae: str | None = None,
                          device: str | None = None) -> CFLDPipeline:
    """``model`` (folder or hub id), else the shipped small model."""
    from cfld.shipped import load_pipeline

    return load_pipeline(model, vae, None, device)


__all__ = ["MAX_UPLOAD_MB", "app_theme", "build_app", "launch_app", "load_default_pipeline"]
