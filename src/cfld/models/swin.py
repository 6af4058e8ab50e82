"""Swin Transformer (v1) building blocks of the source encoder H_S, as in the authors' copy of
Microsoft's implementation (fidelity §2.1): window attention with a learned relative-position
bias and a shifted-window mask, pre-LayerNorm blocks with stochastic depth, patch merging.
:class:`~cfld.models.source_encoder.SourceEncoder` assembles them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cfld.seeding import current_sample_generators, per_sample_uniform

# Value added to attention logits of token pairs that come from different image regions
# inside one shifted window (Microsoft Swin v1 uses −100, not −inf).
_SHIFT_MASK_VALUE = -100.0


def relative_position_index_buffer(window: int) -> Tensor:
    """Index (N, N), N = window², into a ((2·window−1)², heads) bias table.

    Entry [i, j] encodes the offset (row_i − row_j, col_i − col_j) of tokens i and j of a
    window (row-major), each shifted into [0, 2·window−2], as row_offset·(2w−1) + col_offset.
    Built with torch ops so that it also works on the meta device.
    """
    pos = torch.arange(window)
    rows = pos.repeat_interleave(window)  # (N,) row of each token
    cols = pos.repeat(window)  # (N,) column of each token
    d_row = rows[:, None] - rows[None, :] + (window - 1)  # (N, N) in [0, 2w-2]
    d_col = cols[:, None] - cols[None, :] + (window - 1)
    return d_row * (2 * window - 1) + d_col


def shift_attention_mask(resolution: int, window: int, shift: int) -> Tensor:
    """Additive mask (num_windows, N, N) for shifted-window attention.

    After the cyclic shift, the last window row/column mixes tokens from up to three
    original regions along each axis: [0, R−w), [R−w, R−s), [R−s, R). Pairs of tokens
    from different regions get −100, pairs from the same region 0.
    """
    pos = torch.arange(resolution)
    # region id along one axis: 0, 1 or 2
    band = (pos >= resolution - window).long() + (pos >= resolution - shift).long()
    region = band[:, None] * 3 + band[None, :]  # (R, R) region id of each token
    n = resolution // window
    # (R, R) -> (n, w, n, w) -> (n, n, w, w) -> (nW, N): the region ids per window
    region = region.view(n, window, n, window).permute(0, 2, 1, 3).reshape(n * n, window * window)
    different = region[:, :, None] != region[:, None, :]  # (nW, N, N)
    return different.float() * _SHIFT_MASK_VALUE


class DropPath(nn.Module):
    """Stochastic depth: zero the whole residual branch of a sample with probability p.

    Kept samples are scaled by 1/(1−p); identity in eval mode or when p = 0.  Inside a
    :func:`cfld.seeding.sample_generators` block (the trainer), row i's keep/drop draw comes
    from generator i, so it does not depend on which process holds the sample; otherwise from
    torch's global generator, as in the authors' code.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        generators = current_sample_generators()
        if generators is not None:
            assert len(generators) == x.shape[0], "one generator per sample"
            mask = (per_sample_uniform(generators, x.device) < keep).to(x.dtype).view(shape)
        else:
            mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.4g}"


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: Conv2d(k = s = patch) then optional LayerNorm."""

    def __init__(self, patch_size: int, in_channels: int, embed_dim: int, norm: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, h·w, C)
        if self.norm is not None:
            x = self.norm(x)
        return x


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a relative-position bias table."""

    def __init__(self, dim: int, window: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, num_heads)
        )
        self.register_buffer(
            "relative_position_index", relative_position_index_buffer(window), persistent=False
        )
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def relative_position_bias(self) -> Tensor:
        """Gathered bias (heads, N, N) for one window."""
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attention over windows.

        Args:
            x: (B, nW, N, C) tokens of nW windows of N tokens each.
            mask: optional additive shift mask (nW, N, N).

        Returns:
            (B, nW, N, C).
        """
        b, nw, n, c = x.shape
        head_dim = c // self.num_heads
        # (B, nW, N, 3C) -> (3, B·nW, heads, N, head_dim); channel layout (3, heads, d).
        # 4-D inputs let SDPA pick a fused kernel (5-D falls back to the math path).
        qkv = self.qkv(x).view(b * nw, n, 3, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = self.relative_position_bias().unsqueeze(0)  # (1, heads, N, N), broadcasts
        if mask is not None:
            bias = bias + mask.unsqueeze(1)  # (nW, heads, N, N)
            if b > 1:  # windows are batch-major: (B, nW) -> B·nW
                bias = bias.expand(b, *bias.shape).reshape(b * nw, *bias.shape[1:])
        # softmax(q kᵀ / √d + bias + mask) v, identical to the official explicit matmul
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        out = out.transpose(1, 2).reshape(b, nw, n, c)  # (B·nW, N, heads, d) -> (B, nW, N, C)
        return self.proj(out)


class Mlp(nn.Module):
    """Linear → exact GELU → Linear."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-LN (shifted) window attention block + MLP block, both residual."""

    def __init__(
        self,
        dim: int,
        resolution: int,
        num_heads: int,
        window: int,
        shift: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_path: float,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = shift_attention_mask(resolution, window, shift) if shift > 0 else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, R·R, C) row-major tokens -> same shape."""
        b, _, c = x.shape
        r, w, s = self.resolution, self.window, self.shift
        n = r // w
        y = self.norm1(x).view(b, r, r, c)
        if s > 0:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        # (B, R, R, C) -> (B, n, w, n, w, C) -> (B, n, n, w, w, C) -> (B, nW, N, C)
        y = y.view(b, n, w, n, w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, n * n, w * w, c)
        y = self.attn(y, self.attn_mask)
        # inverse window partition back to (B, R, R, C)
        y = y.view(b, n, n, w, w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, r, r, c)
        if s > 0:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, r * r, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2×2 neighbour concat (4C) → LayerNorm(4C) → Linear(4C → 2C, no bias); halves H, W."""

    def __init__(self, dim: int, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, R·R, C) -> (B, (R/2)², 2C)."""
        b, _, c = x.shape
        r = self.resolution
        x = x.view(b, r, r, c)
        # official neighbour order: (even,even), (odd,even), (even,odd), (odd,odd) as (row,col)
        x = torch.cat(
            [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1
        )  # (B, R/2, R/2, 4C)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class SwinStage(nn.Module):
    """``depth`` Swin blocks (odd ones shifted by ``shift``), then optional patch merging.

    The merge is stored as ``downsample`` at the END of the stage (official layout).
    """

    def __init__(
        self,
        dim: int,
        resolution: int,
        depth: int,
        num_heads: int,
        window: int,
        shift: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_paths: Sequence[float],
        downsample: bool,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(
                dim,
                resolution,
                num_heads,
                window,
                shift=0 if j % 2 == 0 else shift,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop_path=drop_paths[j],
            )
            for j in range(depth)
        )
        self.downsample = PatchMerging(dim, resolution) if downsample else None


__all__ = ["DropPath", "Mlp", "PatchEmbed", "PatchMerging", "SwinBlock", "SwinStage",
           "relative_position_index_buffer", "shift_attention_mask",
           "WindowAttention"]
