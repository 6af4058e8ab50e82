"""What the shipped model is for, and cheap checks of a source photo against it.

The shipped model (``cfld-synthetic``) is a small CFLD trained on our procedural people: it is
there to try every tool offline.  Given a real photo it draws a small generic figure of the
photo's colours.  Real photos need the paper's model: the authors' checkpoint converted with
``cfld convert`` (README, "Real weights").  :func:`source_notes` says so when it applies, and
warns when a source photo shows no person at all.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: One line, printed by the CLI and shown by the app when the shipped model gets a real photo.
SHIPPED_NOTE = ("note: the shipped model (cfld-synthetic) is a small model of procedural people, "
                "for trying the tools offline; on a real photo it draws a generic figure. For "
                "real results use the authors' weights: cfld convert --official CKPT_DIR "
                "--pretrained-sd SD15 --out cfld-fashion, then --model cfld-fashion (README: "
                "Real weights)")
#: What the app's header says about the shipped model.
SHIPPED_HEADER = ("**The model loaded here is the shipped small model**: a small model of "
                  "procedural people (flat-coloured figures like the examples below), for "
                  "trying the tools offline. A real photo gives a generic figure, not that "
                  "person. Real results need the authors' CFLD checkpoint with Stable "
                  "Diffusion 1.5 (`cfld convert --official CKPT_DIR --pretrained-sd SD15 --out "
                  "cfld-fashion`, then `cfld app --model cfld-fashion`; see the README, "
                  "\"Real weights\").")
#: Procedural images put at least this share of their pixels into their 24 commonest colours
#: (32 levels per channel); photographs far less (skimage's astronaut 0.34, coffee 0.27).
PROCEDURAL_COVERAGE = 0.62


def colour_coverage(image: Image.Image, top: int = 24, levels: int = 32) -> float:
    """Share of the pixels (of a ≤128-pixel thumbnail) in the ``top`` commonest colours at
    ``levels`` levels per channel: near 1 for flat-coloured drawings, low for photographs."""
    thumb = image.convert("RGB")
    thumb.thumbnail((128, 128), Image.BOX)
    q = np.asarray(thumb).astype(np.int64) * levels // 256  # (h, w, 3) in [0, levels)
    codes = (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]
    counts = np.sort(np.bincount(codes.ravel()))[::-1]
    return float(counts[:top].sum() / codes.size)


def is_greyscale(image: Image.Image) -> bool:
    """No colour at all (our procedural people always have some)."""
    a = np.asarray(image.convert("RGB")).astype(np.int16)
    return bool(np.abs(a - a.mean(axis=2, keepdims=True)).max() <= 8)


def looks_procedural(image: Image.Image) -> bool:
    """Whether ``image`` looks like one of our procedural people (flat colours) rather than a
    photograph.  A cheap heuristic (a colour histogram), not a classifier."""
    return not is_greyscale(image) and colour_coverage(image) >= PROCEDURAL_COVERAGE


def finds_person(image: Image.Image) -> bool | None:
    """Whether MediaPipe finds a person in ``image`` (None when MediaPipe is not installed)."""
    from cfld.pose.estimate import MissingBackendError, NoPersonFoundError, estimate_keypoints

    try:
        estimate_keypoints(image.convert("RGB"))
    except NoPersonFoundError:
        return False
    except MissingBackendError:
        return None
    return True


def source_notes(image: Image.Image, shipped: bool, what: str = "source photo") -> list[str]:
    """Lines to show the user about a source image before generating: the shipped model's
    note for a photograph, and a warning when the photograph shows no person."""
    if looks_procedural(image):
        return []
    notes = [SHIPPED_NOTE] if shipped else []
    if finds_person(image) is False:
        notes.append(f"warning: no person found in the {what} (MediaPipe found no pose); the "
                     "model will still draw a person, with the photo's colours")
    return notes


__all__ = ["PROCEDURAL_COVERAGE", "SHIPPED_HEADER", "SHIPPED_NOTE", "colour_coverage",
           "finds_person", "is_greyscale", "looks_procedural", "source_notes"]
