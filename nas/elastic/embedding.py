"""Elastic token embedding: the vocabulary is fixed, the width is a prefix of the largest.

``forward`` looks token ids up in the first ``active_width`` columns of the table;
:meth:`ElasticEmbedding.logits` is the tied output head of a language model (GPT-2), the
same columns used as a bias-free linear layer.

Example:
    >>> emb = ElasticEmbedding(50257, 768)
    >>> emb.active_width = 512
    >>> h = emb(torch.tensor([[1, 2, 3]]))            # (1, 3, 512)
    >>> emb.logits(h).shape                           # tied head
    torch.Size([1, 3, 50257])
    >>> static = emb.export()                         # nn.Embedding(50257, 512)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import build_uninitialized
from nas.elastic.width import ActiveWidth
from nas.errors import ConfigError


class ElasticEmbedding(ActiveWidth, nn.Embedding):
    """``nn.Embedding(num_embeddings, max_width)`` whose width shrinks to ``active_width``.

    Args:
        num_embeddings: vocabulary size (or number of positions).
        max_width: embedding width of the largest configuration.

    Attributes:
        active_width: width ``forward`` returns and :meth:`export` keeps.
    """

    def __init__(self, num_embeddings: int, max_width: int) -> None:
        super().__init__(num_embeddings, max_width)
        self.max_width = max_width
        self._active = max_width


    def active_weight(self, width: int | None = None) -> torch.Tensor:
        """The table's first ``width`` columns (default: the active width), a view."""
        d = self._active if width is None else width
        return self.weight if d == self.max_width else self.weight.narrow(1, 0, d)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.active_weight())

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """``h @ table[:, :d].T``: scores over the vocabulary for features ``h`` of width d."""
        d = h.shape[-1]
        if d > self.max_width:
            raise ConfigError(f"input has {d} features, more than max_width={self.max_width}")
        return F.linear(h, self.active_weight(d))

    def export(self) -> nn.Embedding:
        """A plain ``nn.Embedding(num_embeddings, active_width)`` with the table copied."""
        static = build_uninitialized(
            lambda: nn.Embedding(self.num_embeddings, self._active, dtype=self.weight.dtype),
            self.weight.device,
        )
        with torch.no_grad():
            static.weight.copy_(self.active_weight())
        return static

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.max_width}, active_width={self._active}"
