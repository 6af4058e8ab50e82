"""The app's pose editor as plain functions: a keypoint table ⇄ :class:`~cfld.pose.Keypoints`,
a joint moved by a click on the preview, and the preview itself (skeleton, joints numbered).

The table has one row per COCO-18 joint: ``[index, joint, y, x]`` in the 256×176 DeepFashion
frame (the frame of the example poses); an empty or −1 coordinate is a missing joint.  Whatever
fills the editor (an example pose, a photo's estimated pose, an uploaded keypoint JSON) is
rescaled to that frame, and the edited table is the target pose the app generates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from cfld.pose.keypoints import DEEPFASHION_FRAME, JOINT_NAMES, MISSING, NUM_JOINTS, Keypoints
from cfld.pose.render import draw_overlay

#: Column names of the keypoint table.
TABLE_HEADERS = ["#", "joint", "y", "x"]
#: Frame of the table's coordinates (rows × columns).
EDIT_FRAME: tuple[int, int] = DEEPFASHION_FRAME
#: Height of the preview image (the frame scaled up, so that numbers stay readable).
PREVIEW_HEIGHT = 512


def keypoints_to_table(kp: Keypoints) -> list[list[Any]]:
    """The table of ``kp`` (rescaled to :data:`EDIT_FRAME`), coordinates rounded to pixels."""
    kp = kp.rescale(EDIT_FRAME) if kp.frame != EDIT_FRAME else kp
    rows = []
    for j, ((y, x), ok) in enumerate(zip(kp.coords.tolist(), kp.present.tolist())):
        rows.append([j, JOINT_NAMES[j], int(round(y)) if ok else -1, int(round(x)) if ok else -1])
    return rows


def _rows(table: Any) -> list[list[Any]]:
    """Rows of a table given as a list of lists, a pandas DataFrame or Gradio's dict payload."""
    if table is None:
        raise ValueError("the pose editor is empty; pick an example pose or upload a pose photo")
    if hasattr(table, "values") and hasattr(table, "columns"):  # pandas.DataFrame
        return [list(r) for r in table.values.tolist()]
    if isinstance(table, dict) and "data" in table:
        return [list(r) for r in table["data"]]
    return [list(r) for r in table]


def _coordinate(value: Any, joint: str, axis: str, side: int) -> float:
    """One table cell as a coordinate, MISSING for an empty cell or a negative value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return MISSING
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"pose editor, {joint}: {axis} = {value!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"pose editor, {joint}: {axis} = {value!r} is not a finite number")
    if v < 0:
        return MISSING
    if v >= side:
        raise ValueError(f"pose editor, {joint}: {axis} = {v:g} is outside the frame (0 to "
                         f"{side - 1}; -1 or empty for a missing joint)")
    return v


def table_to_keypoints(table: Any) -> Keypoints:
    """The edited table as keypoints in :data:`EDIT_FRAME`.

    Raises:
        ValueError: Not 18 rows, a cell that is not a number, a coordinate outside the frame,
            or fewer joints than a pose needs.
    """
    rows = _rows(table)
    if len(rows) != NUM_JOINTS or any(len(r) < 4 for r in rows):
        raise ValueError(f"the pose editor must have {NUM_JOINTS} rows of {TABLE_HEADERS}, got "
                         f"{len(rows)} rows")
    h, w = EDIT_FRAME
    coords = np.full((NUM_JOINTS, 2), MISSING)
    for j, row in enumerate(rows):
        y = _coordinate(row[2], JOINT_NAMES[j], "y", h)
        x = _coordinate(row[3], JOINT_NAMES[j], "x", w)
        if y != MISSING and x != MISSING:
            coords[j] = (y, x)
    kp = Keypoints(coords, EDIT_FRAME)
    kp.require_joints(what="the edited pose")
    return kp


def move_joint(table: Any, joint: str, click_xy: Sequence[float],
               preview_size: Sequence[int]) -> list[list[Any]]:
    """Put ``joint`` where the preview was clicked.

    Args:
        table: The current table.
        joint: A name of :data:`~cfld.pose.keypoints.JOINT_NAMES` (or ``"3 right_elbow"``).
        click_xy: ``(x, y)`` of the click in preview pixels (Gradio's ``SelectData.index``).
        preview_size: ``(width, height)`` of the preview image.
    """
    name = str(joint).split()[-1] if joint else ""
    if name not in JOINT_NAMES:
        raise ValueError(f"choose the joint to move ({', '.join(JOINT_NAMES)})")
    rows = [list(r) for r in _rows(table)]
    pw, ph = preview_size
    h, w = EDIT_FRAME
    x, y = float(click_xy[0]) * w / pw, float(click_xy[1]) * h / ph
    j = JOINT_NAMES.index(name)
    rows[j][2] = int(min(max(round(y), 0), h - 1))
    rows[j][3] = int(min(max(round(x), 0), w - 1))
    return rows


def preview_size() -> tuple[int, int]:
    """``(width, height)`` of :func:`render_preview`'s image."""
    h, w = EDIT_FRAME
    return round(w * PREVIEW_HEIGHT / h), PREVIEW_HEIGHT


def render_preview(table: Any) -> Image.Image:
    """The edited pose on a dark canvas: bones, joints numbered, missing joints listed.
    Incomplete edits still draw (the joints that can be read)."""
    try:
        rows = _rows(table)
        h, w = EDIT_FRAME
        coords = np.full((NUM_JOINTS, 2), MISSING)
        for j, row in enumerate(rows[:NUM_JOINTS]):
            try:
                y, x = (_coordinate(row[2], "", "y", h), _coordinate(row[3], "", "x", w))
            except ValueError:
                continue
            if y != MISSING and x != MISSING:
                coords[j] = (y, x)
        kp = Keypoints(coords, EDIT_FRAME)
    except ValueError:
        kp = Keypoints.missing(EDIT_FRAME)
    pw, ph = preview_size()
    canvas = Image.new("RGB", (pw, ph), (24, 24, 32))
    return draw_overlay(canvas, kp.rescale((ph, pw)))


__all__ = ["EDIT_FRAME", "PREVIEW_HEIGHT", "TABLE_HEADERS", "keypoints_to_table", "move_joint",
           "preview_size", "render_preview", "table_to_keypoints"]
