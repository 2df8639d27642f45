"""Static transformer blocks (plain ``torch.nn``) that extracted transformer subnets are made of.

They compute exactly what the elastic layers of :mod:`nas.elastic` compute at the same size
(the same functions: :func:`nas.elastic.attend`, ``F.layer_norm``/``F.rms_norm``, GELU/SiLU),
with the weights of ``export_linears()`` and ``export()``; no ``nas.elastic`` module is kept.

Example:
    >>> block = TransformerBlock(nn.LayerNorm(64), SelfAttention(nn.Linear(64, 192),
    ...     nn.Linear(64, 64), head_dim=16), nn.LayerNorm(64),
    ...     MLP(nn.Linear(64, 256), nn.Linear(256, 64), activation="gelu"))
    >>> block(torch.randn(2, 10, 64)).shape
    torch.Size([2, 10, 64])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.attention import attend
from nas.elastic.mlp import gelu_module


class SelfAttention(nn.Module):
    """Multi-head / grouped-query self-attention over a fused, group-major ``qkv`` projection.

    Args:
        qkv: ``width -> groups*(heads_per_group+2)*head_dim`` (rows ``[q.., k, v]`` per group).
        proj: ``groups*heads_per_group*head_dim -> width``.
        head_dim: features per head.
        heads_per_group: query heads per key/value head.
        causal: mask future positions.
        rope_base: rotary embedding base, or ``None``.
    """

    def __init__(
        self,
        qkv: nn.Linear,
        proj: nn.Linear,
        *,
        head_dim: int,
        heads_per_group: int = 1,
        causal: bool = False,
        rope_base: float | None = None,
    ) -> None:
        super().__init__()
        self.qkv = qkv
        self.proj = proj
        self.head_dim = head_dim
        self.heads_per_group = heads_per_group
        self.causal = causal
        self.rope_base = rope_base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = attend(
            self.qkv(x), head_dim=self.head_dim, heads_per_group=self.heads_per_group,
            causal=self.causal, rope_base=self.rope_base,
        )
        return self.proj(y)

    def extra_repr(self) -> str:
        return (
            f"head_dim={self.head_dim}, heads_per_group={self.heads_per_group}, "
            f"causal={self.causal}, rope_base={self.rope_base}"
        )


class MLP(nn.Module):
    """``fc2(gelu(fc1(x)))``; ``activation`` is ``gelu`` or ``gelu_tanh``."""

    def __init__(self, fc1: nn.Linear, fc2: nn.Linear, *, activation: str) -> None:
        super().__init__()
        self.fc1 = fc1
        self.act = gelu_module(activation)
        self.fc2 = fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))`` (LLaMA's MLP)."""

    def __init__(self, gate: nn.Linear, up: nn.Linear, down: nn.Linear) -> None:
        super().__init__()
        self.gate = gate
        self.up = up
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class TransformerBlock(nn.Module):
    """Pre-norm residual block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(
        self, norm1: nn.Module, attn: SelfAttention, norm2: nn.Module, mlp: nn.Module
    ) -> None:
        super().__init__()
        self.norm1 = norm1
        self.attn = attn
        self.norm2 = norm2
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Images ``(B, C, H, W)`` to patch tokens ``(B, patches, width)`` with a strided conv."""

    def __init__(self, proj: nn.Conv2d) -> None:
        super().__init__()
        self.proj = proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)
