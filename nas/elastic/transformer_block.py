"""Elastic pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

The block follows the width of its input (the residual stream); its query groups and MLP
hidden units are set with :meth:`ElasticTransformerBlock.set_active`, which also records the
width for export.

Example:
    >>> block = ElasticTransformerBlock(
    ...     ElasticLayerNorm(768), ElasticSelfAttention(768, head_dim=64, max_groups=12),
    ...     ElasticLayerNorm(768), ElasticMLP(768, 3072))
    >>> block.set_active(width=512, groups=8, hidden=1536)
    >>> block(torch.randn(2, 16, 512)).shape
    torch.Size([2, 16, 512])
"""

from __future__ import annotations

import torch
from torch import nn

from nas.elastic.attention import ElasticSelfAttention
from nas.elastic.mlp import ElasticMLP, ElasticSwiGLU
from nas.elastic.norm import ElasticLayerNorm, ElasticRMSNorm

ElasticNorm = ElasticLayerNorm | ElasticRMSNorm
ElasticFeedForward = ElasticMLP | ElasticSwiGLU


class ElasticTransformerBlock(nn.Module):
    """A pre-norm residual block of elastic attention and an elastic MLP.

    Args:
        norm1: the norm before attention.
        attn: the self-attention.
        norm2: the norm before the MLP.
        mlp: the MLP (GELU or SwiGLU).
    """

    def __init__(
        self,
        norm1: ElasticNorm,
        attn: ElasticSelfAttention,
        norm2: ElasticNorm,
        mlp: ElasticFeedForward,
    ) -> None:
        super().__init__()
        self.norm1 = norm1
        self.attn = attn
        self.norm2 = norm2
        self.mlp = mlp

    def set_active(self, *, width: int, groups: int, hidden: int) -> None:
        """Activate ``groups`` query groups and ``hidden`` MLP units at model width ``width``."""
        for module in (self.norm1, self.norm2):
            module.active_features = width
        self.attn.active_width = width
        self.mlp.active_width = width
        self.attn.active_groups = groups
        self.mlp.active_hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    @torch.no_grad()
    def reorganize_channels(self) -> None:
        """Sort the attention's query groups and the MLP's hidden units by importance."""
        self.attn.reorganize_channels()
        self.mlp.reorganize_channels()
