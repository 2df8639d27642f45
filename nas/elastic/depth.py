"""Elastic depth: a stack of layers of which the first ``active_depth`` run.

As in Once-for-All and whittle, a subnet of depth ``k`` keeps the first ``k`` layers, so the
shallower networks share the bottom of the deeper ones.

Example:
    >>> layers = ElasticDepth([nn.Linear(8, 8) for _ in range(4)])
    >>> layers.active_depth = 2
    >>> len(layers.active_layers())
    2
    >>> y = layers(torch.randn(3, 8))                # the first two layers
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from nas.elastic.conv import check_width
from nas.errors import ConfigError


class ElasticDepth(nn.ModuleList):
    """``nn.ModuleList`` whose ``forward`` chains its first ``active_depth`` layers.

    Args:
        layers: the layers of the deepest configuration, input to output.

    Attributes:
        active_depth: layers ``forward`` runs (default: all).
    """

    def __init__(self, layers: Iterable[nn.Module]) -> None:
        super().__init__(layers)
        if len(self) == 0:
            raise ConfigError("ElasticDepth needs at least one layer")
        self._depth = len(self)

    @property
    def max_depth(self) -> int:
        """Layers of the deepest configuration."""
        return len(self)

    @property
    def active_depth(self) -> int:
        """Layers of the active configuration."""
        return self._depth

    @active_depth.setter
    def active_depth(self, value: int) -> None:
        self._depth = check_width("active_depth", value, len(self))

    def active_layers(self) -> list[nn.Module]:
        """The first ``active_depth`` layers."""
        return list(self)[: self._depth]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.active_layers():
            x = layer(x)
        return x

    def extra_repr(self) -> str:
        return f"active_depth={self._depth}"
