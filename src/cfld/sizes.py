"""Image sizes ``(H, W)``: the one validator and the one ``"HxW"`` parser."""

from __future__ import annotations

from collections.abc import Sequence


def check_size(size: Sequence[int], what: str = "frame") -> tuple[int, int]:
    """Return ``size`` as a validated ``(H, W)`` tuple of positive ints.

    Raises:
        ValueError: ``size`` is not a pair of positive integers (the message names ``what``).
    """
    try:
        if isinstance(size, (str, bytes)) or any(isinstance(v, (bool, str)) for v in size):
            raise TypeError
        h, w = (int(v) for v in size)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"{what} must be a pair (H, W) of positive integers, got {size!r}"
        ) from None
    if h <= 0 or w <= 0 or (h, w) != tuple(size):
        raise ValueError(f"{what} must be a pair (H, W) of positive integers, got {size!r}")
    return h, w


def parse_size(text: str | Sequence[int], min_side: int = 1, why: str = "",
               max_side: int | None = None) -> tuple[int, int]:
    """Parse a size written ``HxW`` (e.g. ``256x176``; ``×`` and ``*`` also work) or an
    ``(h, w)`` pair into ``(H, W)``.

    Args:
        text: The size string, or a pair of ints.
        min_side: Smallest allowed side.
        why: Why sides below ``min_side`` are refused (appended to the error).
        max_side: Largest allowed side (None: no limit).

    Raises:
        ValueError: Not of the form ``HxW`` with positive integers, or a side below
            ``min_side`` or above ``max_side``.
    """
    if isinstance(text, str):
        parts = text.lower().replace("×", "x").replace("*", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isdecimal() for p in parts):
            raise ValueError(f"size must be written HxW with positive integers (e.g. 256x176), "
                             f"got {text!r}")
        h, w = check_size((int(parts[0]), int(parts[1])), "size")
    else:
        h, w = check_size(text, "size")
    if min(h, w) < min_side:
        raise ValueError(f"size {h}x{w} is too small: sides must be at least {min_side} pixels"
                         + (f" ({why})" if why else ""))
    if max_side is not None and max(h, w) > max_side:
        raise ValueError(f"size {h}x{w} is too large: sides must be at most {max_side} pixels")
    return h, w


__all__ = ["check_size", "parse_size"]
