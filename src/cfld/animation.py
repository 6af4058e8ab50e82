"""Pose sequences: one source photo driven through a list of target poses.

Every frame starts from the same initial noise (the generator is reset to the same state
before each frame), so that what changes from frame to frame is the pose, not the sample —
the simplest way to keep a sequence temporally consistent with an image model.  The source's
coarse prompt and appearance biases are computed once and reused for every frame.

Pose sequences are read from a folder of keypoint JSON files (sorted by file name), or from one
JSON file holding ``{"frames": [{"frame": [H, W], "keypoints": [[y, x], ...]}, ...]}`` or a
plain list of such objects.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from cfld.pipelines.inputs import ImageLike, PoseLike, prepare_pose, prepare_source
from cfld.pose.gallery import POSE_GALLERY_DIR, gallery_poses
from cfld.pose.keypoints import Keypoints

if TYPE_CHECKING:
    from cfld.pipelines.pipeline_cfld import CFLDPipeline

StepCallback = Callable[[int, int], None]


def interpolate_poses(start: Keypoints, end: Keypoints, n_frames: int) -> list[Keypoints]:
    """``n_frames`` poses moving linearly from ``start`` to ``end`` (both included).

    A joint missing at either end is missing in between (``end`` is rescaled to ``start``'s
    frame first).
    """
    from cfld.checks.numbers import FRAMES

    n_frames = int(FRAMES.check(n_frames, "n_frames"))
    end = end.rescale(start.frame) if end.frame != start.frame else end
    both = start.present & end.present
    out = []
    for i in range(n_frames):
        w = i / (n_frames - 1)
        coords = np.full_like(start.coords, -1.0)
        coords[both] = (1 - w) * start.coords[both] + w * end.coords[both]
        out.append(Keypoints(coords, start.frame))
    return out


def interpolate_sequence(keys: Sequence[Keypoints], n_frames: int | None = None,
                         per_step: int = 4) -> list[Keypoints]:
    """``n_frames`` poses moving linearly through every pose of ``keys`` in turn (the first
    and last included; default ``per_step`` frames from one key pose to the next).

    A joint missing in one of two neighbouring key poses is missing between them; every pose
    is expressed in the first one's frame.
    """
    from cfld.checks.numbers import FRAMES

    if not keys:
        raise ValueError("a pose sequence needs at least one pose")
    steps = len(keys) - 1
    if n_frames is None:
        n_frames = max(2, per_step * steps + 1)
    n_frames = int(FRAMES.check(n_frames, "frames"))
    if steps == 0:
        return [keys[0]] * n_frames
    out = []
    for i in range(n_frames):
        t = i * steps / (n_frames - 1)  # position along the key poses, in [0, steps]
        k = min(int(t), steps - 1)
        if t in (k, k + 1):  # a key pose itself, with every joint it has
            key = keys[int(t)]
            out.append(key.rescale(keys[0].frame) if key.frame != keys[0].frame else key)
        else:
            out.append(_lerp(keys[k], keys[k + 1], t - k, keys[0].frame))
    return out


def _lerp(a: Keypoints, b: Keypoints, w: float, frame: tuple[int, int]) -> Keypoints:
    a = a.rescale(frame) if a.frame != frame else a
    b = b.rescale(frame) if b.frame != frame else b
    both = a.present & b.present
    coords = np.full_like(a.coords, -1.0)
    coords[both] = (1 - w) * a.coords[both] + w * b.coords[both]
    return Keypoints(coords, frame)


def load_pose_sequence(path: str | os.PathLike, frames: int | None = None) -> list[Keypoints]:
    """Read a pose sequence from a folder of ``*.json`` files or one JSON file, or make one
    through example poses named with commas (``"walking,side"``, see
    :func:`interpolate_sequence`; ``frames`` frames in all).

    Args:
        path: A folder (every ``*.json`` in it, sorted by name), a JSON file with
            ``{"frames": [...]}`` or a plain list of ``{"frame", "keypoints"}`` objects, or
            example pose names joined by commas.
        frames: With pose names, the number of frames (default 4 per step).

    Returns:
        The keypoints of every frame, in order.

    Raises:
        FileNotFoundError: when the path does not exist.
        ValueError: when the content is not a pose sequence (names the frame at fault).
    """
    from cfld.pose.gallery import example_pose, is_example_pose

    names = [n.strip() for n in os.fspath(path).split(",")]
    if not os.path.exists(path) and all(is_example_pose(n) for n in names):
        return interpolate_sequence([example_pose(n) for n in names], frames)
    if not os.path.exists(path) and (len(names) > 1 or not Path(path).suffix):
        from cfld.pose.gallery import example_pose_names

        bad = [n for n in names if not is_example_pose(n)]
        raise FileNotFoundError(f"pose sequence {os.fspath(path)!r} not found: no such file or "
                                f"folder, and not example pose names (unknown: {', '.join(bad)}"
                                f"; choose from {', '.join(example_pose_names())})")
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() == ".json" and f.is_file())
        if not files:
            raise ValueError(f"no keypoint .json files in {p}")
        _check_frame_count(len(files), str(p))
        return [Keypoints.from_json(f) for f in files]
    from cfld.checks.files import read_json

    return parse_pose_sequence(read_json(p, "pose sequence"), where=str(p))


def _check_frame_count(n: int, where: str) -> None:
    from cfld.checks.numbers import MAX_FRAMES

    if n > MAX_FRAMES:
        raise ValueError(f"{where} has {n} poses; the limit is {MAX_FRAMES} frames per animation "
                         "(each frame is a full generation); split the sequence")


def parse_pose_sequence(data: object, where: str = "pose sequence") -> list[Keypoints]:
    """Keypoints from already-parsed JSON (see :func:`load_pose_sequence`)."""
    if isinstance(data, dict) and "frames" in data:
        data = data["frames"]
    elif isinstance(data, dict) and "keypoints" in data:
        data = [data]  # a single pose is a sequence of one
    if not isinstance(data, list) or not data:
        raise ValueError(f"{where} must be {{\"frames\": [...]}} or a non-empty list of "
                         "{\"frame\": [H, W], \"keypoints\": [[y, x], ...]} objects")
    _check_frame_count(len(data), where)
    out = []
    for i, item in enumerate(data):
        try:
            out.append(Keypoints.from_json(item))
        except ValueError as err:
            raise ValueError(f"{where}, frame {i}: {err}") from None
    return out


def save_pose_sequence(poses: Sequence[Keypoints], path: str | os.PathLike) -> Path:
    """Write poses as one ``{"frames": [...]}`` JSON file."""
    from cfld.checkpoint import write_text_atomic

    return write_text_atomic(path, json.dumps({"frames": [kp.to_dict() for kp in poses]}) + "\n")


@torch.no_grad()
def animate(
    pipe: CFLDPipeline,
    source_image: ImageLike,
    poses: Sequence[PoseLike] | str | os.PathLike,
    num_inference_steps: int = 50,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
    **kwargs: Any,
) -> list[Image.Image | torch.Tensor]:
    """Generate the source person in every pose of a sequence, with the same initial noise.

    Args:
        pipe: A :class:`~cfld.CFLDPipeline`.
        source_image: The source photo.
        poses: Target poses (anything the pipeline takes as a pose), or a path given to
            :func:`load_pose_sequence`.
        num_inference_steps: Denoising steps per frame.
        generator: Seeds the noise shared by all frames (default: seed 0).
        on_step: ``fn(done, total)`` over all frames' steps.
        **kwargs: Passed to the pipeline (``scale_pose``, ``output_type``, ``output_size``, …).

    Returns:
        One image per pose (the pipeline's output type).
    """
    if isinstance(poses, (str, os.PathLike)):
        poses = load_pose_sequence(poses)
    poses = list(poses)
    if not poses:
        raise ValueError("the pose sequence is empty")
    _check_frame_count(len(poses), "the pose sequence")
    from cfld.checks.sampling import check_call_kwargs
    from cfld.pipelines.inputs import keypoints_from_any

    check_call_kwargs(num_inference_steps, kwargs)
    # Every pose is checked (and photos estimated) before the first frame is generated.
    poses = [p if isinstance(p, (torch.Tensor, np.ndarray)) else
             keypoints_from_any(p).require_joints(what=f"pose {k}") for k, p in enumerate(poses)]
    device, dtype = pipe._execution_device, pipe.model.dtype
    # The source's prompt and biases once; only the pose adapter runs per frame.
    source = prepare_source(source_image, pipe.model.source_size).to(device, dtype)
    if source.shape[0] != 1:
        raise ValueError("animate takes one source image")
    prompt, biases = pipe.model.encode_source(source)
    from cfld.models.cfld import CFLDConditions

    base = CFLDConditions(prompt, None, biases)
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(0)
    state = generator.get_state()
    total = len(poses) * num_inference_steps
    frames = []
    for k, pose in enumerate(poses):
        pose_map = prepare_pose(pose, pipe.pose_size, pipe.model.pose_channels)
        cond = dataclasses.replace(base,
                                   pose_residuals=pipe.model.encode_pose(pose_map.to(device,
                                                                                    dtype)))
        generator.set_state(state)  # the same initial noise (and step noise) for every frame
        callback = None
        if on_step is not None:
            def callback(_p: Any, i: int, _t: Any, _d: Any, k: int = k) -> None:
                on_step(k * num_inference_steps + i + 1, total)
        out = pipe(conditions=cond, num_inference_steps=num_inference_steps,
                   generator=generator, callback_on_step_end=callback, **kwargs)
        frames.append(out.images[0])
    return frames


def save_frames(frames: Sequence[Image.Image], out_dir: str | os.PathLike,
                prefix: str = "frame") -> list[Path]:
    """Write frames as ``OUT/frame_0000.png``, ``frame_0001.png``, … (atomically)."""
    from cfld.visualize import save_image_atomic

    out = Path(out_dir)
    return [save_image_atomic(frame, out / f"{prefix}_{i:04d}.png")
            for i, frame in enumerate(frames)]


def save_gif(frames: Sequence[Image.Image], path: str | os.PathLike, fps: float = 8.0,
             loop: int = 0) -> Path:
    """Write an animated GIF (``loop=0``: forever) with imageio (Pillow if it is absent)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not frames:
        raise ValueError("no frames to write")
    from cfld.checks.writes import atomic_file

    rgb = [f.convert("RGB") for f in frames]
    with atomic_file(path) as fh:
        try:
            import imageio.v3 as iio
        except ImportError:  # imageio is an optional extra (cfld[app]); Pillow writes GIFs too
            rgb[0].save(fh, format="GIF", save_all=True, append_images=rgb[1:],
                        duration=round(1000.0 / fps), loop=loop)
        else:
            arrays = np.stack([np.asarray(f) for f in rgb])  # (N, H, W, 3)
            fh.write(iio.imwrite("<bytes>", arrays, extension=".gif", duration=1000.0 / fps,
                                 loop=loop))
    return Path(path)


def save_video(frames: Sequence[Image.Image], path: str | os.PathLike, fps: float = 8.0,
               ) -> Path:
    """Write an MP4 (MPEG-4 Part 2, ``mp4v``) with OpenCV's bundled FFmpeg, atomically.

    All frames must have the size of the first.  Raises ValueError with the reason when the
    frames are empty or mismatched, the fps is not positive, or this OpenCV build cannot encode
    MP4 (then write a GIF with :func:`save_gif` or the frames with :func:`save_frames`).
    """
    import cv2

    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not frames:
        raise ValueError("no frames to write")
    size = frames[0].size  # (W, H)
    bad = [i for i, f in enumerate(frames) if f.size != size]
    if bad:
        raise ValueError(f"frames {bad[:5]} differ in size from frame 0 {size}; resize them first")
    p = Path(path)
    if p.suffix.lower() != ".mp4":
        raise ValueError(f"{p} must end in .mp4")
    from cfld.checks.writes import clean_stale_temps, finish_temp, temp_path

    p.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(p.parent)
    tmp = temp_path(p, keep_suffix=True)  # cv2 picks the container from the extension
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
    try:
        if not writer.isOpened():
            raise ValueError("this OpenCV build cannot write MP4 (no FFmpeg backend); write a "
                             "GIF (--gif) or the frames instead")
        for f in frames:
            writer.write(np.ascontiguousarray(np.asarray(f.convert("RGB"))[:, :, ::-1]))  # RGB→BGR
    finally:
        writer.release()
    if not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"OpenCV wrote no video to {p}; write a GIF instead")
    return finish_temp(tmp, p)


__all__ = ["POSE_GALLERY_DIR", "animate", "gallery_poses", "interpolate_poses",
           "interpolate_sequence", "load_pose_sequence", "parse_pose_sequence", "save_frames",
           "save_gif", "save_pose_sequence", "save_video"]
