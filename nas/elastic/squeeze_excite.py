"""Elastic squeeze-and-excite: the hidden width follows the active channel count.

With ``C`` active channels the hidden width is ``make_divisible(C // 4, 8)`` (as OFA's
``DynamicSE``); the reduce and expand 1x1 convolutions are sliced to match.

Example:
    >>> se = ElasticSqueezeExcite(144)
    >>> se(torch.randn(2, 96, 7, 7)).shape       # hidden width 24
    torch.Size([2, 96, 7, 7])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.blocks import SqueezeExcite, se_channels
from nas.elastic.conv import build_uninitialized
from nas.errors import ConfigError


class ElasticSqueezeExcite(nn.Module):
    """Squeeze-and-excite over up to ``max_channels`` channels.

    Args:
        max_channels: channels of the largest configuration.

    Attributes:
        active_channels: channels :meth:`export` uses (``forward`` follows the input).
    """

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        self.max_channels = max_channels
        max_mid = se_channels(max_channels)
        self.reduce = nn.Conv2d(max_channels, max_mid, 1, bias=True)
        self.expand = nn.Conv2d(max_mid, max_channels, 1, bias=True)
        self.active_channels = max_channels

    def _weights(
        self, c: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mid = se_channels(c)
        rw, rb = self.reduce.weight, self.reduce.bias
        ew, eb = self.expand.weight, self.expand.bias
        assert rb is not None and eb is not None  # built with bias=True
        if c == self.max_channels:
            return rw, rb, ew, eb
        return (
            rw[:mid, :c],
            rb[:mid],
            ew[:c, :mid],
            eb[:c],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c > self.max_channels:
            raise ConfigError(f"input has {c} channels, more than max_channels={self.max_channels}")
        rw, rb, ew, eb = self._weights(c)
        y = x.mean((2, 3), keepdim=True)
        y = F.relu(F.conv2d(y, rw, rb), inplace=True)
        y = F.hardsigmoid(F.conv2d(y, ew, eb))
        return x * y

    def export(self) -> SqueezeExcite:
        """A static :class:`nas.blocks.SqueezeExcite` with the active weights copied."""
        c = self.active_channels
        static = build_uninitialized(
            lambda: SqueezeExcite(c, se_channels(c)), self.reduce.weight.device
        )
        self.copy_active_to(static)
        return static

    @torch.no_grad()
    def copy_active_to(self, static: SqueezeExcite) -> None:
        """Copy the active weights into ``static`` (a SqueezeExcite of the active width)."""
        rw, rb, ew, eb = self._weights(static.reduce.in_channels)
        static.reduce.weight.copy_(rw)
        static.expand.weight.copy_(ew)
        if static.reduce.bias is not None and static.expand.bias is not None:
            static.reduce.bias.copy_(rb)
            static.expand.bias.copy_(eb)

    @torch.no_grad()
    def permute_channels(self, order: torch.Tensor) -> None:
        """Reorder the (outer) channels by ``order`` and sort the hidden ones by importance.

        The hidden channels are sorted by the L1 norm of the expand weights leaving them, so
        narrower configurations keep the most important ones (OFA's re-organisation).
        """
        self.expand.weight.copy_(self.expand.weight.index_select(0, order))
        if self.expand.bias is not None:
            self.expand.bias.copy_(self.expand.bias.index_select(0, order))
        self.reduce.weight.copy_(self.reduce.weight.index_select(1, order))
        importance = self.expand.weight.abs().sum(dim=(0, 2, 3))
        hidden = torch.argsort(importance, descending=True, stable=True)
        self.expand.weight.copy_(self.expand.weight.index_select(1, hidden))
        self.reduce.weight.copy_(self.reduce.weight.index_select(0, hidden))
        if self.reduce.bias is not None:
            self.reduce.bias.copy_(self.reduce.bias.index_select(0, hidden))
