"""Perception-refined decoder H_D (paper §3.2, Fig. 2b; fidelity §2.2).

Refines Q learnable queries against the deepest source-encoder features into the coarse-grained
prompt c ∈ R^{Q×C} that replaces the text prompt of Stable Diffusion.

Two details of the authors' code are reproduced literally because released checkpoints depend on
them (fidelity §2.2, §11):

* each block runs cross-attention FIRST (norm2/attn2), then self-attention (norm1/attn1), then a
  GEGLU feed-forward (norm3/ff) — parameter names follow diffusers' ``BasicTransformerBlock`` so
  the official keys load unchanged;
* the query position embedding is added to the residual stream itself, before each of the two
  attentions, so it accumulates (2·R copies after R blocks).
"""

from __future__ import annotations

import torch
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from torch import Tensor, nn


class CrossFirstTransformerBlock(nn.Module):
    """Pre-LN block: cross-attention → self-attention → GEGLU FF, each with a residual.

    Args:
        dim: Width of the query stream.
        num_heads: Attention heads (head dim = dim // num_heads).
        context_dim: Width of the key/value tokens of the cross-attention.
    """

    def __init__(self, dim: int, num_heads: int, context_dim: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"decoder dim {dim} is not divisible by its {num_heads} heads")
        head_dim = dim // num_heads
        # Names mirror diffusers.BasicTransformerBlock (norm1/attn1 self, norm2/attn2 cross).
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(query_dim=dim, heads=num_heads, dim_head=head_dim, out_bias=True)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(
            query_dim=dim,
            cross_attention_dim=context_dim,
            heads=num_heads,
            dim_head=head_dim,
            out_bias=True,
        )
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, activation_fn="geglu")

    def forward(self, hidden: Tensor, context: Tensor, query_pos: Tensor) -> Tensor:
        """One refinement step; ``query_pos`` is added to the stream before each attention."""
        hidden = hidden + query_pos
        hidden = hidden + self.attn2(self.norm2(hidden), encoder_hidden_states=context)
        hidden = hidden + query_pos
        hidden = hidden + self.attn1(self.norm1(hidden))
        return hidden + self.ff(self.norm3(hidden))


class PerceptionRefinedDecoder(nn.Module):
    """H_D: learnable queries refined against the last source-encoder stage.

    Args:
        num_queries: Q, the prompt length (paper: 16).
        dim: C, the prompt width = the UNet's cross-attention width (768 for SD-1.5).
        depth: R, the number of blocks (paper: 8).
        num_heads: Attention heads (official: 24, head dim 32).
        context_dim: Width of the source tokens (Swin stage 4: 1024).
        num_context_tokens: Number of source tokens (8×8 = 64 for a 256² source).
    """

    def __init__(
        self,
        num_queries: int = 16,
        dim: int = 768,
        depth: int = 8,
        num_heads: int = 24,
        context_dim: int = 1024,
        num_context_tokens: int = 64,
    ) -> None:
        super().__init__()
        self.num_queries = num_queries
        self.dim = dim
        self.context_dim = context_dim
        self.num_context_tokens = num_context_tokens
        self.query_feat = nn.Parameter(torch.empty(num_queries, dim))
        self.pos_embed = nn.Parameter(torch.empty(num_queries, dim))
        # Learnable position of the 8×8 key/value tokens (exists because the Swin's final
        # LayerNorm is removed in the official code, fidelity §2.2).
        self.kv_pos_embed = nn.Parameter(torch.empty(1, num_context_tokens, context_dim))
        self.blocks = nn.ModuleList(
            CrossFirstTransformerBlock(dim, num_heads, context_dim) for _ in range(depth)
        )
        for p in (self.query_feat, self.pos_embed, self.kv_pos_embed):
            nn.init.normal_(p, std=0.02)

    def forward(self, source_tokens: Tensor) -> Tensor:
        """Map the last-stage tokens (B, L, context_dim) to the coarse prompt (B, Q, dim)."""
        if source_tokens.ndim != 3 or source_tokens.shape[1:] != self.kv_pos_embed.shape[1:]:
            raise ValueError(
                "decoder expects source tokens of shape (B, "
                f"{self.num_context_tokens}, {self.context_dim}), got {tuple(source_tokens.shape)}"
            )
        batch = source_tokens.shape[0]
        context = source_tokens + self.kv_pos_embed
        hidden = self.query_feat.unsqueeze(0).expand(batch, -1, -1)  # (B, Q, C)
        query_pos = self.pos_embed.unsqueeze(0)  # (1, Q, C), broadcast over the batch
        for block in self.blocks:
            hidden = block(hidden, context, query_pos)
        return hidden
