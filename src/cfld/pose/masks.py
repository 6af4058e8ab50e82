"""Body-part masks drawn from keypoints, for style transfer by part (paper §4.6).

Thick lines along the limbs, a polygon for the torso, an ellipse for the head, then dilated.
They are coarse by design (the latent is 8× smaller than the image for SD's VAE); draw a mask
for precise edits.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from cfld.pose.keypoints import JOINT_NAMES, Keypoints

# Joint indices (COCO-18, fidelity §5.1).
_J = {name: i for i, name in enumerate(JOINT_NAMES)}

#: Named body parts for :func:`part_mask` and what each covers.
BODY_PARTS: dict[str, str] = {
    "head": "face, hair and neck: an ellipse around nose/eyes/ears, above the neck",
    "upper_clothes": "torso (shoulders to hips) and upper arms: tops, shirts, jackets",
    "lower_clothes": "hips to ankles: trousers, skirts, shorts",
    "arms": "shoulders to wrists, both sides (sleeves and bare arms)",
    "hands": "discs around the wrists",
    "legs": "hips to ankles along each leg (narrower than lower_clothes)",
    "shoes": "discs around and just below the ankles",
    "body": "everything above together (the whole person)",
}

# ----------------------------------------------------------------------------- masks
def _body_scale(kp: Keypoints) -> float:
    """A length that grows with the person: neck→mid-hip, else shoulder span, else frame."""
    c, p = kp.coords, kp.present
    if p[_J["neck"]] and (p[_J["right_hip"]] or p[_J["left_hip"]]):
        hips = [c[_J[n]] for n in ("right_hip", "left_hip") if p[_J[n]]]
        return float(np.linalg.norm(c[_J["neck"]] - np.mean(hips, axis=0)))
    if p[_J["right_shoulder"]] and p[_J["left_shoulder"]]:
        return 1.6 * float(np.linalg.norm(c[_J["right_shoulder"]] - c[_J["left_shoulder"]]))
    return 0.3 * kp.frame[0]


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[1]))), int(round(float(p[0])))  # (y, x) → cv2's (x, y)


def _draw_chain(canvas: np.ndarray, kp: Keypoints, names: Sequence[str], width: float) -> None:
    """Thick line through consecutive present joints (a missing joint breaks the chain)."""
    idx = [_J[n] for n in names]
    for a, b in zip(idx, idx[1:]):
        if kp.present[a] and kp.present[b]:
            cv2.line(canvas, _pt(kp.coords[a]), _pt(kp.coords[b]), 255,
                     max(1, int(round(width))), cv2.LINE_8)
        elif kp.present[a]:
            cv2.circle(canvas, _pt(kp.coords[a]), max(1, int(round(width / 2))), 255, -1)
    if kp.present[idx[-1]]:
        cv2.circle(canvas, _pt(kp.coords[idx[-1]]), max(1, int(round(width / 2))), 255, -1)


def _draw_torso(canvas: np.ndarray, kp: Keypoints, s: float) -> None:
    names = ("right_shoulder", "left_shoulder", "left_hip", "right_hip")
    pts = [kp.coords[_J[n]] for n in names if kp.present[_J[n]]]
    if kp.present[_J["neck"]]:
        pts.append(kp.coords[_J["neck"]])
    if len(pts) >= 3:
        hull = cv2.convexHull(np.array([_pt(p) for p in pts], np.int32))
        cv2.fillConvexPoly(canvas, hull, 255)
    # Widen sideways: shoulders and hips carry the cloth beyond the joints.
    for n in names:
        if kp.present[_J[n]]:
            cv2.circle(canvas, _pt(kp.coords[_J[n]]), max(1, int(round(0.22 * s))), 255, -1)
    _draw_chain(canvas, kp, ("neck", "right_hip"), 0.45 * s)
    _draw_chain(canvas, kp, ("neck", "left_hip"), 0.45 * s)


def _draw_head(canvas: np.ndarray, kp: Keypoints, s: float) -> None:
    face = [_J[n] for n in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")]
    pts = [kp.coords[i] for i in face if kp.present[i]]
    neck = kp.coords[_J["neck"]] if kp.present[_J["neck"]] else None
    if not pts and neck is None:
        return
    if pts:
        centre = np.mean(pts, axis=0)
    else:  # back view without face joints: the head sits above the neck
        centre = neck - np.array([0.3 * s, 0.0])
    radius = 0.3 * s
    cv2.ellipse(canvas, _pt(centre), (max(1, int(round(radius * 0.85))),
                                      max(1, int(round(radius * 1.1)))), 0, 0, 360, 255, -1)
    if neck is not None:
        cv2.line(canvas, _pt(centre), _pt(neck), 255, max(1, int(round(0.35 * s))))


def part_mask(keypoints: Keypoints, parts: str | Sequence[str], dilate: float = 0.08,
              ) -> np.ndarray:
    """A binary mask (H, W) in ``keypoints.frame`` covering the named body parts.

    Args:
        keypoints: The reference person's keypoints.
        parts: Names from :data:`BODY_PARTS` (a list or a comma-separated string).
        dilate: Extra margin, as a fraction of the body scale (neck→hip length).

    Returns:
        uint8 array, 255 inside (= restyle), 0 outside.

    Raises:
        ValueError: for an unknown part name, or when the joints it needs are all missing.
    """
    names = [p.strip() for p in parts.split(",")] if isinstance(parts, str) else list(parts)
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"give at least one body part; choose from {sorted(BODY_PARTS)}")
    unknown = sorted(set(names) - set(BODY_PARTS))
    if unknown:
        raise ValueError(f"unknown body part(s) {unknown}; choose from {sorted(BODY_PARTS)}")
    if "body" in names:
        names = [n for n in BODY_PARTS if n != "body"]
    h, w = keypoints.frame
    s = _body_scale(keypoints)
    canvas = np.zeros((h, w), np.uint8)
    limbs = {
        "arms": [("right_shoulder", "right_elbow", "right_wrist"),
                 ("left_shoulder", "left_elbow", "left_wrist")],
        "legs": [("right_hip", "right_knee", "right_ankle"),
                 ("left_hip", "left_knee", "left_ankle")],
    }
    for name in names:
        if name == "head":
            _draw_head(canvas, keypoints, s)
        elif name == "upper_clothes":
            _draw_torso(canvas, keypoints, s)
            for side in ("right", "left"):
                _draw_chain(canvas, keypoints, (f"{side}_shoulder", f"{side}_elbow"), 0.3 * s)
        elif name == "arms":
            for chain in limbs["arms"]:
                _draw_chain(canvas, keypoints, chain, 0.28 * s)
        elif name == "hands":
            for n in ("right_wrist", "left_wrist"):
                if keypoints.present[_J[n]]:
                    cv2.circle(canvas, _pt(keypoints.coords[_J[n]]),
                               max(1, int(round(0.18 * s))), 255, -1)
        elif name == "legs":
            for chain in limbs["legs"]:
                _draw_chain(canvas, keypoints, chain, 0.3 * s)
        elif name == "lower_clothes":
            hips = [keypoints.coords[_J[n]] for n in ("right_hip", "left_hip")
                    if keypoints.present[_J[n]]]
            if len(hips) == 2:
                cv2.line(canvas, _pt(hips[0]), _pt(hips[1]), 255, max(1, int(round(0.4 * s))))
            for chain in limbs["legs"]:
                _draw_chain(canvas, keypoints, chain, 0.4 * s)
        elif name == "shoes":
            for ankle, knee in (("right_ankle", "right_knee"), ("left_ankle", "left_knee")):
                a, k = _J[ankle], _J[knee]
                if not keypoints.present[a]:
                    continue
                foot = keypoints.coords[a]
                if keypoints.present[k]:  # the foot continues a little past the ankle
                    foot = foot + 0.15 * (keypoints.coords[a] - keypoints.coords[k])
                cv2.circle(canvas, _pt(keypoints.coords[a]), max(1, int(round(0.15 * s))), 255,
                           -1)
                cv2.circle(canvas, _pt(foot), max(1, int(round(0.17 * s))), 255, -1)
    if not canvas.any():
        raise ValueError(f"the joints needed for {names} are missing from the reference pose; "
                         "draw a mask instead")
    r = int(round(dilate * s))
    if r > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        canvas = cv2.dilate(canvas, kernel)
    return canvas


__all__ = ["BODY_PARTS", "part_mask"]
