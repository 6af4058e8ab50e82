"""What the web app does, as a plain class: one method per button, no layout.

:class:`AppHandlers` takes a pipeline and turns uploads into results (pose transfer, style
transfer, interpolation, animation).  The Gradio layout (:mod:`cfld.app.layout`) only wires its
methods to buttons, so every handler can be called (and tested) without a browser.  User errors
are :class:`gr.Error` messages shown in the app (never a traceback in the server log); notes
about the inputs (the shipped model given a real photo, a photo without a person) are
:func:`gr.Warning` pop-ups.  The pose editor (:mod:`cfld.app.pose_editor`) keeps the target pose
as a keypoint table: an example pose, a photo's estimated pose or a keypoint JSON fills it, its
joints can be edited or moved by a click, and generating uses what it holds.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr
import torch
from PIL import Image

from cfld.animation import (
    animate,
    gallery_poses,
    interpolate_poses,
    interpolate_sequence,
    parse_pose_sequence,
    save_gif,
)
from cfld.app import pose_editor
from cfld.app.uploads import MAX_UPLOAD_MB, Upload, Uploads
from cfld.checks.numbers import FPS, FRAMES, SEED
from cfld.checks.sampling import check_sampling
from cfld.pipelines.distilled import resolve_sampling
from cfld.pipelines.editing import image_strip, interpolate, style_transfer
from cfld.pipelines.guidance import get_guidance
from cfld.pipelines.inputs import keypoints_from_any
from cfld.pipelines.schedulers import SCHEDULERS, make_scheduler
from cfld.pose import JOINT_NAMES, Keypoints, render_skeleton_image
from cfld.pose.masks import part_mask
from cfld.scope import source_notes
from cfld.shipped import is_shipped

if TYPE_CHECKING:
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

F = TypeVar("F", bound=Callable[..., Any])
#: Animations are kept this long for the browser to fetch, then removed.
RESULT_MAX_AGE_S = 3600.0
#: The name of the pose editor's pose among the animation's choices.
EDITED_POSE = "(edited pose)"


def user_errors(fn: F) -> F:
    """Turn user errors (ValueError, FileNotFoundError) into messages shown in the app."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as err:
            err.print_exception = False  # a message for the user, not a traceback in the log
            raise
        except (ValueError, FileNotFoundError) as err:
            raise gr.Error(str(err), print_exception=False) from None

    return wrapper  # type: ignore[return-value]


def _on_step(progress: gr.Progress, label: str) -> Callable[[int, int], None]:
    """Progress with the time left, measured from the steps done so far."""
    started = time.perf_counter()

    def on_step(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        left = elapsed / done * (total - done) if done else None
        eta = f", about {left:.0f} s left" if left is not None and done < total else ""
        progress((done, total), desc=f"{label}{eta}", unit="steps")
    return on_step


class AppHandlers:
    """The app's actions for one pipeline.

    Args:
        pipe: A :class:`~cfld.CFLDPipeline` with an autoencoder.
        max_upload_mb: Uploads above this size are refused with a message.
        guidance_type: Guidance of every generation (default: the model's own, Eq. 7 for an
            ordinary model, ``none`` for a distilled one;
            :func:`cfld.pipelines.distilled.resolve_sampling`).
        upload_dir: Gradio's upload folder (:func:`cfld.app.uploads.upload_folder`): its files
            are deleted as soon as a handler has read them; None (the Python API) deletes
            nothing.
    """

    def __init__(self, pipe: CFLDPipeline, max_upload_mb: float = MAX_UPLOAD_MB,
                 guidance_type: str | None = None,
                 upload_dir: str | os.PathLike | None = None) -> None:
        if guidance_type is not None:
            get_guidance(guidance_type)  # a clear error for an unknown name, before serving
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        #: The model's own sampling (the panel's initial values), the CLI's rule.
        self.defaults = resolve_sampling(pipe, guidance_type=guidance_type)
        self.guidance_type = self.defaults.guidance_type
        self.base_scheduler = pipe.scheduler
        # A folder's own scheduler that has no name here (a distilled LCMScheduler) is offered
        # under its class name, first and selected.
        own = self.defaults.scheduler is None
        self.default_scheduler = (f"{self.defaults.scheduler_label} (the model's own)" if own
                                  else self.defaults.scheduler)
        self.scheduler_choices = ([self.default_scheduler] if own else []) + sorted(SCHEDULERS)
        self.lock = threading.Lock()  # one generation at a time: the scheduler is shared
        self.uploads = Uploads(max_upload_mb, upload_dir)  # uploads deleted once read
        self.gallery = gallery_poses()
        self.gif_dir = tempfile.mkdtemp(prefix="cfld-app-")  # animations for the browser
        os.chmod(self.gif_dir, 0o700)  # results of this user's session only
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.gif_dir, True)
        out_h, out_w = pipe.default_output_size
        # The skeleton beside the result: same aspect, at least 256 pixels high to be readable.
        skel_h = max(out_h, 256)
        self.skeleton_size = (skel_h, int(round(out_w * skel_h / out_h)))

    # ---------------------------------------------------------------- shared steps
    def sampling(self, steps: float, scale_pose: float, scale_app: float, seed: float,
                 scheduler: str) -> tuple[dict[str, Any], torch.Generator]:
        """Pipeline keyword arguments and a seeded generator from the settings panel."""
        if scheduler not in self.scheduler_choices:
            raise gr.Error(f"unknown scheduler {scheduler!r}")
        # The pipeline's own rules (never clamped or coerced): a bad value is a message.
        checked = check_sampling(steps, scale_pose, scale_app)
        seed = SEED.check(0 if seed is None else seed, "seed")
        self.pipe.scheduler = (self.base_scheduler if scheduler not in SCHEDULERS
                               else make_scheduler(scheduler, self.base_scheduler))
        g = torch.Generator(device=self.pipe._execution_device).manual_seed(int(seed))
        kw = dict(num_inference_steps=checked["num_inference_steps"],
                  scale_pose=checked["scale_pose"], scale_app=checked["scale_app"],
                  guidance_type=self.guidance_type)
        return kw, g

    def target_pose(self, gallery_name: str | None, pose_photo: Upload,
                    pose_json: str | None) -> Keypoints:
        """The uploaded keypoint JSON, else the pose of the uploaded photo, else the gallery's."""
        if pose_json is not None:
            try:
                return Keypoints.from_json(self.uploads.json(pose_json, "keypoint JSON"))
            except ValueError as err:
                raise gr.Error(f"keypoint JSON: {err}") from None
        photo = self.uploads.image(pose_photo, "pose photo", required=False)
        if photo is not None:
            try:
                return keypoints_from_any(photo)
            except (ValueError, ImportError) as err:
                raise gr.Error(f"could not find a pose in the photo: {err}") from None
        if not gallery_name or gallery_name not in self.gallery:
            raise gr.Error("pick a gallery pose, or upload a pose photo or a keypoint JSON")
        return self.gallery[gallery_name]

    def reference_pose(self, reference: Image.Image, pose_json: str | None) -> Keypoints:
        """The reference's uploaded keypoints, else its estimated pose."""
        if pose_json is not None:
            return Keypoints.from_json(self.uploads.json(pose_json, "reference keypoints"))
        try:
            return keypoints_from_any(reference)
        except (ValueError, ImportError) as err:
            raise gr.Error(f"could not find the reference's pose: {err}; upload its "
                           "keypoints") from None

    # ---------------------------------------------------------------- buttons
    @user_errors
    def preview_pose(self, gallery_name: str | None, pose_photo: Upload = None,
                     pose_json: str | None = None) -> Image.Image | None:
        """The skeleton of the chosen target pose (None while nothing valid is chosen)."""
        try:
            return render_skeleton_image(self.target_pose(gallery_name, pose_photo, pose_json))
        except gr.Error:
            return None

    # ---------------------------------------------------------------- the pose editor
    @user_errors
    def editor_from_example(self, name: str | None) -> tuple[Any, Image.Image]:
        """Fill the editor with an example pose: (table, preview)."""
        if not name or name not in self.gallery:
            raise gr.Error(f"pick an example pose ({', '.join(self.gallery)})")
        table = pose_editor.keypoints_to_table(self.gallery[name])
        return table, pose_editor.render_preview(table)

    @user_errors
    def editor_from_photo(self, photo: Upload) -> tuple[Any, Image.Image, Any]:
        """Fill the editor with the pose estimated from a photo: (table, preview, the example
        picker cleared, so that what the editor holds is clear)."""
        image = self.uploads.image(photo, "pose photo")
        try:
            kp = keypoints_from_any(image)
        except (ValueError, ImportError) as err:
            raise gr.Error(f"could not find a pose in the photo: {err}") from None
        table = pose_editor.keypoints_to_table(kp)
        missing = [n for n, ok in zip(JOINT_NAMES, kp.present.tolist()) if not ok]
        if missing:
            gr.Warning(f"not found in the photo: {', '.join(missing)}; place them in the "
                       "editor if you want them")
        return table, pose_editor.render_preview(table), gr.update(value=None)

    @user_errors
    def editor_from_json(self, pose_json: str | None) -> tuple[Any, Image.Image, Any]:
        """Fill the editor from an uploaded keypoint JSON: (table, preview, picker cleared)."""
        if pose_json is None:
            raise gr.Error("upload a keypoint JSON")
        kp = Keypoints.from_json(self.uploads.json(pose_json, "keypoint JSON"))
        table = pose_editor.keypoints_to_table(kp)
        return table, pose_editor.render_preview(table), gr.update(value=None)

    def editor_preview(self, table: Any) -> Image.Image:
        """The preview of the table as it is (also while an edit is incomplete)."""
        return pose_editor.render_preview(table)

    @user_errors
    def editor_click(self, table: Any, joint: str, evt: gr.SelectData) -> tuple[Any, Image.Image]:
        """Move the chosen joint to where the preview was clicked: (table, preview)."""
        table = pose_editor.move_joint(table, joint, evt.index, pose_editor.preview_size())
        return table, pose_editor.render_preview(table)

    def notes(self, source: Image.Image) -> None:
        """The shipped model's note for a real photo, a warning for a photo with no person
        (pop-ups; generating goes on)."""
        for line in source_notes(source, is_shipped(self.pipe)):
            gr.Warning(line.split(": ", 1)[1] if line.startswith(("note: ", "warning: "))
                       else line)

    @user_errors
    def generate_from_editor(self, source: Upload, table: Any, steps: float, scale_pose: float,
                             scale_app: float, seed: float, scheduler: str,
                             progress: gr.Progress = gr.Progress()) -> Image.Image:
        """Pose transfer to the pose the editor holds: the result."""
        src = self.uploads.image(source, "source photo")
        kp = pose_editor.table_to_keypoints(table)
        self.notes(src)
        return self._generate(src, kp, (steps, scale_pose, scale_app, seed, scheduler), progress)

    def _generate(self, src: Image.Image, kp: Keypoints, settings: tuple,
                  progress: gr.Progress) -> Image.Image:
        with self.lock:
            kw, g = self.sampling(*settings)
            on_step = _on_step(progress, "denoising")
            total = kw["num_inference_steps"]
            return self.pipe(src, kp, generator=g, callback_on_step_end=lambda _p, i, _t, _d:
                             on_step(i + 1, total), **kw).images[0]

    @user_errors
    def run_generate(self, source: Upload, gallery_name: str, pose_photo: Upload,
                     pose_json: str | None, steps: float, scale_pose: float,
                     scale_app: float, seed: float, scheduler: str,
                     progress: gr.Progress = gr.Progress()) -> tuple[Image.Image, Image.Image]:
        """Pose transfer: (result, target skeleton)."""
        src = self.uploads.image(source, "source photo")
        kp = self.target_pose(gallery_name, pose_photo, pose_json)
        image = self._generate(src, kp, (steps, scale_pose, scale_app, seed, scheduler), progress)
        return image, render_skeleton_image(kp, self.skeleton_size)

    @user_errors
    def run_style(self, editor: dict[str, Any] | None, mask_upload: str | None, parts: list[str],
                  ref_pose_json: str | None, new_source: Upload, steps: float, scale_pose: float,
                  scale_app: float, seed: float, scheduler: str,
                  progress: gr.Progress = gr.Progress()) -> tuple[Image.Image, Image.Image]:
        """Style transfer by mask: (result, mask used)."""
        reference = self.uploads.image((editor or {}).get("background"), "reference photo")
        src = self.uploads.image(new_source, "new source photo")
        mask = self.uploads.mask(editor, mask_upload)
        if mask is None and not parts:
            raise gr.Error("paint the region to restyle on the reference, upload a mask, "
                           "or tick body parts")
        ref_kp = self.reference_pose(reference, ref_pose_json)
        if mask is None:  # body parts → the mask drawn from the pose
            mask = Image.fromarray(part_mask(ref_kp, list(parts))).resize(reference.size,
                                                                           Image.NEAREST)
        with self.lock:
            kw, g = self.sampling(steps, scale_pose, scale_app, seed, scheduler)
            image = style_transfer(self.pipe, reference, mask, src, generator=g,
                                   reference_pose=ref_kp,
                                   on_step=_on_step(progress, "style transfer"), **kw)[0]
        return image, mask

    @user_errors
    def run_interpolate(self, source_a: Upload, source_b: Upload, gallery_name: str,
                        pose_json: str | None, frames: float, steps: float,
                        scale_pose: float, scale_app: float, seed: float, scheduler: str,
                        progress: gr.Progress = gr.Progress()
                        ) -> tuple[Image.Image, list[Image.Image]]:
        """Appearance interpolation: (strip, frames)."""
        n_frames = FRAMES.check(frames, "frames")
        a = self.uploads.image(source_a, "source A")
        b = self.uploads.image(source_b, "source B")
        kp = self.target_pose(gallery_name, None, pose_json)
        with self.lock:
            kw, g = self.sampling(steps, scale_pose, scale_app, seed, scheduler)
            images = interpolate(self.pipe, a, b, kp, n_frames=n_frames, generator=g,
                                 on_step=_on_step(progress, "interpolating"), **kw)
        return image_strip(images), images

    @user_errors
    def run_animate(self, source: Upload, sequence_json: str | None, start: str, end: str,
                    frames: float, fps: float, steps: float, scale_pose: float,
                    scale_app: float, seed: float, scheduler: str,
                    progress: gr.Progress = gr.Progress()) -> tuple[str, list[Image.Image]]:
        """Animation through a pose sequence: (GIF path, frames)."""
        fps = FPS.check(fps, "fps")
        src = self.uploads.image(source, "source photo")
        if sequence_json is not None:
            poses = parse_pose_sequence(self.uploads.json(sequence_json, "pose sequence"))
        else:
            if start not in self.gallery or end not in self.gallery:
                raise gr.Error("pick the first and last gallery poses, or upload a sequence")
            poses = interpolate_poses(self.gallery[start], self.gallery[end],
                                      int(FRAMES.check(frames, "frames")))
        return self._animate(src, poses, fps, (steps, scale_pose, scale_app, seed, scheduler),
                             progress)

    @user_errors
    def run_animate_through(self, source: Upload, sequence_json: str | None,
                            names: list[str] | None, editor_table: Any, frames: float,
                            fps: float, steps: float, scale_pose: float, scale_app: float,
                            seed: float, scheduler: str, progress: gr.Progress = gr.Progress()
                            ) -> tuple[str, list[Image.Image]]:
        """Animation through any poses in turn: the uploaded sequence JSON, else the chosen
        poses in their order (example poses by name, :data:`EDITED_POSE` for the editor's),
        ``frames`` frames in all moving linearly from one to the next: (GIF path, frames)."""
        fps = FPS.check(fps, "fps")
        src = self.uploads.image(source, "source photo")
        if sequence_json is not None:
            poses = parse_pose_sequence(self.uploads.json(sequence_json, "pose sequence"))
        else:
            unknown = [n for n in names or [] if n != EDITED_POSE and n not in self.gallery]
            if not names or unknown:
                raise gr.Error("choose the poses to go through, in order (example poses or "
                               "the edited pose), or upload a pose sequence")
            keys = [pose_editor.table_to_keypoints(editor_table) if n == EDITED_POSE
                    else self.gallery[n] for n in names]
            poses = interpolate_sequence(keys, int(FRAMES.check(frames, "frames")))
        self.notes(src)
        return self._animate(src, poses, fps, (steps, scale_pose, scale_app, seed, scheduler),
                             progress)

    def _animate(self, src: Image.Image, poses: list[Keypoints], fps: float, settings: tuple,
                 progress: gr.Progress) -> tuple[str, list[Image.Image]]:
        with self.lock:
            kw, g = self.sampling(*settings)
            images = animate(self.pipe, src, poses, generator=g,
                             on_step=_on_step(progress, f"animating {len(poses)} frames"), **kw)
        self.prune_results()
        gif = os.path.join(self.gif_dir, f"animation-{time.time_ns()}.gif")
        save_gif(images, gif, fps=float(fps))
        return gif, images

    def prune_results(self, max_age_s: float = RESULT_MAX_AGE_S) -> list[str]:
        """Remove animations older than ``max_age_s`` from the app's result folder (the
        browser has long fetched them); returns what was removed."""
        removed = []
        now = time.time()
        for entry in os.scandir(self.gif_dir):
            try:
                if now - entry.stat().st_mtime > max_age_s:
                    os.unlink(entry.path)
                    removed.append(entry.path)
            except OSError:
                continue
        return removed

    def close(self) -> None:
        """Delete the app's result folder (also done when the handlers are garbage-collected
        or the process exits)."""
        self._cleanup()


__all__ = ["EDITED_POSE", "AppHandlers", "user_errors"]
