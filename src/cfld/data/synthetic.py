"""Procedural people: appearance, pose and drawing (design §5); written out as a DeepFashion-layout
root by :mod:`cfld.data.synthetic_root`.

Each person has a fixed appearance (skin, hair, top and bottom colours with a texture, shoes,
build) and is drawn from 18 COCO keypoints in several poses (wide joint angles, front and back
views, varying scale and position, joints out of frame or dropped).  The output root is read
by :mod:`cfld.data.deepfashion` like the real data:

    OUT/train_highres/*.jpg   OUT/test_highres/*.jpg       images
    OUT/train_parts/*.png     OUT/test_parts/*.png         part labels (see PART_LABELS)
    OUT/fasion-resize-{pairs,annotation}-{train,test}.csv  OUT/train.lst  OUT/test.lst

Keypoints are written in the 256×176 annotation frame (fidelity §5.1) whatever the image size.
Every image depends only on ``(seed, person, pose)``, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cfld.pose.keypoints import NUM_JOINTS

# Part-label table of the *_parts/*.png maps (uint8 value -> part).
PART_LABELS: dict[int, str] = {
    0: "background",
    1: "head/face",
    2: "hair",
    3: "torso/top",
    4: "arms",
    5: "hands",
    6: "legs/bottom",
    7: "shoes",
}
PARTS_DIRS: dict[str, str] = {"train": "train_parts", "test": "test_parts"}
IMAGE_SUFFIX = ".jpg"
_NAME_PREFIX = "fashionSYNTHPeopleid"
JPEG_QUALITY = 95

# Colour slots of the intermediate colour-id map (not the part labels).
_BG, _SKIN, _HAIR, _TOP, _BOTTOM, _SHOES, _DARK = range(7)
_TEXTURES = ("plain", "hstripes", "vstripes", "checks", "dots")

_SKIN_TONES = np.array(
    [[255, 224, 196], [241, 194, 155], [224, 172, 135], [198, 134, 96], [161, 102, 70],
     [110, 70, 48]],
    dtype=np.float64,
)
_HAIR_COLOURS = np.array(
    [[25, 20, 18], [70, 45, 30], [120, 80, 40], [200, 160, 90], [150, 60, 30], [160, 160, 165]],
    dtype=np.float64,
)


@dataclass(frozen=True)
class Appearance:
    """Fixed look of one procedural person."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: int  # 0 short, 1 long, 2 bun/none (very short)
    top: tuple[int, int, int]
    top2: tuple[int, int, int]
    top_texture: str
    top_period: float  # texture period as a fraction of body height
    long_sleeves: bool
    bottom: tuple[int, int, int]
    bottom2: tuple[int, int, int]
    bottom_texture: str
    bottom_kind: int  # 0 trousers, 1 shorts, 2 skirt
    shoes: tuple[int, int, int]
    background: tuple[int, int, int]
    build: float  # width factor


def _colour(
    rng: np.random.Generator, light: tuple[float, float] = (0.15, 0.95)
) -> tuple[int, int, int]:
    """A saturated random RGB colour from an HSV draw."""
    hsv = np.array(  # (1, 1, 3): the shape cv2.cvtColor wants
        [[[rng.uniform(0, 180), rng.uniform(80, 255), rng.uniform(*light) * 255]]], np.uint8
    )
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _jitter(base: np.ndarray, rng: np.random.Generator, amount: float) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(base + rng.normal(0, amount, 3), 0, 255))


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Draw one person's appearance.

    Args:
        rng: the person's generator.

    Returns:
        The appearance.
    """
    top = _colour(rng)
    bottom = _colour(rng, (0.1, 0.8))
    bg = int(rng.uniform(200, 250))
    return Appearance(
        skin=_jitter(_SKIN_TONES[rng.integers(len(_SKIN_TONES))], rng, 6),
        hair=_jitter(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))], rng, 8),
        hair_style=int(rng.integers(3)),
        top=top,
        top2=_colour(rng),
        top_texture=_TEXTURES[rng.integers(len(_TEXTURES))],
        top_period=float(rng.uniform(0.04, 0.09)),
        long_sleeves=bool(rng.random() < 0.5),
        bottom=bottom,
        bottom2=_colour(rng, (0.1, 0.8)),
        bottom_texture=_TEXTURES[rng.integers(len(_TEXTURES))] if rng.random() < 0.5 else "plain",
        bottom_kind=int(rng.choice(3, p=[0.55, 0.2, 0.25])),
        shoes=_colour(rng, (0.05, 0.6)),
        background=_jitter(np.array([bg, bg, bg], float), rng, 8),
        build=float(rng.uniform(0.85, 1.2)),
    )


@dataclass(frozen=True)
class Pose:
    """One sampled pose: joint positions (pixels, may lie outside the image) and drawing data."""

    joints: np.ndarray  # (18, 2) float (y, x) in image pixels, always defined
    visible: np.ndarray  # (18,) bool: joint annotated (not occluded / dropped / out of frame)
    front: bool  # face visible (front view) or back view
    scale: float  # body height in pixels


def _rot(down: np.ndarray, side: np.ndarray, angle: float, sign: float) -> np.ndarray:
    """Direction at ``angle`` from ``down`` turned toward ``sign * side`` (radians)."""
    return math.cos(angle) * down + sign * math.sin(angle) * side


def sample_pose(rng: np.random.Generator, size: tuple[int, int]) -> Pose:
    """Draw a pose of a person in an image of ``size=(H, W)``.

    Arms swing from crossed (-40°) to overhead (175°) with elbows bent up to ±150°, legs from
    crossed to kicking; the body is 50-115 % of the image height, placed anywhere horizontally,
    so some poses leave the frame.

    Args:
        rng: the pose's generator.
        size: image ``(H, W)``.

    Returns:
        The pose.
    """
    h, w = size
    s = rng.uniform(0.5, 1.15) * h  # body height (head top to soles) in pixels
    front = bool(rng.random() < 0.6)
    turn = rng.uniform(0.45, 1.0)  # shoulder/hip width factor (1 = square to the camera)
    lean = math.radians(rng.normal(0, 9))
    down = np.array([math.cos(lean), math.sin(lean)])  # (y, x) unit vector along the spine
    side = np.array([-math.sin(lean), math.cos(lean)])  # toward image right
    top_y = rng.uniform(-0.08 * s, max(h - 0.9 * s, -0.08 * s + 1.0))
    neck = np.array([top_y + 0.17 * s, rng.uniform(0.3 * w, 0.7 * w)])
    # The person's right side is on the image's left in a front view, on its right from the back.
    r_sign = -1.0 if front else 1.0
    j = np.zeros((NUM_JOINTS, 2))
    j[1] = neck
    sh, hp = 0.12 * s * turn, 0.085 * s * turn
    mid_hip = neck + 0.31 * s * down
    for sgn, (i_sh, i_el, i_wr, i_hip, i_kn, i_an) in (
        (r_sign, (2, 3, 4, 8, 9, 10)),
        (-r_sign, (5, 6, 7, 11, 12, 13)),
    ):
        j[i_sh] = neck + sgn * sh * side + 0.02 * s * down
        a = math.radians(rng.uniform(-40, 175))
        j[i_el] = j[i_sh] + 0.17 * s * _rot(down, side, a, sgn)
        b = a + math.radians(rng.uniform(-150, 150))
        j[i_wr] = j[i_el] + 0.15 * s * _rot(down, side, b, sgn)
        j[i_hip] = mid_hip + sgn * hp * side
        phi = math.radians(rng.uniform(-20, 45) if rng.random() < 0.85 else rng.uniform(45, 100))
        j[i_kn] = j[i_hip] + 0.23 * s * _rot(down, side, phi, sgn)
        psi = phi + math.radians(rng.uniform(-95, 40))
        j[i_an] = j[i_kn] + 0.22 * s * _rot(down, side, psi, sgn)
    face_turn = rng.uniform(-0.025, 0.025) * s
    j[0] = neck - 0.09 * s * down + face_turn * side  # nose
    eye_c = j[0] - 0.03 * s * down
    j[14] = eye_c + r_sign * 0.025 * s * side  # right eye
    j[15] = eye_c - r_sign * 0.025 * s * side  # left eye
    ear_c = neck - 0.1 * s * down + 0.5 * face_turn * side
    j[16] = ear_c + r_sign * 0.055 * s * side  # right ear
    j[17] = ear_c - r_sign * 0.055 * s * side  # left ear

    visible = np.ones(NUM_JOINTS, bool)
    if not front:
        visible[[0, 14, 15]] = False  # back view: no face
    if rng.random() < 0.5:
        visible[16 + int(rng.integers(2))] = False  # one ear hidden by a turned head
    visible &= rng.random(NUM_JOINTS) > 0.04  # detector misses (DeepFashion has them too)
    inside = (j[:, 0] >= 0) & (j[:, 0] < h) & (j[:, 1] >= 0) & (j[:, 1] < w)
    return Pose(joints=j, visible=visible & inside, front=front, scale=float(s))


class _Canvas:
    """Paints the colour-id map and the part-label map with the same shapes."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.cid = np.zeros(size, np.uint8)
        self.lab = np.zeros(size, np.uint8)

    @staticmethod
    def _pt(p: np.ndarray) -> tuple[int, int]:
        return int(round(p[1] * 4)), int(round(p[0] * 4))  # (x, y) with 2 fractional bits

    def line(self, a: np.ndarray, b: np.ndarray, width: float, cid: int, lab: int) -> None:
        t = max(1, int(round(width)))
        for img, v in ((self.cid, cid), (self.lab, lab)):
            cv2.line(img, self._pt(a), self._pt(b), v, t, cv2.LINE_8, shift=2)

    def disc(self, c: np.ndarray, r: float, cid: int, lab: int) -> None:
        for img, v in ((self.cid, cid), (self.lab, lab)):
            cv2.circle(img, self._pt(c), max(2, int(round(r * 4))), v, -1, cv2.LINE_8, shift=2)

    def ellipse(
        self, c: np.ndarray, ry: float, rx: float, angle: float, cid: int, lab: int
    ) -> None:
        axes = (max(2, int(round(rx * 4))), max(2, int(round(ry * 4))))
        for img, v in ((self.cid, cid), (self.lab, lab)):
            cv2.ellipse(img, self._pt(c), axes, angle, 0, 360, v, -1, cv2.LINE_8, shift=2)

    def poly(self, pts: Sequence[np.ndarray], cid: int, lab: int) -> None:
        arr = np.array([self._pt(p) for p in pts], np.int32)[None]  # (1, N, 2) as cv2 wants
        for img, v in ((self.cid, cid), (self.lab, lab)):
            cv2.fillPoly(img, arr, v, cv2.LINE_8, shift=2)


def _pattern(kind: str, yy: np.ndarray, xx: np.ndarray, period: float) -> np.ndarray:
    """Binary texture (bool array) anchored at the person (yy, xx are body-relative pixels)."""
    p = max(period, 2.0)
    if kind == "hstripes":
        return (np.floor(yy / (p / 2)) % 2).astype(bool)
    if kind == "vstripes":
        return (np.floor(xx / (p / 2)) % 2).astype(bool)
    if kind == "checks":
        return ((np.floor(yy / p) + np.floor(xx / p)) % 2).astype(bool)
    if kind == "dots":
        dy, dx = (yy % p) - p / 2, (xx % p) - p / 2
        return dy * dy + dx * dx < (0.28 * p) ** 2
    return np.zeros(yy.shape, bool)


def render_person(
    app: Appearance, pose: Pose, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one person.

    Args:
        app: the person's appearance.
        pose: the pose.
        size: image ``(H, W)``.

    Returns:
        ``(image, parts)``: ``(H, W, 3)`` uint8 RGB and ``(H, W)`` uint8 labels (PART_LABELS).
    """
    h, w = size
    s, j, b = pose.scale, pose.joints, app.build
    cv = _Canvas((h, w))
    spine = j[1] - (j[8] + j[11]) / 2  # hips -> neck, points up the body
    up = spine / max(float(np.linalg.norm(spine)), 1e-6)
    head_c = j[1] + 0.1 * s * up
    head_ry, head_rx = 0.068 * s, 0.056 * s
    # cv2 turns the ellipse's x axis toward +y for a positive angle; the head follows the lean.
    angle = math.degrees(math.atan2(spine[1], -spine[0]))

    if app.hair_style == 1:  # long hair hangs behind the shoulders
        cv.ellipse(head_c - 0.06 * s * up, 0.11 * s, 0.07 * s, angle, _HAIR, 2)

    def arms() -> None:
        for sh, el, wr in ((2, 3, 4), (5, 6, 7)):
            cv.line(j[sh], j[el], 0.06 * s * b, _TOP, 4)
            cv.line(j[el], j[wr], 0.048 * s * b, _TOP if app.long_sleeves else _SKIN, 4)
            cv.disc(j[wr], 0.032 * s, _SKIN, 5)

    def legs() -> None:
        for hip, kn, an in ((8, 9, 10), (11, 12, 13)):
            cv.line(j[hip], j[kn], 0.085 * s * b, _BOTTOM, 6)
            cv.line(j[kn], j[an], 0.065 * s * b, _SKIN if app.bottom_kind == 1 else _BOTTOM, 6)
            foot = j[an] + (j[an] - j[kn]) * 0.12
            cv.ellipse(foot, 0.03 * s, 0.05 * s, 0.0, _SHOES, 7)

    legs()
    if app.bottom_kind == 2:  # skirt: a trapezoid from the hips to the knees
        knees_mid = (j[9] + j[12]) / 2
        hips_mid = (j[8] + j[11]) / 2
        down = knees_mid - hips_mid
        half = (j[11] - j[8]) * 0.75
        cv.poly([j[8] - 0.2 * half, j[11] + 0.2 * half, hips_mid + 0.8 * down + 1.6 * half,
                 hips_mid + 0.8 * down - 1.6 * half], _BOTTOM, 6)
    if not pose.front:
        arms()  # seen from the back, arms are partly hidden by the torso
    # Torso: shoulders to hips, widened by the build, plus the neck.
    cv.line(j[1], head_c, 0.05 * s, _SKIN, 1)
    mid_sh = (j[2] + j[5]) / 2
    cv.poly([mid_sh + (j[2] - mid_sh) * 1.15 * b, mid_sh + (j[5] - mid_sh) * 1.15 * b,
             j[11] + (j[11] - j[8]) * 0.12 * b, j[8] + (j[8] - j[11]) * 0.12 * b], _TOP, 3)
    cv.ellipse(head_c, head_ry, head_rx, angle, _SKIN, 1)
    if pose.front:
        if app.hair_style != 2:
            cv.ellipse(head_c + 0.03 * s * up, head_ry * 0.7, head_rx * 1.02, angle, _HAIR, 2)
        for eye in (14, 15):
            cv.disc(j[eye], 0.008 * s + 0.3, _DARK, 1)
        cv.disc(j[0] - 0.022 * s * up, 0.007 * s, _DARK, 1)  # mouth, just below the nose
    else:
        cv.ellipse(head_c + 0.01 * s * up, head_ry * (1.0 if app.hair_style != 2 else 0.6),
                   head_rx * 1.02, angle, _HAIR, 2)
    if pose.front:
        arms()

    # Colour: one lookup over (colour id, texture bit).
    lut = np.zeros((16, 3), np.uint8)
    lut[_BG] = app.background
    lut[_SKIN], lut[_HAIR], lut[_TOP], lut[_BOTTOM] = app.skin, app.hair, app.top, app.bottom
    lut[_SHOES], lut[_DARK] = app.shoes, (30, 25, 25)
    lut[8 + _TOP], lut[8 + _BOTTOM] = app.top2, app.bottom2
    lut[8 + _SKIN], lut[8 + _HAIR], lut[8 + _BG] = app.skin, app.hair, app.background
    lut[8 + _SHOES], lut[8 + _DARK] = app.shoes, (30, 25, 25)
    yy = np.arange(h, dtype=np.float32)[:, None] - float(j[1, 0])  # (H, 1) body-relative rows
    xx = np.arange(w, dtype=np.float32)[None, :] - float(j[1, 1])  # (1, W) body-relative cols
    yy, xx = np.broadcast_arrays(yy, xx)  # (H, W) each
    bit = np.zeros((h, w), np.uint8)
    if app.top_texture != "plain":
        bit |= (cv.cid == _TOP) & _pattern(app.top_texture, yy, xx, app.top_period * s)
    if app.bottom_texture != "plain":
        bit |= (cv.cid == _BOTTOM) & _pattern(app.bottom_texture, yy, xx, app.top_period * s * 1.3)
    img = lut[cv.cid + 8 * bit]  # (H, W, 3)
    # Soft shading so parts are not perfectly flat: a vertical light falloff.
    shade = (1.0 - 0.12 * (np.arange(h, dtype=np.float32) / h))[:, None, None]  # (H, 1, 1)
    img = np.where((cv.lab > 0)[..., None], (img * shade).astype(np.uint8), img)
    return img, cv.lab


# The root writer lives in cfld.data.synthetic_root (it imports this module); its names are
# still reachable here.
_ROOT_NAMES = ("image_name", "make_sample_root", "pair_silhouette_iou", "synthesize")


def __getattr__(name: str) -> object:
    if name in _ROOT_NAMES:
        from cfld.data import synthetic_root

        return getattr(synthetic_root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PART_LABELS",
    "PARTS_DIRS",
    "Appearance",
    "Pose",
    "render_person",
    "sample_appearance",
    "sample_pose",
]
