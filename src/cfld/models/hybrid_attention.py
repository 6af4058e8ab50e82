"""Hybrid-granularity attention φ_A / H_A (paper §3.3, Eq. 4, Fig. 2c; fidelity §2.3).

The appearance encoder turns multi-scale source features f1, f2, f3 into one *query bias* per
up-block cross-attention of the UNet.  Inside the UNet the bias is added to W_q·h before the
head split (Eq. 4)::

    Attention(Q, K, V) = softmax((W_q h + B_l)(W_k c)^T / √d) W_v c

The official code has nine independent branches (one per up-block cross-attention, three per
scale), each ``zero conv → K transformer blocks (two self-attentions + GEGLU) → zero conv``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from torch import Tensor, nn

#: Default UNet block numbers k = 3·i + j of up block i, attention j, in the official order.
DEFAULT_BLOCK_IDX: tuple[int, ...] = (11, 10, 9, 8, 7, 6, 5, 4, 3)


def bias_key(block: int) -> str:
    """Official name of the query bias of UNet up-block cross-attention number ``block``."""
    return f"block_{block}_cross_attn_q"


class DoubleSelfAttentionBlock(nn.Module):
    """Pre-LN transformer block with two self-attentions and a GEGLU FF (official HGA block).

    Parameter names equal diffusers' ``BasicTransformerBlock(double_self_attention=True)``.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"appearance block dim {dim} is not divisible by {num_heads} heads")
        head_dim = dim // num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(query_dim=dim, heads=num_heads, dim_head=head_dim, out_bias=True)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(query_dim=dim, heads=num_heads, dim_head=head_dim, out_bias=True)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, activation_fn="geglu")

    def forward(self, hidden: Tensor) -> Tensor:
        """(B, L, dim) → (B, L, dim)."""
        hidden = hidden + self.attn1(self.norm1(hidden))
        hidden = hidden + self.attn2(self.norm2(hidden))
        return hidden + self.ff(self.norm3(hidden))


class HybridGranularityAttention(nn.Module):
    """φ_A: nine branches mapping source-encoder stages to UNet query biases.

    Args:
        inner_dims: Input width of each branch (= the width of the Swin stage it reads).
        embed_dims: Transformer width of each branch.
        num_heads: Heads of each branch.
        ctx_dims: Output width of each branch = channels of its UNet attention layer.
        depth: K, transformer blocks per branch (paper: 4).
        block_idx: UNet block number of each branch (official order 11 … 3).
        conv_kernel_size, conv_stride, conv_padding: Geometry of each branch's input zero conv
            (1/1/0 in the default model; ablation B1 uses strided convs).
    """

    def __init__(
        self,
        inner_dims: Sequence[int] = (128, 128, 128, 256, 256, 256, 512, 512, 512),
        embed_dims: Sequence[int] = (64, 64, 64, 128, 128, 128, 256, 256, 256),
        num_heads: Sequence[int] = (2, 2, 2, 4, 4, 4, 8, 8, 8),
        ctx_dims: Sequence[int] = (320, 320, 320, 640, 640, 640, 1280, 1280, 1280),
        depth: int = 4,
        block_idx: Sequence[int] = DEFAULT_BLOCK_IDX,
        conv_kernel_size: Sequence[int] = (1,) * 9,
        conv_stride: Sequence[int] = (1,) * 9,
        conv_padding: Sequence[int] = (0,) * 9,
    ) -> None:
        super().__init__()
        n = len(block_idx)
        lists = dict(
            inner_dims=inner_dims, embed_dims=embed_dims, num_heads=num_heads, ctx_dims=ctx_dims,
            conv_kernel_size=conv_kernel_size, conv_stride=conv_stride, conv_padding=conv_padding,
        )
        for name, values in lists.items():
            if len(values) != n:
                raise ValueError(f"appearance encoder: {name} has {len(values)} entries, "
                                 f"block_idx has {n}; give one value per branch")
        self.block_idx = [int(k) for k in block_idx]
        self.keys = [bias_key(k) for k in self.block_idx]
        # Which source stage feeds each branch: the official code advances to the next stage
        # whenever the input width changes between consecutive branches (fidelity §2.3).
        stages, stage = [], 0
        for i in range(n):
            if i > 0 and inner_dims[i] != inner_dims[i - 1]:
                stage += 1
            stages.append(stage)
        self.source_stage = stages
        self.zero_conv_ins = nn.ModuleList(
            nn.Conv2d(inner_dims[i], embed_dims[i], conv_kernel_size[i], conv_stride[i],
                      conv_padding[i])
            for i in range(n)
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(*(DoubleSelfAttentionBlock(embed_dims[i], num_heads[i])
                            for _ in range(depth)))
            for i in range(n)
        )
        self.zero_conv_outs = nn.ModuleList(
            nn.Conv2d(embed_dims[i], ctx_dims[i], 1) for i in range(n)
        )
        # Zero convs: the biases start at exactly 0, so training starts from the plain
        # prompt-conditioned UNet (paper §3.3).
        for conv in (*self.zero_conv_ins, *self.zero_conv_outs):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, features: Sequence[Tensor]) -> dict[str, Tensor]:
        """Map stage tokens [(B, L_s, C_s), ...] to {key: (B, L', ctx_dim)} query biases."""
        biases: dict[str, Tensor] = {}
        for i, key in enumerate(self.keys):
            tokens = features[self.source_stage[i]]
            batch, length, channels = tokens.shape
            side = math.isqrt(length)
            if side * side != length:
                raise ValueError(f"appearance encoder needs a square feature map, got {length} "
                                 "tokens; use a square source image (fidelity §10)")
            x = tokens.transpose(1, 2).reshape(batch, channels, side, side)  # (B, C, H, W)
            x = self.zero_conv_ins[i](x)
            h, w = x.shape[-2:]
            x = x.flatten(2).transpose(1, 2)  # (B, H·W, E)
            x = self.blocks[i](x)
            x = x.transpose(1, 2).reshape(batch, -1, h, w)  # (B, E, H, W)
            x = self.zero_conv_outs[i](x)
            biases[key] = x.flatten(2).transpose(1, 2)  # (B, H·W, ctx)
        return biases


class QueryBiasAttnProcessor:
    """SDPA attention processor adding a per-layer bias to the projected queries (Eq. 4).

    Installed on the nine up-block cross-attentions (``attn2``) only.  The bias is stored on the
    processor by :meth:`cfld.models.cfld.CFLDModel.predict_noise` before every UNet call (rather
    than passed through ``cross_attention_kwargs``, which every stock processor of the UNet would
    receive and warn about).  It stays set until the next call so that gradient-checkpointing
    recomputation in the backward pass sees the same bias.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.bias: Tensor | None = None

    def __call__(
        self,
        attn: Attention,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor | None = None,
        attention_mask: Tensor | None = None,
        temb: Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        batch, length, _ = hidden_states.shape
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        query = attn.to_q(hidden_states)  # (B, HW, C): W_q·h
        if self.bias is not None:
            if self.bias.shape[1] != length:
                raise ValueError(
                    f"appearance bias {self.key} has {self.bias.shape[1]} tokens but the UNet "
                    f"layer has {length}: the latent size must match the one the model was built "
                    "for (64×64 latents for a 256² source, fidelity §1)"
                )
            query = query + self.bias.to(query.dtype)  # Eq. (4): W_q·h + B_l
        key = attn.to_k(context)
        value = attn.to_v(context)
        heads = attn.heads
        head_dim = key.shape[-1] // heads
        # (B, L, heads·d) → (B, heads, L, d)
        query = query.view(batch, -1, heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=None)
        out = out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def unet_bias_layers(unet: nn.Module, block_idx: Sequence[int]) -> dict[int, Attention]:
    """Return {block number k: attn2 module} for up block k // n, attention k % n.

    ``n`` is the number of attentions per up block (3 for SD-1.5: layers_per_block + 1), so
    k = 3·i + j as in the official residual UNet (fidelity §2.5).
    """
    per_block = None
    for block in unet.up_blocks:
        if hasattr(block, "attentions"):
            per_block = len(block.attentions)
            break
    if per_block is None:
        raise ValueError("this UNet has no cross-attention up blocks to receive query biases")
    layers = {}
    for k in block_idx:
        i, j = divmod(int(k), per_block)
        block = unet.up_blocks[i] if i < len(unet.up_blocks) else None
        if block is None or not hasattr(block, "attentions") or j >= len(block.attentions):
            raise ValueError(f"query-bias block number {k} has no up-block cross-attention "
                             f"(up_blocks.{i}.attentions.{j}) in this UNet")
        layers[int(k)] = block.attentions[j].transformer_blocks[0].attn2
    return layers


def install_query_bias_processors(
    unet: nn.Module, block_idx: Sequence[int]
) -> dict[str, QueryBiasAttnProcessor]:
    """Put a :class:`QueryBiasAttnProcessor` on each selected up-block attn2; return them by key."""
    processors = {}
    for k, attn in unet_bias_layers(unet, block_idx).items():
        proc = QueryBiasAttnProcessor(bias_key(k))
        attn.set_processor(proc)
        processors[proc.key] = proc
    return processors


__all__ = [
    "DEFAULT_BLOCK_IDX",
    "HybridGranularityAttention",
    "QueryBiasAttnProcessor",
    "bias_key",
    "install_query_bias_processors",
    "unet_bias_layers",
]
