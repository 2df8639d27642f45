"""Elastic fully connected layer: the input features are a prefix of the largest weight.

Example:
    >>> fc = ElasticLinear(1280, 10)
    >>> fc(torch.randn(2, 1024)).shape          # input features follow the input
    torch.Size([2, 10])
    >>> fc.active_in_features = 1024
    >>> static = fc.export()                    # nn.Linear(1024, 10)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import build_uninitialized, check_width
from nas.errors import ConfigError


class ElasticLinear(nn.Linear):
    """``nn.Linear`` whose input features shrink to ``x.shape[-1]``.

    Args:
        max_in_features: input features of the largest configuration.
        out_features: output features (fixed).
        bias: whether the layer has a bias.

    Attributes:
        active_in_features: input features :meth:`export` uses (``forward`` follows the input).
    """

    def __init__(self, max_in_features: int, out_features: int, *, bias: bool = True) -> None:
        super().__init__(max_in_features, out_features, bias=bias)
        self.max_in_features = max_in_features
        self._active_in = max_in_features

    @property
    def active_in_features(self) -> int:
        """Input features of the active configuration (used by :meth:`export`)."""
        return self._active_in

    @active_in_features.setter
    def active_in_features(self, value: int) -> None:
        self._active_in = check_width("active_in_features", value, self.max_in_features)

    def _weight(self, in_features: int) -> torch.Tensor:
        if in_features == self.max_in_features:
            return self.weight
        return self.weight.narrow(1, 0, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        if n > self.max_in_features:
            raise ConfigError(
                f"input has {n} features, more than max_in_features={self.max_in_features}"
            )
        return F.linear(x, self._weight(n), self.bias)

    def export(self) -> nn.Linear:
        """A plain ``nn.Linear(active_in_features, out_features)`` with the weights copied."""
        static = build_uninitialized(
            lambda: nn.Linear(
                self._active_in, self.out_features, bias=self.bias is not None,
                dtype=self.weight.dtype,
            ),
            self.weight.device,
        )
        with torch.no_grad():
            static.weight.copy_(self._weight(self._active_in))
            if self.bias is not None and static.bias is not None:
                static.bias.copy_(self.bias)
        return static

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, active_in={self._active_in}"
