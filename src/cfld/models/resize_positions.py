"""Carry a CFLD model's weights to another source-image size (fine-tuning at a new resolution).

Two kinds of weights depend on the size of the source image that H_S sees, all others are
size-free (convolutions, attention projections, norms):

* each Swin block's relative-position bias table, ((2w − 1)², heads) for its window w — the
  window is clamped to a stage's feature map, so a larger source can give a stage a larger
  window (Liu et al., ICCV 2021, §3.2: a bias table learnt for one window initialises another
  window's by bicubic interpolation);
* H_D's positional embedding of the last H_S stage's tokens, (1, h·w, C) on that stage's h × w
  grid (paper §3.2: the perception decoder attends to those tokens).

:func:`resize_position_tables` interpolates exactly these (bicubic for the bias tables,
bilinear for the token grid), so a model trained at one size starts a fine-tune at another
(``cfld train --init-from``) instead of from scratch.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

#: Suffixes of the size-dependent weights this module knows how to resize.
RESIZABLE = ("relative_position_bias_table", "kv_pos_embed")


def _side(n: int, what: str) -> int:
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"{what}: {n} entries are not a square grid")
    return side


def resize_bias_table(table: Tensor, rows: int) -> Tensor:
    """((2w−1)², heads) → (rows, heads), bicubic on the (2w−1) × (2w−1) offset grid."""
    side, new = _side(table.shape[0], "bias table"), _side(rows, "bias table")
    grid = table.T.reshape(1, table.shape[1], side, side).float()  # (1, heads, 2w-1, 2w-1)
    out = F.interpolate(grid, size=(new, new), mode="bicubic", align_corners=True)
    return out.reshape(table.shape[1], rows).T.contiguous().to(table.dtype)  # (rows, heads)


def resize_token_grid(embed: Tensor, tokens: int) -> Tensor:
    """(1, h·w, C) → (1, tokens, C), bilinear on the square token grid."""
    side, new = _side(embed.shape[1], "token grid"), _side(tokens, "token grid")
    grid = embed.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()  # (1, C, h, w)
    out = F.interpolate(grid, size=(new, new), mode="bilinear", align_corners=False)
    return out.permute(0, 2, 3, 1).reshape(1, tokens, -1).contiguous().to(embed.dtype)


def resize_position_tables(state: dict[str, Tensor], model: nn.Module) -> list[str]:
    """Resize, in ``state``, every size-dependent weight whose shape differs from ``model``'s.

    Returns the keys resized (empty when the sizes already agree).  Other shape mismatches are
    left for the strict load to report.
    """
    target = model.state_dict()
    done = []
    for key, value in list(state.items()):
        want = target.get(key)
        if want is None or want.shape == value.shape or not key.endswith(RESIZABLE):
            continue
        if key.endswith("relative_position_bias_table") and value.shape[1:] == want.shape[1:]:
            state[key] = resize_bias_table(value, want.shape[0])
        elif key.endswith("kv_pos_embed") and value.shape[::2] == want.shape[::2]:
            state[key] = resize_token_grid(value, want.shape[1])
        else:
            continue
        done.append(key)
    return done


__all__ = ["RESIZABLE", "resize_bias_table", "resize_position_tables", "resize_token_grid"]
