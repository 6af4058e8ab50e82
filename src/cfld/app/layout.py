"""The web app's Gradio layout: pose transfer, style transfer, interpolation and animation.

    cfld app [--model DIR] [--host 127.0.0.1] [--port 7860]

It serves on 127.0.0.1 by default, sends no analytics and loads nothing from outside (system
fonts, no share link).  :func:`build_app` takes any :class:`~cfld.CFLDPipeline` so tests can
launch it with a small random model; the buttons call the methods of
:class:`~cfld.app.handlers.AppHandlers` (where everything the app does lives);
:func:`launch_app` applies the server settings (upload size limit, theme, no server-side
rendering).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from cfld.app.handlers import AppHandlers
from cfld.app.uploads import MAX_UPLOAD_MB
from cfld.pipelines.schedulers import SCHEDULERS
from cfld.pose import render_skeleton_image
from cfld.pose.masks import BODY_PARTS

if TYPE_CHECKING:
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

#: Image buttons (no "share": it would post to an outside service).
VIEW_BUTTONS = ["download", "fullscreen"]
#: Small model outputs (e.g. 64×44) are shown enlarged, without smoothing.
APP_CSS = """
#result img, #style-result img {
  height: 256px !important; width: auto !important; max-width: 100% !important;
  object-fit: contain; image-rendering: pixelated;
}
"""
#: Gradio's ``delete_cache``: every 10 minutes, remove cached uploads older than an hour.
CACHE_CLEANUP = (600, 3600)
GALLERY_HELP = ("Target pose: an uploaded keypoint JSON wins over an uploaded photo, which wins "
                "over the gallery pose.")


def build_app(pipe: CFLDPipeline, default_steps: int = 50, max_upload_mb: float = MAX_UPLOAD_MB,
              title: str = "CFLD: pose-guided person image synthesis",
              guidance_type: str = "uc_down_full") -> gr.Blocks:
    """The Gradio Blocks of the app for ``pipe`` (not launched; see :func:`launch_app`).

    Args:
        pipe: A :class:`~cfld.CFLDPipeline` with an autoencoder.
        default_steps: Initial value of the steps slider.
        max_upload_mb: Uploads above this size are refused with a message.
        title: Page title.
        guidance_type: Guidance of every generation (default Eq. 7; ``none`` is 3× faster).
    """
    app = AppHandlers(pipe, max_upload_mb=max_upload_mb, guidance_type=guidance_type)
    out_h, out_w = pipe.default_output_size
    # Uploads and results leave Gradio's cache after an hour (checked every 10 minutes).
    with gr.Blocks(title=title, analytics_enabled=False,
                   delete_cache=CACHE_CLEANUP) as demo:
        gr.Markdown(f"## {title}\nCoarse-to-Fine Latent Diffusion (CVPR 2024). Images are "
                    f"generated at {pipe.image_size[0]}×{pipe.image_size[1]} and shown at "
                    f"{out_h}×{out_w}. Uploads up to {max_upload_mb:g} MB.")
        settings = _settings(default_steps)
        names = list(app.gallery)
        with gr.Tabs():
            with gr.Tab("Pose transfer", id="pose"):
                _pose_tab(app, names, settings)
            with gr.Tab("Style transfer", id="style"):
                _style_tab(app, names, settings)
            with gr.Tab("Interpolation", id="interpolate"):
                _interpolation_tab(app, names, settings)
            with gr.Tab("Animation", id="animate"):
                _animation_tab(app, names, settings)
    demo.max_upload_mb = max_upload_mb  # read by launch_app
    for block in demo.blocks.values():
        if isinstance(block, (gr.Image, gr.ImageEditor)) and block.interactive is not False:
            checked_upload(block)
    return demo


def checked_upload(component: gr.Image | gr.ImageEditor) -> gr.Image | gr.ImageEditor:
    """Hand a file upload to the handlers as its path, unopened, so that the checks of
    :class:`~cfld.app.uploads.Uploads` (type, size, EXIF, bit depth, decompression bombs) give
    the message; whatever Gradio still has to decode itself fails with a clear message too,
    instead of "Could not preprocess input component"."""
    original = component.preprocess
    label = component.label or "the upload"

    def preprocess(payload: Any) -> Any:
        path = getattr(payload, "path", None)
        url = getattr(payload, "url", None) or ""
        if isinstance(component, gr.Image) and component.type == "filepath" and path and not (
                url.startswith("data:")):
            return str(path)
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - Gradio's decoders raise anything
            raise gr.Error(f"{label}: not a readable image ({type(err).__name__}); upload a "
                           "PNG or JPEG photo") from None

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


def _settings(default_steps: int) -> list[Any]:
    """The sampling settings panel; its components, in the order every handler takes them."""
    with gr.Accordion("Sampling settings", open=False):
        with gr.Row():
            steps = gr.Slider(1, 200, value=default_steps, step=1, label="Steps",
                              elem_id="steps")
            scale_pose = gr.Slider(0, 10, value=2.0, step=0.1, label="scale_pose (w_pose)")
            scale_app = gr.Slider(0, 10, value=2.0, step=0.1, label="scale_app (w_app)")
            seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
            scheduler = gr.Dropdown(sorted(SCHEDULERS), value="ddpm", label="Scheduler")
    return [steps, scale_pose, scale_app, seed, scheduler]


def _pose_tab(app: AppHandlers, names: list[str], settings: list[Any]) -> None:
    """Source photo + target pose (gallery, photo or JSON) → result."""
    with gr.Row():
        source = gr.Image(type="filepath", label="Source photo",
                          sources=["upload", "clipboard"], elem_id="source")
        with gr.Column():
            pose_pick = gr.Radio(names, value=names[0], label="Gallery pose",
                                 elem_id="gallery-pose", info=GALLERY_HELP)
            pose_preview = gr.Image(value=render_skeleton_image(app.gallery[names[0]]),
                                    label="Target pose", interactive=False,
                                    elem_id="pose-preview", height=256,
                                    buttons=VIEW_BUTTONS)
        with gr.Column():
            pose_photo = gr.Image(type="filepath", label="…or a photo of someone "
                                  "in the pose (estimated offline)",
                                  sources=["upload"], elem_id="pose-photo")
            pose_json = gr.File(label="…or a keypoint JSON", file_types=[".json"],
                                elem_id="pose-json")
    generate = gr.Button("Generate", variant="primary", elem_id="generate")
    with gr.Row():
        result = gr.Image(label="Result", format="png", interactive=False,
                          elem_id="result", height=320, buttons=VIEW_BUTTONS)
        result_pose = gr.Image(label="Target skeleton", format="png",
                               interactive=False, elem_id="result-skeleton",
                               height=320, buttons=VIEW_BUTTONS)
    for comp in (pose_pick, pose_photo, pose_json):
        comp.change(app.preview_pose, [pose_pick, pose_photo, pose_json], pose_preview,
                    show_progress="hidden")
    generate.click(app.run_generate, [source, pose_pick, pose_photo, pose_json, *settings],
                   [result, result_pose])


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
                             elem_id="style-result", height=320,
                             buttons=VIEW_BUTTONS)
        style_mask = gr.Image(label="Mask used", format="png", interactive=False,
                              height=320, buttons=VIEW_BUTTONS,
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
            interp_pose = gr.Radio(names, value=names[0], label="Gallery pose")
            interp_json = gr.File(label="…or a keypoint JSON", file_types=[".json"])
            n_frames = gr.Slider(2, 12, value=5, step=1, label="Frames")
    interp_btn = gr.Button("Interpolate", variant="primary", elem_id="interp-run")
    interp_strip = gr.Image(label="Strip (A → B)", format="png", interactive=False,
                            height=320, buttons=VIEW_BUTTONS)
    interp_frames = gr.Gallery(label="Frames", columns=6, format="png")
    interp_btn.click(app.run_interpolate,
                     [src_a, src_b, interp_pose, interp_json, n_frames, *settings],
                     [interp_strip, interp_frames])


def _animation_tab(app: AppHandlers, names: list[str], settings: list[Any]) -> None:
    """One source through a pose sequence → GIF and frames."""
    with gr.Row():
        anim_src = gr.Image(type="filepath", label="Source photo",
                            sources=["upload"], elem_id="anim-source")
        with gr.Column():
            anim_json = gr.File(label="Pose sequence JSON ({\"frames\": [...]})",
                                file_types=[".json"])
            anim_start = gr.Dropdown(names, value=names[0],
                                     label="…or from gallery pose")
            anim_end = gr.Dropdown(names, value=names[min(1, len(names) - 1)],
                                   label="to gallery pose")
            anim_frames = gr.Slider(2, 24, value=6, step=1, label="Frames")
            fps = gr.Slider(1, 30, value=8, step=1, label="GIF frames per second")
    anim_btn = gr.Button("Animate", variant="primary", elem_id="anim-run")
    with gr.Row():
        anim_gif = gr.Image(label="Animation (GIF)", type="filepath",
                            interactive=False, height=320, buttons=VIEW_BUTTONS)
        anim_frames_out = gr.Gallery(label="Frames", columns=6, format="png")
    anim_btn.click(app.run_animate,
                   [anim_src, anim_json, anim_start, anim_end, anim_frames, fps, *settings],
                   [anim_gif, anim_frames_out])


def app_theme() -> gr.themes.Base:
    """The default look with system fonts (the stock theme would fetch Google Fonts)."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "monospace"]
    return gr.themes.Default(font=system, font_mono=mono)


def launch_app(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860,
               **kwargs: Any) -> object:
    """Launch ``demo`` locally: no share link, no analytics, upload size limit, system fonts."""
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
