"""Source image encoder H_S: the authors' Swin-B variant (CFLD, CVPR 2024, Sec. 3.2).

A Swin Transformer (v1) backbone that turns the 256×256 source image into four
multi-scale token maps f1..f4. It follows the authors' copy of Microsoft's Swin v1:

* patch embedding = Conv2d(kernel = stride = patch) + LayerNorm, no absolute position
  embedding;
* each stage = ``depth`` pre-LayerNorm blocks of window attention with a learned
  relative-position bias, odd blocks shifted by half a window (cross-region pairs masked
  with −100), exact-GELU MLP and stochastic depth;
* per-stage effective window: a stage whose resolution is not larger than the configured
  window attends over the whole map (window = resolution) and is never shifted;
* patch merging at the END of stages 1..n−1 (stored as ``layers.{i}.downsample``);
* no final norm and no classification head (the authors' ``LAST_NORM=False``).

``forward`` returns the token sequence of every stage before its patch merging.

Parameter names equal the official state dict after stripping its ``backbone.`` prefix.
The index / shift-mask buffers (``relative_position_index``, ``attn_mask``) are
recomputed here and are not persistent: drop them from official checkpoints with
:func:`official_buffer_keys` before ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cfld.models.swin import (
    PatchEmbed,
    SwinStage,
    WindowAttention,
    relative_position_index_buffer,
    shift_attention_mask,
)

__all__ = [
    "RECOMPUTED_BUFFER_NAMES",
    "SourceEncoder",
    "load_swin_pretrained",
    "official_buffer_keys",
]

# Official Swin checkpoints store these deterministic buffers; we recompute them, so a
# key whose last dotted component is one of these names must be dropped before loading.
RECOMPUTED_BUFFER_NAMES: tuple[str, ...] = (
    "relative_position_index",
    "relative_coords_table",
    "attn_mask",
)


def official_buffer_keys(state_dict: Mapping[str, object]) -> list[str]:
    """Keys of an official Swin/CFLD state dict that hold recomputed buffers.

    Rule: a key is a buffer to drop iff its last dotted component is in
    :data:`RECOMPUTED_BUFFER_NAMES` (works with or without a ``backbone.`` prefix).

    Args:
        state_dict: any mapping from parameter names to tensors.

    Returns:
        The matching keys, in the mapping's order.
    """
    return [k for k in state_dict if k.rsplit(".", 1)[-1] in RECOMPUTED_BUFFER_NAMES]


class SourceEncoder(nn.Module):
    """H_S: Swin Transformer (v1) source-image encoder returning four stage feature maps.

    Defaults are the authors' Swin-B at 256×256 with window 16 (86,991,864 parameters).

    Args:
        img_size: side of the square input image.
        patch_size: patch-embedding kernel and stride.
        in_channels: input image channels.
        embed_dim: channels of stage 1; stage i has ``embed_dim · 2**i``.
        depths: number of blocks per stage.
        num_heads: attention heads per stage.
        window_size: configured attention window; a stage whose resolution is not larger
            uses window = resolution and no shift.
        mlp_ratio: MLP hidden width / channels.
        qkv_bias: bias on the qkv projection.
        drop_path_rate: stochastic-depth rate of the last block (linear from 0).
        patch_norm: LayerNorm after the patch-embedding conv.
    """

    def __init__(
        self,
        img_size: int = 256,
        patch_size: int = 4,
        in_channels: int = 3,
        embed_dim: int = 128,
        depths: tuple[int, ...] = (2, 2, 18, 2),
        num_heads: tuple[int, ...] = (4, 8, 16, 32),
        window_size: int = 16,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.2,
        patch_norm: bool = True,
    ) -> None:
        super().__init__()
        depths, num_heads = tuple(depths), tuple(num_heads)
        if len(depths) == 0 or len(depths) != len(num_heads):
            raise ValueError(
                f"depths and num_heads must be non-empty and of equal length, got "
                f"depths={depths}, num_heads={num_heads}"
            )
        if img_size % patch_size != 0:
            raise ValueError(
                f"img_size ({img_size}) must be divisible by patch_size ({patch_size})"
            )
        self.img_size = img_size
        self.in_channels = in_channels
        self.num_stages = len(depths)
        self.dims = [embed_dim * 2**i for i in range(self.num_stages)]
        self.resolutions: list[int] = []
        self.windows: list[int] = []  # effective window per stage
        res = img_size // patch_size
        for i in range(self.num_stages):
            win = min(window_size, res)
            if res % win != 0:
                raise ValueError(
                    f"stage {i}: resolution {res} is not divisible by the window {win} "
                    f"(img_size={img_size}, patch_size={patch_size}, window_size={window_size})"
                )
            if self.dims[i] % num_heads[i] != 0:
                raise ValueError(
                    f"stage {i}: channels {self.dims[i]} not divisible by heads {num_heads[i]}"
                )
            if i < self.num_stages - 1 and res % 2 != 0:
                raise ValueError(f"stage {i}: resolution {res} must be even for patch merging")
            self.resolutions.append(res)
            self.windows.append(win)
            res //= 2

        total = sum(depths)
        # stochastic-depth rate of block t of all blocks: linspace(0, rate, total)
        rates = [drop_path_rate * t / (total - 1) if total > 1 else 0.0 for t in range(total)]

        self.patch_embed = PatchEmbed(patch_size, in_channels, embed_dim, patch_norm)
        self.layers = nn.ModuleList()
        start = 0
        for i in range(self.num_stages):
            win = self.windows[i]
            self.layers.append(
                SwinStage(
                    dim=self.dims[i],
                    resolution=self.resolutions[i],
                    depth=depths[i],
                    num_heads=num_heads[i],
                    window=win,
                    # a whole-map window is never shifted (official per-block rule)
                    shift=0 if win == self.resolutions[i] else win // 2,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop_paths=rates[start : start + depths[i]],
                    downsample=i < self.num_stages - 1,
                )
            )
            start += depths[i]
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # official Swin init: trunc-normal(0.02) Linear weights, zero biases, LN 1/0,
        # trunc-normal(0.02) bias tables; the patch conv keeps the PyTorch default.
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, WindowAttention):
            nn.init.trunc_normal_(module.relative_position_bias_table, std=0.02)

    @torch.no_grad()
    def reset_buffers(self) -> None:
        """Recompute the non-persistent index / mask buffers on the parameters' device.

        Needed only after ``to_empty()`` (e.g. a model built on the meta device and then
        materialised), which leaves non-persistent buffers uninitialised.
        """
        device = self.patch_embed.proj.weight.device
        for stage in self.layers:
            for block in stage.blocks:
                block.attn.relative_position_index = relative_position_index_buffer(
                    block.window
                ).to(device)
                if block.shift > 0:
                    block.attn_mask = shift_attention_mask(
                        block.resolution, block.window, block.shift
                    ).to(device)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Encode a source image.

        Args:
            x: (B, in_channels, img_size, img_size) image in [-1, 1].

        Returns:
            One tensor per stage, (B, H_i·W_i, C_i) row-major tokens taken after the
            stage's blocks and before its patch merging; for the defaults
            (B, 4096, 128), (B, 1024, 256), (B, 256, 512), (B, 64, 1024).
        """
        expected = (self.in_channels, self.img_size, self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"SourceEncoder expects input of shape (B, {expected[0]}, {expected[1]}, "
                f"{expected[2]}), got {tuple(x.shape)}"
            )
        x = self.patch_embed(x)  # (B, R·R, C)
        features = []
        for stage in self.layers:
            for block in stage.blocks:
                x = block(x)
            features.append(x)
            if stage.downsample is not None:
                x = stage.downsample(x)
        return features


def _resize_bias_table(table: Tensor, side: int) -> Tensor:
    """Bicubically resize a ((2w−1)², heads) table to (side², heads) (official rule)."""
    length, heads = table.shape
    src = math.isqrt(length)
    if src == side:
        return table
    grid = table.float().transpose(0, 1).reshape(1, heads, src, src)  # (1, heads, s, s)
    grid = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
    return grid.reshape(heads, side * side).transpose(0, 1).to(table.dtype)


def load_swin_pretrained(
    encoder: SourceEncoder,
    state_dict_or_path: Mapping[str, Tensor] | str | os.PathLike[str],
) -> tuple[list[str], list[str]]:
    """Load Microsoft Swin v1 ImageNet weights (e.g. swin_base_patch4_window12_384_22kto1k).

    Follows the authors' loader: drops recomputed buffers (``relative_position_index``,
    ``relative_coords_table``, ``attn_mask``) and the unused ``norm.*`` / ``head.*``
    weights, bicubically resizes every ``relative_position_bias_table`` to the block's
    effective window, and loads non-strictly.

    Args:
        encoder: the model to fill (in place).
        state_dict_or_path: a state dict (optionally wrapped as ``{"model": ...}``) or the
            path of a ``.pth`` (loaded with ``weights_only=True``) or ``.safetensors`` file.

    Returns:
        ``(missing, unexpected)`` keys of ``load_state_dict`` after the drops.

    Raises:
        ValueError: if a kept weight's shape does not match the encoder.
    """
    if isinstance(state_dict_or_path, (str, os.PathLike)):
        from cfld.checks.models import load_weights

        state = load_weights(state_dict_or_path, "Swin weights")
    else:
        state = state_dict_or_path
    if not isinstance(state, Mapping):
        raise ValueError(f"the Swin weights must be a state dict, got {type(state).__name__}")
    if "model" in state and isinstance(state["model"], Mapping):
        state = state["model"]

    dropped = set(official_buffer_keys(state))
    own = encoder.state_dict()
    kept: dict[str, Tensor] = {}
    mismatched = []
    for key, value in state.items():
        if key in dropped or key.startswith(("norm.", "head.")):
            continue
        target = own.get(key)
        if target is not None:
            shapes = f"checkpoint {tuple(value.shape)} vs model {tuple(target.shape)}"
        if target is not None and key.endswith("relative_position_bias_table"):
            side = math.isqrt(target.shape[0])
            length = value.shape[0] if value.ndim == 2 else -1
            square = length > 0 and math.isqrt(length) ** 2 == length
            if not square or value.shape[1] != target.shape[1]:
                mismatched.append(f"{key}: {shapes} (tables are resized, heads must match)")
                continue
            value = _resize_bias_table(value, side)
        if target is not None and target.shape != value.shape:
            mismatched.append(f"{key}: {shapes}")
            continue
        kept[key] = value
    if mismatched:
        raise ValueError(
            "Swin weights do not fit this SourceEncoder (shape mismatch):\n  "
            + "\n  ".join(mismatched)
        )
    result = encoder.load_state_dict(kept, strict=False)
    return list(result.missing_keys), list(result.unexpected_keys)
