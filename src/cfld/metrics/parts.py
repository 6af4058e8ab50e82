"""Shape and colour scores for procedural people (our own data, design §5).

The procedural renderer (:mod:`cfld.data.synthetic`) writes a part-label map next to every image
(``train_parts/``, ``test_parts/``; 0 = background, 1..7 = body parts) and draws each person on a
plain grey background (one colour per person, unshaded, JPEG-compressed).  That allows two
scores a generic metric cannot give:

- :func:`silhouette_iou`: IoU between the ground-truth silhouette (part label > 0) and the
  silhouette of the generated image.  A generated image has no part map, so its foreground is
  every pixel whose colour differs from a background estimate (median colour of the image border,
  robust to a person touching the frame) by more than a threshold in some channel.
- :func:`part_colour_error`: for each body part of the ground truth, the distance between the
  mean colour of the generated and the ground-truth pixels under that part's mask — did the
  model put the right clothes' colours in the right places.
"""

from __future__ import annotations

import torch

__all__ = [
    "DEFAULT_ERODE",
    "erode_labels",
    "estimate_background",
    "foreground_mask",
    "part_colour_error",
    "silhouette_iou",
]

# Per-channel difference (in [0, 1]) above which a pixel is foreground.  The renderer's closest
# colour pair is light skin against a mid grey background (~30/255 apart); JPEG noise on the plain
# background stays within a few levels, so 20/255 separates the two.
DEFAULT_THRESHOLD = 20 / 255
# Parts covering fewer pixels than this (after resizing) are skipped by part_colour_error: their
# mean colour is dominated by edge blur.
MIN_PART_PIXELS = 16
# Erosion (pixels) of each part mask used by our reports at 128×88: a 1-2 pixel misregistration
# of a part's boundary then cannot dominate its mean colour (the ground truth shifted by 2 px
# scores ~0.05 un-eroded), so the score measures the colour inside the part.
DEFAULT_ERODE = 2


def _check_images(img: torch.Tensor, name: str) -> torch.Tensor:
    if img.ndim == 3:
        img = img[None]
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"{name} must be (B,3,H,W) or (3,H,W) in [0, 1], got {tuple(img.shape)}")
    return img.float()


def _check_parts(parts: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if parts.ndim == 2:
        parts = parts[None]
    if parts.ndim == 4 and parts.shape[1] == 1:
        parts = parts[:, 0]
    if parts.ndim != 3 or parts.shape[0] != like.shape[0] or parts.shape[-2:] != like.shape[-2:]:
        raise ValueError(
            f"part maps must be (B,H,W) integer labels matching the images {tuple(like.shape)}, "
            "got "
            f"{tuple(parts.shape)}; resize them with nearest-neighbour to the image size"
        )
    return parts.long().to(like.device)


def estimate_background(img: torch.Tensor, border: int | None = None) -> torch.Tensor:
    """Background colour of each image: per-channel median of a frame of border pixels.

    Args:
        img: (B,3,H,W) images in [0, 1].
        border: frame width in pixels; default ``max(1, min(H, W) // 32)``.

    Returns:
        (B,3) colours.
    """
    img = _check_images(img, "img")
    h, w = img.shape[-2:]
    k = max(1, min(h, w) // 32) if border is None else int(border)
    frame = torch.cat(
        [
            img[:, :, :k, :].flatten(2),  # top rows    (B,3,k*W)
            img[:, :, -k:, :].flatten(2),  # bottom rows (B,3,k*W)
            img[:, :, k:-k, :k].flatten(2),  # left cols  (B,3,(H-2k)*k)
            img[:, :, k:-k, -k:].flatten(2),  # right cols (B,3,(H-2k)*k)
        ],
        dim=2,
    )
    return frame.median(dim=2).values


def foreground_mask(
    img: torch.Tensor,
    background: torch.Tensor | tuple[float, float, float] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> torch.Tensor:
    """Foreground of images drawn on a plain background.

    Args:
        img: (B,3,H,W) in [0, 1].
        background: (B,3) or (3,) RGB in [0, 1]; ``None`` estimates it per image
            (:func:`estimate_background`).
        threshold: a pixel is foreground when some channel differs from the background by more.

    Returns:
        (B,H,W) boolean masks.
    """
    img = _check_images(img, "img")
    if background is None:
        bg = estimate_background(img)
    else:
        bg = torch.as_tensor(background, dtype=img.dtype, device=img.device).reshape(-1, 3)
        if bg.shape[0] not in (1, img.shape[0]):
            raise ValueError(
                f"background must be (3,) or ({img.shape[0]},3), got {tuple(bg.shape)}"
            )
    diff = (img - bg[:, :, None, None]).abs().amax(dim=1)  # (B,H,W)
    return diff > threshold


def silhouette_iou(
    pred_img: torch.Tensor,
    gt_parts: torch.Tensor,
    background: torch.Tensor | tuple[float, float, float] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> torch.Tensor:
    """IoU between the generated image's foreground and the ground-truth silhouette.

    Args:
        pred_img: (B,3,H,W) generated images in [0, 1].
        gt_parts: (B,H,W) ground-truth part labels (0 = background).
        background: background colour(s) for the generated images; ``None`` estimates them.
        threshold: see :func:`foreground_mask`.

    Returns:
        (B,) IoU values in [0, 1] (1 when both silhouettes are empty).
    """
    pred_img = _check_images(pred_img, "pred_img")
    gt = _check_parts(gt_parts, pred_img) > 0
    fg = foreground_mask(pred_img, background, threshold)
    inter = (fg & gt).flatten(1).sum(1).double()
    union = (fg | gt).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def erode_labels(parts: torch.Tensor, pixels: int) -> torch.Tensor:
    """Shrink every labelled region of (B,H,W) part maps by ``pixels`` (square structuring element).

    A pixel keeps its label only when its whole (2·pixels+1)² neighbourhood has the same label;
    the others become 0 (background, i.e. ignored by :func:`part_colour_error`).  Pixels beyond
    the image border do not erode (a part cut by the frame keeps its edge pixels).
    """
    if pixels < 0:
        raise ValueError(f"erode must be >= 0 pixels, got {pixels}")
    if pixels == 0:
        return parts
    k = 2 * pixels + 1
    x = parts.double().unsqueeze(1)  # (B,1,H,W)
    # Same label in the whole window <=> window max == window min == own label.
    hi = torch.nn.functional.max_pool2d(x, k, stride=1, padding=pixels)
    lo = -torch.nn.functional.max_pool2d(-x, k, stride=1, padding=pixels)
    keep = (hi == x) & (lo == x)
    return torch.where(keep, x, torch.zeros_like(x))[:, 0].long()


def part_colour_error(
    pred_img: torch.Tensor,
    gt_img: torch.Tensor,
    gt_parts: torch.Tensor,
    min_pixels: int = MIN_PART_PIXELS,
    per_part: bool = False,
    erode: int = 0,
) -> torch.Tensor | tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Mean colour error per body part, averaged over the parts present.

    For each label l > 0 covering at least ``min_pixels`` pixels of ``gt_parts`` (after
    erosion), the error is the Euclidean distance between the mean RGB of ``pred_img`` and of
    ``gt_img`` under the mask (units of [0, 1] RGB, so between 0 and sqrt(3)).

    Args:
        pred_img: (B,3,H,W) generated images in [0, 1].
        gt_img: (B,3,H,W) ground-truth images in [0, 1].
        gt_parts: (B,H,W) ground-truth part labels.
        min_pixels: smaller parts are skipped.
        per_part: also return ``{label: (B,) errors}`` (NaN where the part is absent).
        erode: shrink each part mask by this many pixels first (:func:`erode_labels`); our
            reports use :data:`DEFAULT_ERODE` (2) at 128×88.

    Returns:
        (B,) errors (NaN for an image without any part); with ``per_part`` a tuple.
    """
    pred_img = _check_images(pred_img, "pred_img")
    gt_img = _check_images(gt_img, "gt_img").to(pred_img.device)
    if gt_img.shape != pred_img.shape:
        raise ValueError(
            f"pred_img {tuple(pred_img.shape)} and gt_img {tuple(gt_img.shape)} differ"
        )
    parts = erode_labels(_check_parts(gt_parts, pred_img), int(erode))
    b = pred_img.shape[0]
    total = torch.zeros(b, dtype=torch.float64, device=pred_img.device)
    count = torch.zeros(b, dtype=torch.float64, device=pred_img.device)
    per: dict[int, torch.Tensor] = {}
    for label in sorted(int(v) for v in parts.unique().tolist() if v > 0):
        mask = (parts == label).unsqueeze(1).double()  # (B,1,H,W)
        npx = mask.flatten(1).sum(1)  # (B,)
        ok = npx >= min_pixels
        denom = npx.clamp(min=1)[:, None]
        mean_p = (pred_img.double() * mask).flatten(2).sum(2) / denom  # (B,3)
        mean_g = (gt_img.double() * mask).flatten(2).sum(2) / denom  # (B,3)
        err = (mean_p - mean_g).norm(dim=1)  # (B,)
        total += torch.where(ok, err, torch.zeros_like(err))
        count += ok.double()
        per[label] = torch.where(ok, err, torch.full_like(err, float("nan")))
    out = torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))
    return (out, per) if per_part else out
