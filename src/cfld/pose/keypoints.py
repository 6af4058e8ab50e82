"""COCO-18 keypoints (OpenPose order) as a small immutable value.

Coordinates are stored as ``(y, x)`` pixel positions inside a ``frame=(H, W)``, like the
DeepFashion annotation files (fidelity §5.1): 18 joints, ``-1`` marks a missing joint, and a joint
is missing as soon as either of its coordinates is ``-1``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cfld.sizes import check_size

NUM_JOINTS = 18
MISSING = -1.0
# Frame of the DeepFashion annotation csv files (fidelity §5.1): 256 rows x 176 columns.
DEEPFASHION_FRAME: tuple[int, int] = (256, 176)

# OpenPose COCO-18 order (fidelity §5.1).  "R"/"L" are the person's own right/left.
JOINT_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)

#: Fewest present joints of a pose used to generate (fewer cannot place a person).
MIN_POSE_JOINTS = 2

# Index of the mirrored joint: a horizontal flip turns the person's right side into the left.
FLIP_PERMUTATION: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)


#: Least extent of a pose's joints, as a fraction of its frame (see :meth:`require_joints`).
MIN_POSE_SPAN = 0.01


@dataclass(frozen=True, eq=False)
class Keypoints:
    """18 COCO keypoints of one person, in ``(y, x)`` pixel coordinates of ``frame``.

    Attributes:
        coords: read-only ``(18, 2)`` float64 array of ``(y, x)``; missing joints are ``(-1, -1)``.
        frame: ``(H, W)`` of the image the coordinates refer to.
    """

    coords: np.ndarray
    frame: tuple[int, int] = DEEPFASHION_FRAME

    def __post_init__(self) -> None:
        frame = check_size(self.frame)
        raw = np.asarray(self.coords)
        if raw.dtype.kind not in "iuf":  # strings, booleans, objects: refused, not coerced
            raise ValueError(f"keypoint coordinates must be numbers, got an array of {raw.dtype} "
                             "(use -1 for a missing joint)")
        arr = np.array(raw, dtype=np.float64, copy=True)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(
                "keypoints must be an array of shape (18, 2) of (y, x) pairs, "
                f"got shape {arr.shape}"
            )
        if arr.shape[0] != NUM_JOINTS:
            raise ValueError(
                f"expected {NUM_JOINTS} COCO-18 joints, got {arr.shape[0]}; "
                "keypoints must list all 18 joints, using -1 for missing ones"
            )
        if not np.isfinite(arr).all():
            raise ValueError(
                "keypoint coordinates must be finite numbers (use -1 for a missing joint)"
            )
        # fidelity §5.1: a joint is missing if either coordinate is -1; store both as -1.
        missing = (arr == MISSING).any(axis=1)
        arr[missing] = MISSING
        present = ~missing
        h, w = frame
        bad = present & ((arr[:, 0] < 0) | (arr[:, 0] >= h) | (arr[:, 1] < 0) | (arr[:, 1] >= w))
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"joint {j} ({JOINT_NAMES[j]}) at (y={arr[j, 0]:g}, x={arr[j, 1]:g}) is outside "
                f"the {h}x{w} frame; coordinates must satisfy 0 <= y < {h} and 0 <= x < {w} "
                "(use -1 for a missing joint, or pass the right frame)"
            )
        arr.setflags(write=False)
        object.__setattr__(self, "coords", arr)
        object.__setattr__(self, "frame", frame)

    # ----------------------------------------------------------------------------- constructors
    @classmethod
    def missing(cls, frame: Sequence[int] = DEEPFASHION_FRAME) -> Keypoints:
        """Keypoints with every joint missing.

        Args:
            frame: ``(H, W)`` of the frame.

        Returns:
            A ``Keypoints`` whose 18 joints are all ``-1``.
        """
        return cls(np.full((NUM_JOINTS, 2), MISSING), tuple(frame))

    @classmethod
    def from_strings(
        cls, y_json: str, x_json: str, frame: Sequence[int] = DEEPFASHION_FRAME
    ) -> Keypoints:
        """Parse the two JSON lists of a DeepFashion annotation row (fidelity §5.1).

        Args:
            y_json: JSON list of 18 y coordinates, e.g. ``"[12, 30, -1, ...]"``.
            x_json: JSON list of 18 x coordinates.
            frame: frame of the coordinates; the annotation files use ``(256, 176)``.

        Returns:
            The parsed keypoints.

        Raises:
            ValueError: when a string is not a JSON list of 18 numbers or a joint lies outside
                the frame.
        """
        lists = []
        for axis, text in (("y", y_json), ("x", x_json)):
            try:
                values = json.loads(text)
            except (TypeError, json.JSONDecodeError, RecursionError) as err:
                raise ValueError(
                    f"keypoints_{axis} is not a JSON list of {NUM_JOINTS} numbers: {text!r} ({err})"
                ) from None
            if not isinstance(values, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
            ):
                raise ValueError(
                    f"keypoints_{axis} must be a JSON list of {NUM_JOINTS} numbers, got {text!r}"
                )
            if len(values) != NUM_JOINTS:
                raise ValueError(
                    f"keypoints_{axis} has {len(values)} values, expected {NUM_JOINTS} (COCO-18)"
                )
            lists.append(values)
        coords = np.stack([np.asarray(v, dtype=float) for v in lists], axis=1)  # (18, 2)
        return cls(coords, tuple(frame))

    @classmethod
    def from_json(cls, source: str | os.PathLike | Mapping[str, Any]) -> Keypoints:
        """Read keypoints from a JSON file or an already-parsed dict.

        The format is ``{"frame": [H, W], "keypoints": [[y, x], ... 18 pairs]}`` with ``[-1, -1]``
        for a missing joint.

        Args:
            source: path of a ``.json`` file, or the dict itself.

        Returns:
            The keypoints.

        Raises:
            ValueError: when the content does not follow the format.
            FileNotFoundError: when the path does not exist.
        """
        where = "keypoint dict"
        if isinstance(source, Mapping):
            data = source
        else:
            from cfld.checks.files import read_json

            where = str(Path(source))
            data = read_json(source, "keypoint file")
        if not isinstance(data, Mapping) or "keypoints" not in data or "frame" not in data:
            raise ValueError(
                f"{where} must be an object with keys 'frame' ([H, W]) and 'keypoints' "
                "(18 [y, x] pairs)"
            )
        return cls(_number_pairs(data["keypoints"], where), _frame_of(data["frame"], where))

    def require_joints(self, minimum: int = MIN_POSE_JOINTS, what: str = "target pose"
                       ) -> Keypoints:
        """``self`` if at least ``minimum`` joints are present, else a ValueError naming the
        count (a pose with no joints, or a single one, cannot place a person)."""
        n = int(self.present.sum())
        if n < minimum:
            raise ValueError(
                f"{what} has {n} of {NUM_JOINTS} joints present; at least {minimum} are needed to "
                "place a person (missing joints are [-1, -1]); give a pose with more joints"
            )
        # Joints squeezed into a speck of the frame draw no person either: typically a 'frame'
        # far larger than the image the coordinates were measured in (all joints end up in one
        # corner of the pose map once rescaled).
        pts = self.coords[self.present]
        span_y, span_x = (pts.max(0) - pts.min(0)).tolist()
        h, w = self.frame
        if max(span_y / h, span_x / w) < MIN_POSE_SPAN:
            raise ValueError(
                f"{what}'s joints all lie within {span_y:g}×{span_x:g} of its {h}x{w} frame (less "
                f"than 1/{round(1 / MIN_POSE_SPAN)} of it); 'frame' must be the [H, W] of the "
                "image the coordinates were measured in"
            )
        return self

    # ----------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dict ``{"frame": [H, W], "keypoints": [[y, x], ...]}``.

        Whole-number coordinates are written as ints so that files round-trip exactly.
        """

        def num(v: float) -> int | float:
            return int(v) if float(v).is_integer() else float(v)

        return {
            "frame": [int(self.frame[0]), int(self.frame[1])],
            "keypoints": [[num(y), num(x)] for y, x in self.coords],
        }

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the keypoints as JSON (atomically: temp file in the same folder, then rename).

        Args:
            path: destination file.

        Returns:
            The path written.
        """
        from cfld.checkpoint import write_text_atomic

        return write_text_atomic(path, json.dumps(self.to_dict(), indent=None) + "\n")

    def to_strings(self) -> tuple[str, str]:
        """Return the DeepFashion annotation strings ``(keypoints_y, keypoints_x)``.

        Coordinates are truncated to integers like the official files (which store ints).
        """
        ints = np.where(self.coords == MISSING, -1, np.trunc(self.coords)).astype(int)  # (18, 2)
        return json.dumps(ints[:, 0].tolist()), json.dumps(ints[:, 1].tolist())

    # ----------------------------------------------------------------------------- geometry
    @property
    def present(self) -> np.ndarray:
        """Boolean mask ``(18,)``: True where the joint is present."""
        return ~(self.coords == MISSING).any(axis=1)

    @property
    def y(self) -> np.ndarray:
        """The ``(18,)`` y coordinates (``-1`` for missing joints)."""
        return self.coords[:, 0]

    @property
    def x(self) -> np.ndarray:
        """The ``(18,)`` x coordinates (``-1`` for missing joints)."""
        return self.coords[:, 1]

    def rescale(self, frame: Sequence[int]) -> Keypoints:
        """Scale the coordinates to another frame (y by H2/H, x by W2/W); missing stay missing.

        Args:
            frame: the new ``(H2, W2)``.

        Returns:
            New keypoints in ``frame`` (float coordinates, not rounded).
        """
        h2, w2 = check_size(frame)
        h, w = self.frame
        out = self.coords.copy()
        p = self.present
        # Multiply first, then divide (same order as the pose renderer, fidelity §5.4).
        out[p, 0] = out[p, 0] * h2 / h
        out[p, 1] = out[p, 1] * w2 / w
        return Keypoints(out, (h2, w2))

    def flip(self) -> Keypoints:
        """Mirror horizontally: x -> W-1-x, and swap left/right joints.

        ``W-1-x`` matches a pixel-exact mirror of the image (PIL ``FLIP_LEFT_RIGHT``).

        Returns:
            The mirrored keypoints.
        """
        out = self.coords.copy()
        p = self.present
        out[p, 1] = self.frame[1] - 1 - out[p, 1]
        out = out[list(FLIP_PERMUTATION)]
        return Keypoints(out, self.frame)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Keypoints):
            return NotImplemented
        return self.frame == other.frame and np.array_equal(self.coords, other.coords)

    __hash__ = None  # type: ignore[assignment]  # equal values may not hash alike (float array)

    def __repr__(self) -> str:
        return f"Keypoints(frame={self.frame}, present={int(self.present.sum())}/{NUM_JOINTS})"


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number_pairs(value: object, where: str) -> np.ndarray:
    """18 ``[y, x]`` pairs of JSON numbers → (18, 2) floats; strings, booleans and nulls are
    refused, never coerced."""
    if not isinstance(value, (list, tuple)) or len(value) != NUM_JOINTS:
        count = len(value) if isinstance(value, (list, tuple)) else type(value).__name__
        raise ValueError(f"{where}: 'keypoints' must be a list of {NUM_JOINTS} [y, x] pairs "
                         f"(COCO-18, [-1, -1] for a missing joint), got {count}")
    for j, pair in enumerate(value):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(_is_number(v) for v in pair)):
            raise ValueError(f"{where}: joint {j} ({JOINT_NAMES[j]}) must be a pair of numbers "
                             f"[y, x] ([-1, -1] if missing), got {pair!r}")
    return np.asarray(value, dtype=np.float64)


def _frame_of(value: object, where: str) -> tuple[int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(
            _is_number(v) and float(v).is_integer() and v > 0 for v in value)):
        raise ValueError(f"{where}: 'frame' must be [H, W], two positive integers (the size of "
                         f"the image the coordinates refer to), got {value!r}")
    return int(value[0]), int(value[1])
