"""Decoder-only language-model supernets: GPT-2 and LLaMA style (families ``gpt``, ``llama``).

Token ids ``(B, T)`` → logits ``(B, T, vocab)``; the supernet's ``num_classes`` is the
vocabulary size. Skeleton: token embedding (elastic width), learned positions (GPT-2) or
rotary embeddings in every attention (LLaMA), the elastic block stack, a final norm and the
output head (tied to the token embedding for GPT-2, a separate bias-free linear for LLaMA).

Example:
    >>> supernet = nas.create_supernet("gpt_tiny", num_classes=256)
    >>> arch = supernet.sample_active(np.random.default_rng(0))
    >>> logits = supernet(torch.randint(0, 256, (2, 32)))       # (2, 32, 256)
    >>> model = supernet.extract(arch)                          # DecoderLM, plain torch
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic import ElasticEmbedding, ElasticLearnedPositions, ElasticLinear
from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace
from nas.supernet import Supernet
from search_spaces.transformer_blocks import TransformerBlock
from search_spaces.transformer_space import TransformerPlan
from search_spaces.transformer_stack import (
    activate_stack,
    blocks_of,
    elastic_norm,
    elastic_stack,
    export_stack,
    init_transformer_weights,
)


def _check_ids(ids: torch.Tensor, max_positions: int | None) -> None:
    if ids.dim() != 2 or ids.dtype not in (torch.int64, torch.int32):
        raise ConfigError(
            f"input must be token ids of shape (batch, seq_len) and an integer dtype, got "
            f"{tuple(ids.shape)} {ids.dtype}"
        )
    if max_positions is not None and ids.shape[1] > max_positions:
        raise ConfigError(f"seq_len {ids.shape[1]} exceeds max_positions={max_positions}")


class DecoderLM(nn.Module):
    """A static decoder language model (what :meth:`DecoderSupernet.extract` returns).

    Args:
        embed: token embedding.
        positions: learned position table, or ``None`` (rotary inside the attention).
        blocks: the transformer blocks.
        norm: the final norm.
        head: the output layer, or ``None`` for logits tied to ``embed``.
    """

    def __init__(
        self,
        embed: nn.Embedding,
        positions: nn.Embedding | None,
        blocks: list[TransformerBlock],
        norm: nn.Module,
        head: nn.Linear | None,
    ) -> None:
        super().__init__()
        self.embed = embed
        self.positions = positions
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm
        self.head = head

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, vocab)`` of token ids ``(B, T)``."""
        _check_ids(ids, None if self.positions is None else self.positions.num_embeddings)
        h = self.embed(ids)
        if self.positions is not None:
            h = h + self.positions.weight[: ids.shape[1]]
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return F.linear(h, self.embed.weight) if self.head is None else self.head(h)


class DecoderSupernet(Supernet):
    """Weight-sharing decoder LM over a ``gpt`` or ``llama`` space.

    Args:
        space: a transformer space of family ``gpt`` or ``llama``.
        num_classes: the vocabulary size.
        init_std: standard deviation of the initial weights (GPT-2: 0.02).
    """

    def __init__(self, space: SearchSpace, num_classes: int = 256, *, init_std: float = 0.02):
        super().__init__(space, num_classes)
        plan = TransformerPlan.of(space)
        if plan.family == "vit":
            raise ConfigError(f"space {space.name!r} is a ViT space; use ViTSupernet")
        self.plan = plan
        self.embed = ElasticEmbedding(num_classes, plan.max_width)
        self.positions = (
            ElasticLearnedPositions(plan.max_positions, plan.max_width)
            if plan.positions == "learned" else None
        )
        self.blocks = elastic_stack(plan)
        self.norm = elastic_norm(plan)
        self.head = (
            None if plan.tie_embeddings else ElasticLinear(plan.max_width, num_classes, bias=False)
        )
        init_transformer_weights(self, init_std)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, vocab)`` of the active subnet for token ids ``(B, T)``."""
        _check_ids(ids, self.plan.max_positions if self.positions is not None else None)
        h = self.embed(ids)
        if self.positions is not None:
            h = self.positions(h)
        h = self.norm(self.blocks(h))
        return self.embed.logits(h) if self.head is None else self.head(h)

    def example_input(self, arch: ArchConfig, batch: int = 2) -> torch.Tensor:
        """Seeded random token ids ``(batch, meta["seq_len"])`` (exports trace with them)."""
        generator = torch.Generator().manual_seed(0)
        return torch.randint(0, self.num_classes, (batch, self.plan.seq_len), generator=generator)

    def _activate(self, arch: ArchConfig) -> None:
        shape = self.plan.shape(arch)
        self.embed.active_width = shape.width
        if self.positions is not None:
            self.positions.active_width = shape.width
        activate_stack(self.blocks, shape)
        self.norm.active_features = shape.width
        if self.head is not None:
            self.head.active_in_features = shape.width

    def _build_static(self, arch: ArchConfig) -> nn.Module:
        return DecoderLM(
            self.embed.export(),
            None if self.positions is None else self.positions.export(),
            export_stack(self.blocks),
            self.norm.export(),
            None if self.head is None else self.head.export(),
        )

    @torch.no_grad()
    def reorganize_channels(self) -> None:
        """Sort every block's query groups and MLP units by importance (OFA's re-organisation).

        The largest subnet computes the same function afterwards; subnets with fewer heads or
        a smaller MLP ratio keep each block's most important ones.
        """
        for block in blocks_of(self.blocks, active_only=False):
            block.reorganize_channels()
