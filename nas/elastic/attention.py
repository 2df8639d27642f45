"""Elastic self-attention: multi-head or grouped-query, with an elastic number of heads.

Heads come in *query groups*: each group has ``heads_per_group`` query heads sharing one key
and one value head (grouped-query attention, LLaMA 2/3). ``heads_per_group == 1`` is ordinary
multi-head attention (GPT-2, ViT). The head size is fixed; the number of active groups is
elastic, so a subnet keeps the first ``groups`` groups and ``groups * heads_per_group`` query
heads.

The fused ``qkv`` projection stores each group's rows together — ``[q_0 .. q_{n-1}, k, v]``,
``head_dim`` rows each — so the active rows are a prefix (a view, one matmul). The output
projection reads the query heads in the same order. Hugging Face and timm weights are
rearranged into this layout on import.

Example:
    >>> attn = ElasticSelfAttention(768, head_dim=64, max_groups=12, causal=True)
    >>> attn.active_groups = 8                       # 8 heads
    >>> attn(torch.randn(2, 16, 512)).shape          # width follows the input
    torch.Size([2, 16, 512])
    >>> parts = attn.export_linears()                # {"qkv": nn.Linear, "proj": nn.Linear}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import check_width
from nas.elastic.dense import ElasticDense
from nas.elastic.positions import apply_rotary, rotary_cos_sin


def attend(
    qkv: torch.Tensor,
    *,
    head_dim: int,
    heads_per_group: int,
    causal: bool,
    rope_base: float | None = None,
) -> torch.Tensor:
    """Attention over fused, group-major ``qkv`` ``(B, T, groups*(heads_per_group+2)*head_dim)``.

    Returns the heads' outputs ``(B, T, groups*heads_per_group*head_dim)``, scaled dot
    product with ``1/sqrt(head_dim)``; ``rope_base`` applies rotary embeddings to queries and
    keys; ``causal`` masks future positions.
    """
    b, t, n = qkv.shape
    per = heads_per_group
    groups = n // ((per + 2) * head_dim)
    x = qkv.view(b, t, groups, per + 2, head_dim)
    if per == 1:
        q = x[:, :, :, 0].transpose(1, 2)
    else:
        q = x[:, :, :, :per].reshape(b, t, groups * per, head_dim).transpose(1, 2)
    k = x[:, :, :, per].transpose(1, 2)
    v = x[:, :, :, per + 1].transpose(1, 2)
    if rope_base is not None:
        cos, sin = rotary_cos_sin(t, head_dim, base=rope_base, device=qkv.device, dtype=qkv.dtype)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    if per > 1:  # every query head of a group reads the group's key and value
        k = k[:, :, None].expand(b, groups, per, t, head_dim).reshape(b, groups * per, t, head_dim)
        v = v[:, :, None].expand(b, groups, per, t, head_dim).reshape(b, groups * per, t, head_dim)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return y.transpose(1, 2).reshape(b, t, groups * per * head_dim)


class ElasticSelfAttention(nn.Module):
    """Self-attention whose number of query groups (and so of heads) is elastic.

    Args:
        max_width: model width of the largest configuration (input and output features).
        head_dim: features per head (fixed).
        max_groups: query groups of the largest configuration (= its key/value heads).
        heads_per_group: query heads per group (1: multi-head attention).
        causal: mask future positions (decoders).
        bias: biases on the projections (GPT-2, ViT: yes; LLaMA: no).
        rope_base: rotary embedding base (LLaMA: 10000.0); ``None`` for none.

    Attributes:
        qkv: fused projection ``max_width -> max_groups*(heads_per_group+2)*head_dim``.
        proj: output projection ``max_groups*heads_per_group*head_dim -> max_width``.
        active_groups: query groups ``forward`` uses.
        active_width: model width :meth:`export_linears` keeps (``forward`` follows the input).
    """

    def __init__(
        self,
        max_width: int,
        *,
        head_dim: int,
        max_groups: int,
        heads_per_group: int = 1,
        causal: bool = False,
        bias: bool = True,
        rope_base: float | None = None,
    ) -> None:
        super().__init__()
        check_width("head_dim", head_dim, head_dim)
        check_width("heads_per_group", heads_per_group, heads_per_group)
        self.max_width = max_width
        self.head_dim = head_dim
        self.max_groups = check_width("max_groups", max_groups, max_groups)
        self.heads_per_group = heads_per_group
        self.causal = causal
        self.rope_base = rope_base
        self.qkv = ElasticDense(max_width, self._group_rows * max_groups, bias=bias)
        self.proj = ElasticDense(self._group_cols * max_groups, max_width, bias=bias)
        self._groups = max_groups

    @property
    def _group_rows(self) -> int:
        return (self.heads_per_group + 2) * self.head_dim

    @property
    def _group_cols(self) -> int:
        return self.heads_per_group * self.head_dim

    @property
    def active_groups(self) -> int:
        """Query groups of the active configuration."""
        return self._groups

    @active_groups.setter
    def active_groups(self, value: int) -> None:
        self._groups = check_width("active_groups", value, self.max_groups)
        self.qkv.active_out_features = value * self._group_rows
        self.proj.active_in_features = value * self._group_cols

    @property
    def active_heads(self) -> int:
        """Query heads of the active configuration."""
        return self._groups * self.heads_per_group

    @property
    def active_width(self) -> int:
        """Model width of the active configuration (used by :meth:`export_linears`)."""
        return self.qkv.active_in_features

    @active_width.setter
    def active_width(self, value: int) -> None:
        self.qkv.active_in_features = value
        self.proj.active_out_features = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = attend(
            self.qkv(x), head_dim=self.head_dim, heads_per_group=self.heads_per_group,
            causal=self.causal, rope_base=self.rope_base,
        )
        return self.proj(y, out_features=x.shape[-1])

    def export_linears(self) -> dict[str, nn.Linear]:
        """``{"qkv": ..., "proj": ...}``: plain ``nn.Linear`` copies of the active weights."""
        return {"qkv": self.qkv.export(), "proj": self.proj.export()}

    @torch.no_grad()
    def reorganize_channels(self) -> torch.Tensor:
        """Sort the query groups by importance; the largest configuration's function is kept.

        A group's importance is the L1 norm of the output-projection weights reading its
        heads (Once-for-All's criterion). Its ``qkv`` rows and ``proj`` columns move together,
        so fewer active groups keep the most important ones. Optimizer state is not permuted.

        Returns:
            the group permutation (new group ``i`` was old group ``order[i]``).
        """
        cols = self._group_cols
        importance = self.proj.weight.abs().view(-1, self.max_groups, cols).sum(dim=(0, 2))
        order = torch.argsort(importance, descending=True, stable=True)
        self.qkv.permute_outputs(_expand(order, self._group_rows))
        self.proj.permute_inputs(_expand(order, cols))
        return order

    def extra_repr(self) -> str:
        return (
            f"head_dim={self.head_dim}, max_groups={self.max_groups}, "
            f"heads_per_group={self.heads_per_group}, causal={self.causal}, "
            f"rope_base={self.rope_base}, active_groups={self._groups}"
        )


def _expand(order: torch.Tensor, block: int) -> torch.Tensor:
    """Row indices moving whole blocks of ``block`` rows in the given block ``order``."""
    return (order[:, None] * block + torch.arange(block, device=order.device)).reshape(-1)
