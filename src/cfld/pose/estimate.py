"""Estimate COCO-18 keypoints of the person in a photo, fully offline.

The default backend is MediaPipe Pose (``mediapipe==0.10.21``, the last release whose wheel
ships its pose models; ``model_complexity=1`` runs without downloading anything).  Its 33
BlazePose landmarks are mapped to the OpenPose COCO-18 order of the DeepFashion annotations
(fidelity §5.1); the neck, absent from BlazePose, is the midpoint of the shoulders.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from cfld.pose.keypoints import MISSING, NUM_JOINTS, Keypoints
from cfld.sizes import check_size

# COCO-18 index -> BlazePose landmark index.  Both use the person's own left/right, so the
# person's right shoulder (COCO 2) is BlazePose RIGHT_SHOULDER (12), and so on.
COCO18_FROM_BLAZEPOSE: dict[int, int] = {
    0: 0,  # nose
    2: 12,  # right shoulder
    3: 14,  # right elbow
    4: 16,  # right wrist
    5: 11,  # left shoulder
    6: 13,  # left elbow
    7: 15,  # left wrist
    8: 24,  # right hip
    9: 26,  # right knee
    10: 28,  # right ankle
    11: 23,  # left hip
    12: 25,  # left knee
    13: 27,  # left ankle
    14: 5,  # right eye
    15: 2,  # left eye
    16: 8,  # right ear
    17: 7,  # left ear
}
NECK = 1
BLAZEPOSE_SHOULDERS = (11, 12)


class NoPersonFoundError(ValueError):
    """The estimator found no person in the image."""


class MissingBackendError(ImportError, ValueError):
    """The estimator's package is not installed (a ValueError too, so the CLI prints one line)."""


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Silence what native libraries write straight to file descriptor 2 (MediaPipe's TFLite
    and absl lines: "Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires
    ..."), which no Python logging setting reaches.  ``CFLD_NATIVE_LOGS=1`` keeps them."""
    if os.environ.get("CFLD_NATIVE_LOGS", "") not in ("", "0"):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor (some embedded interpreters)
        yield
        return
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        _flush_c_streams()  # what C stdio buffered goes to /dev/null, not to the restored fd 2
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _flush_c_streams() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to reach (not a POSIX system)
        pass


@runtime_checkable
class PoseEstimator(Protocol):
    """Anything that maps a photo to COCO-18 keypoints in the photo's own pixel frame."""

    def __call__(self, image: Image.Image) -> Keypoints:
        """Estimate the keypoints of the (single, most prominent) person in ``image``."""
        ...


def _to_rgb_array(image: Any) -> np.ndarray:
    """Return a contiguous ``(H, W, 3)`` uint8 RGB array from a PIL image or an array."""
    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)  # (H, W) -> (H, W, 3)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise ValueError(
            f"image must be a PIL image or an (H, W, 3) uint8 array, got {arr.dtype} {arr.shape}"
        )
    return np.ascontiguousarray(arr[..., :3])


class MediaPipeEstimator:
    """MediaPipe Pose (BlazePose full, ``model_complexity=1``) mapped to COCO-18.

    Args:
        min_visibility: landmarks whose visibility score is below this are reported missing.
        min_detection_confidence: MediaPipe's person-detection threshold.
    """

    def __init__(self, min_visibility: float = 0.5, min_detection_confidence: float = 0.5) -> None:
        # MediaPipe's C++ side logs through glog/absl and TFLite: keep the CLI output readable.
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            with quiet_native_logs():
                from mediapipe.python.solutions import pose as mp_pose
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise MissingBackendError(
                "pose estimation needs MediaPipe: pip install 'mediapipe==0.10.21' "
                "(or install cfld with the [pose] extra)"
            ) from err
        self.min_visibility = float(min_visibility)
        # Complexity 0 and 2 download their models at run time; 1 is bundled in the wheel.
        with quiet_native_logs():
            self._pose = mp_pose.Pose(
                static_image_mode=True,
                model_complexity=1,
                enable_segmentation=False,
                min_detection_confidence=min_detection_confidence,
            )

    def __call__(self, image: Image.Image) -> Keypoints:
        """Estimate keypoints in the image's own pixel frame ``(H, W)``.

        Raises:
            NoPersonFoundError: when MediaPipe detects no person.
        """
        rgb = _to_rgb_array(image)
        h, w = rgb.shape[:2]
        with quiet_native_logs():
            result = self._pose.process(rgb)
        if result.pose_landmarks is None:
            raise NoPersonFoundError(
                "no person found in the image; use a photo that shows one person clearly"
            )
        lm = result.pose_landmarks.landmark
        # BlazePose gives normalised (x, y) in [0, 1] (may exceed it for joints outside the photo).
        yx = np.array([[p.y * h, p.x * w] for p in lm])  # (33, 2) pixels
        vis = np.array([p.visibility for p in lm])  # (33,)
        inside = (yx[:, 0] >= 0) & (yx[:, 0] < h) & (yx[:, 1] >= 0) & (yx[:, 1] < w)
        ok = inside & (vis >= self.min_visibility)
        coords = np.full((NUM_JOINTS, 2), MISSING)
        for coco, blaze in COCO18_FROM_BLAZEPOSE.items():
            if ok[blaze]:
                coords[coco] = yx[blaze]
        ls, rs = BLAZEPOSE_SHOULDERS
        if ok[ls] and ok[rs]:
            coords[NECK] = (yx[ls] + yx[rs]) / 2
        if not (coords != MISSING).any():
            raise NoPersonFoundError(
                "no person found in the image (no landmark was visible enough); "
                "use a photo that shows one person clearly"
            )
        return Keypoints(coords, (h, w))

    def close(self) -> None:
        """Release MediaPipe's graph."""
        self._pose.close()


_ESTIMATORS = {"mediapipe": MediaPipeEstimator}


def get_estimator(name: str = "mediapipe", **kwargs: Any) -> PoseEstimator:
    """Build a pose estimator by name.

    Args:
        name: backend name; available: ``"mediapipe"``.
        **kwargs: passed to the backend's constructor.

    Returns:
        A callable ``image -> Keypoints``.

    Raises:
        ValueError: for an unknown backend name.
    """
    if name not in _ESTIMATORS:
        raise ValueError(f"unknown pose estimator {name!r}; available: {sorted(_ESTIMATORS)}")
    return _ESTIMATORS[name](**kwargs)


@functools.lru_cache(maxsize=1)
def _default_estimator() -> PoseEstimator:
    """One shared MediaPipe estimator (building its graph takes ~0.5 s)."""
    return get_estimator()


def estimate_keypoints(
    image: Image.Image,
    frame: Sequence[int] | None = None,
    estimator: PoseEstimator | None = None,
) -> Keypoints:
    """Estimate the keypoints of the person in ``image``, optionally rescaled to ``frame``.

    Args:
        image: the photo.
        frame: ``(H, W)`` to express the keypoints in (e.g. ``(256, 176)`` for DeepFashion
            annotations); default the image's own pixel frame.
        estimator: a backend; default a shared MediaPipe estimator.

    Returns:
        COCO-18 keypoints.
    """
    est = estimator if estimator is not None else _default_estimator()
    kp = est(image)
    return kp if frame is None else kp.rescale(check_size(frame))
