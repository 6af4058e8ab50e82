"""The web app: pose transfer, style transfer, interpolation and animation in a browser.

    cfld app [--model DIR] [--host 127.0.0.1] [--port 7860]

Built with Gradio; it serves on 127.0.0.1 by default, sends no analytics and loads nothing from
outside (system fonts, no share link).  :func:`build_app` takes any :class:`~cfld.CFLDPipeline`
so tests can launch it with a small random model; :func:`launch_app` applies the server
settings (upload size limit, theme, no server-side rendering).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import json  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402

from cfld.animation import (  # noqa: E402
    animate,
    gallery_poses,
    interpolate_poses,
    parse_pose_sequence,
    save_gif,
)
from cfld.pipelines.editing import (  # noqa: E402
    BODY_PARTS,
    image_strip,
    interpolate,
    part_mask,
    style_transfer,
)
from cfld.pipelines.inputs import keypoints_from_any  # noqa: E402
from cfld.pipelines.schedulers import SCHEDULERS, make_scheduler  # noqa: E402
from cfld.pose import Keypoints, render_skeleton_image  # noqa: E402

#: Uploads larger than this are refused (also enforced by the server, see :func:`launch_app`).
MAX_UPLOAD_MB = 10
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
#: Largest side accepted for an uploaded image (decompression-bomb guard).
MAX_IMAGE_SIDE = 8192

#: Image buttons (no "share": it would post to an outside service).
VIEW_BUTTONS = ["download", "fullscreen"]
#: Small model outputs (e.g. 64×44) are shown enlarged, without smoothing.
APP_CSS = """
#result img, #style-result img {
  height: 256px !important; width: auto !important; max-width: 100% !important;
  object-fit: contain; image-rendering: pixelated;
}
"""
GALLERY_HELP = ("Target pose: an uploaded keypoint JSON wins over an uploaded photo, which wins "
                "over the gallery pose.")


class _Inputs:
    """Checks on what users upload; every failure is a :class:`gr.Error` with a message."""

    def __init__(self, max_mb: float) -> None:
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.max_mb = max_mb

    def _size(self, path: str | os.PathLike, what: str) -> Path:
        p = Path(path)
        if not p.is_file():
            raise gr.Error(f"{what}: the upload did not arrive, please upload it again")
        if p.stat().st_size > self.max_bytes:
            raise gr.Error(f"{what} is {p.stat().st_size / 2**20:.1f} MB; the limit is "
                           f"{self.max_mb:g} MB")
        return p

    def image(self, value: Any, what: str, required: bool = True) -> Image.Image | None:
        """An uploaded image (file path, PIL or array) → RGB PIL, or a gr.Error."""
        if value is None:
            if required:
                raise gr.Error(f"please upload the {what}")
            return None
        if isinstance(value, Image.Image):
            return value.convert("RGB")
        if isinstance(value, np.ndarray):
            return Image.fromarray(value.astype(np.uint8)).convert("RGB")
        p = self._size(value, what)
        if p.suffix.lower() not in IMAGE_TYPES:
            raise gr.Error(f"{what} must be an image ({', '.join(IMAGE_TYPES)}), got "
                           f"'{p.suffix or p.name}'")
        try:
            with Image.open(p) as img:
                if max(img.size) > MAX_IMAGE_SIDE:
                    raise gr.Error(f"{what} is {img.size[0]}×{img.size[1]} pixels; the limit is "
                                   f"{MAX_IMAGE_SIDE} on a side")
                return img.convert("RGB")
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
            raise gr.Error(f"{what} is not a readable image ({err})") from None

    def json(self, value: Any, what: str) -> Any:
        p = self._size(value, what)
        if p.suffix.lower() != ".json":
            raise gr.Error(f"{what} must be a .json file, got '{p.suffix or p.name}'")
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise gr.Error(f"{what} is not valid JSON ({err})") from None

    def mask(self, editor: Any, upload: Any) -> Any:
        """The mask painted on the editor's layers, else the uploaded mask image."""
        if upload is not None:
            p = self._size(upload, "mask")
            if p.suffix.lower() not in IMAGE_TYPES:
                raise gr.Error(f"the mask must be an image ({', '.join(IMAGE_TYPES)})")
            try:
                with Image.open(p) as img:
                    img.load()
                    return img.copy()
            except (UnidentifiedImageError, OSError) as err:
                raise gr.Error(f"the mask is not a readable image ({err})") from None
        editor = editor or {}
        background = editor.get("background")
        size = None
        if background is not None:
            size = (background.size if isinstance(background, Image.Image)
                    else np.asarray(background).shape[1::-1])
        painted = None
        for layer in editor.get("layers") or []:
            if layer is None:
                continue
            img = layer if isinstance(layer, Image.Image) else Image.fromarray(np.asarray(layer))
            arr = np.asarray(img)
            alpha = arr[..., 3] if arr.ndim == 3 and arr.shape[-1] == 4 else arr.max(-1)
            m = Image.fromarray((alpha > 0).astype(np.uint8) * 255)
            if size is not None and m.size != tuple(size):  # a layer of another canvas size
                m = m.resize(tuple(size), Image.NEAREST)
            m_arr = np.asarray(m) > 0
            painted = m_arr if painted is None else painted | m_arr
        if painted is None or not painted.any():
            return None
        return Image.fromarray(painted.astype(np.uint8) * 255)


def _error(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user errors (ValueError, FileNotFoundError) into messages shown in the app."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError) as err:
            raise gr.Error(str(err)) from None

    return wrapper


def build_app(pipe: Any, default_steps: int = 50, max_upload_mb: float = MAX_UPLOAD_MB,
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
    from cfld.pipelines.guidance import get_guidance

    get_guidance(guidance_type)  # a clear error for an unknown name, before serving
    pipe.set_progress_bar_config(disable=True)
    base_scheduler = pipe.scheduler
    lock = threading.Lock()  # one generation at a time: the pipeline's scheduler is shared
    inputs = _Inputs(max_upload_mb)
    gallery = gallery_poses()
    names = list(gallery)
    out_h, out_w = pipe.default_output_size
    gif_dir = tempfile.mkdtemp(prefix="cfld-app-")  # animations handed to the browser

    def sampling(steps: float, scale_pose: float, scale_app: float, seed: float,
                 scheduler: str) -> tuple[dict[str, Any], torch.Generator]:
        if scheduler not in SCHEDULERS:
            raise gr.Error(f"unknown scheduler {scheduler!r}")
        pipe.scheduler = make_scheduler(scheduler, base_scheduler)
        g = torch.Generator(device=pipe._execution_device).manual_seed(int(seed or 0))
        kw = dict(num_inference_steps=max(1, int(steps)), scale_pose=float(scale_pose),
                  scale_app=float(scale_app), guidance_type=guidance_type)
        return kw, g

    def progress_fn(progress: gr.Progress, label: str) -> Callable[[int, int], None]:
        def on_step(done: int, total: int) -> None:
            progress((done, total), desc=label, unit="steps")
        return on_step

    def target_pose(gallery_name: str | None, pose_photo: Any, pose_json: Any) -> Keypoints:
        if pose_json is not None:
            try:
                return Keypoints.from_json(inputs.json(pose_json, "keypoint JSON"))
            except ValueError as err:
                raise gr.Error(f"keypoint JSON: {err}") from None
        photo = inputs.image(pose_photo, "pose photo", required=False)
        if photo is not None:
            try:
                return keypoints_from_any(photo)
            except (ValueError, ImportError) as err:
                raise gr.Error(f"could not find a pose in the photo: {err}") from None
        if not gallery_name or gallery_name not in gallery:
            raise gr.Error("pick a gallery pose, or upload a pose photo or a keypoint JSON")
        return gallery[gallery_name]

    # The skeleton beside the result: same aspect, at least 256 pixels high to be readable.
    skel_h = max(out_h, 256)
    skel_size = (skel_h, int(round(out_w * skel_h / out_h)))

    def skeleton(kp: Keypoints) -> Image.Image:
        return render_skeleton_image(kp, skel_size)

    # ---------------------------------------------------------------- handlers
    @_error
    def preview_pose(gallery_name: str | None, pose_photo: Any = None,
                     pose_json: Any = None) -> Image.Image | None:
        try:
            return render_skeleton_image(target_pose(gallery_name, pose_photo, pose_json))
        except gr.Error:
            return None

    @_error
    def run_generate(source: Any, gallery_name: str, pose_photo: Any, pose_json: Any,
                     steps: float, scale_pose: float, scale_app: float, seed: float,
                     scheduler: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, Any]:
        src = inputs.image(source, "source photo")
        kp = target_pose(gallery_name, pose_photo, pose_json)
        with lock:
            kw, g = sampling(steps, scale_pose, scale_app, seed, scheduler)
            on_step = progress_fn(progress, "denoising")
            total = kw["num_inference_steps"]
            image = pipe(src, kp, generator=g, callback_on_step_end=lambda _p, i, _t, _d:
                         on_step(i + 1, total), **kw).images[0]
        return image, skeleton(kp)

    @_error
    def run_style(editor: Any, mask_upload: Any, parts: list[str], ref_pose_json: Any,
                  new_source: Any, steps: float, scale_pose: float, scale_app: float,
                  seed: float, scheduler: str,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, Any]:
        reference = inputs.image((editor or {}).get("background"), "reference photo")
        src = inputs.image(new_source, "new source photo")
        mask = inputs.mask(editor, mask_upload)
        if mask is None:
            if not parts:
                raise gr.Error("paint the region to restyle on the reference, upload a mask, "
                               "or tick body parts")
            mask = list(parts)
        if ref_pose_json is not None:
            ref_kp = Keypoints.from_json(inputs.json(ref_pose_json, "reference keypoints"))
        else:
            try:
                ref_kp = keypoints_from_any(reference)
            except (ValueError, ImportError) as err:
                raise gr.Error(f"could not find the reference's pose: {err}; upload its "
                               "keypoints") from None
        if not isinstance(mask, Image.Image):  # body parts → the mask drawn from the pose
            mask = Image.fromarray(part_mask(ref_kp, mask)).resize(reference.size,
                                                                   Image.NEAREST)
        with lock:
            kw, g = sampling(steps, scale_pose, scale_app, seed, scheduler)
            image = style_transfer(pipe, reference, mask, src, generator=g,
                                   reference_pose=ref_kp,
                                   on_step=progress_fn(progress, "style transfer"), **kw)[0]
        return image, mask

    @_error
    def run_interpolate(source_a: Any, source_b: Any, gallery_name: str, pose_json: Any,
                        frames: float, steps: float, scale_pose: float, scale_app: float,
                        seed: float, scheduler: str,
                        progress: gr.Progress = gr.Progress()) -> tuple[Any, Any]:
        a = inputs.image(source_a, "source A")
        b = inputs.image(source_b, "source B")
        kp = target_pose(gallery_name, None, pose_json)
        with lock:
            kw, g = sampling(steps, scale_pose, scale_app, seed, scheduler)
            images = interpolate(pipe, a, b, kp, n_frames=int(frames), generator=g,
                                 on_step=progress_fn(progress, "interpolating"), **kw)
        return image_strip(images), images

    @_error
    def run_animate(source: Any, sequence_json: Any, start: str, end: str, frames: float,
                    fps: float, steps: float, scale_pose: float, scale_app: float, seed: float,
                    scheduler: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, Any]:
        src = inputs.image(source, "source photo")
        if sequence_json is not None:
            poses = parse_pose_sequence(inputs.json(sequence_json, "pose sequence"))
        else:
            if start not in gallery or end not in gallery:
                raise gr.Error("pick the first and last gallery poses, or upload a sequence")
            poses = interpolate_poses(gallery[start], gallery[end], int(frames))
        with lock:
            kw, g = sampling(steps, scale_pose, scale_app, seed, scheduler)
            images = animate(pipe, src, poses, generator=g,
                             on_step=progress_fn(progress, "animating"), **kw)
        fd, gif = tempfile.mkstemp(suffix=".gif", prefix="animation-", dir=gif_dir)
        os.close(fd)
        save_gif(images, gif, fps=float(fps))
        return gif, images

    # ---------------------------------------------------------------- layout
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(f"## {title}\nCoarse-to-Fine Latent Diffusion (CVPR 2024). Images are "
                    f"generated at {pipe.image_size[0]}×{pipe.image_size[1]} and shown at "
                    f"{out_h}×{out_w}. Uploads up to {max_upload_mb:g} MB.")
        with gr.Accordion("Sampling settings", open=False):
            with gr.Row():
                steps = gr.Slider(1, 200, value=default_steps, step=1, label="Steps",
                                  elem_id="steps")
                scale_pose = gr.Slider(0, 10, value=2.0, step=0.1, label="scale_pose (w_pose)")
                scale_app = gr.Slider(0, 10, value=2.0, step=0.1, label="scale_app (w_app)")
                seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
                scheduler = gr.Dropdown(sorted(SCHEDULERS), value="ddpm", label="Scheduler")
        settings = [steps, scale_pose, scale_app, seed, scheduler]

        with gr.Tabs():
            with gr.Tab("Pose transfer", id="pose"):
                with gr.Row():
                    source = gr.Image(type="filepath", label="Source photo",
                                      sources=["upload", "clipboard"], elem_id="source")
                    with gr.Column():
                        pose_pick = gr.Radio(names, value=names[0], label="Gallery pose",
                                             elem_id="gallery-pose", info=GALLERY_HELP)
                        pose_preview = gr.Image(value=render_skeleton_image(gallery[names[0]]),
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
                    comp.change(preview_pose, [pose_pick, pose_photo, pose_json], pose_preview,
                                show_progress="hidden")
                generate.click(run_generate, [source, pose_pick, pose_photo, pose_json,
                                              *settings], [result, result_pose])

            with gr.Tab("Style transfer", id="style"):
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
                style_btn.click(run_style, [editor, mask_upload, parts, ref_pose, new_source,
                                            *settings], [style_out, style_mask])

            with gr.Tab("Interpolation", id="interpolate"):
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
                interp_btn.click(run_interpolate, [src_a, src_b, interp_pose, interp_json,
                                                   n_frames, *settings],
                                 [interp_strip, interp_frames])

            with gr.Tab("Animation", id="animate"):
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
                anim_btn.click(run_animate, [anim_src, anim_json, anim_start, anim_end,
                                             anim_frames, fps, *settings],
                               [anim_gif, anim_frames_out])
    demo.max_upload_mb = max_upload_mb  # read by launch_app
    return demo


def app_theme() -> gr.themes.Base:
    """The default look with system fonts (the stock theme would fetch Google Fonts)."""
    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "monospace"]
    return gr.themes.Default(font=system, font_mono=mono)


def launch_app(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860,
               **kwargs: Any) -> Any:
    """Launch ``demo`` locally: no share link, no analytics, upload size limit, system fonts."""
    mb = getattr(demo, "max_upload_mb", MAX_UPLOAD_MB)
    options: dict[str, Any] = dict(server_name=host, server_port=port, share=False,
                                   max_file_size=f"{mb:g}mb", theme=app_theme(), css=APP_CSS,
                                   ssr_mode=False, footer_links=[], show_error=True,
                                   enable_monitoring=False, mcp_server=False)
    options.update(kwargs)
    return demo.launch(**options)


def load_default_pipeline(model: str | None = None, vae: str | None = None,
                          device: str | None = None) -> Any:
    """``model`` (folder or hub id), else the shipped small model, with a clear error."""
    try:
        from cfld.shipped import load_pipeline
    except ImportError:
        raise FileNotFoundError("no model given and this installation has no shipped model "
                                "(cfld.shipped); pass --model DIR") from None
    return load_pipeline(model, vae, None, device)


__all__ = ["MAX_UPLOAD_MB", "app_theme", "build_app", "launch_app", "load_default_pipeline"]
