"""Elastic dense layer: input and output features are prefixes of the largest weight.

The building block of elastic attention and MLPs: the active weight is
``weight[:out, :in]`` (a view, so no copy), the input features follow the input tensor and
the output features follow ``active_out_features`` (or the ``out_features`` argument of
``forward``). :class:`nas.elastic.ElasticLinear` is the special case with fixed outputs.

Example:
    >>> fc = ElasticDense(768, 3072)
    >>> fc.active_out_features = 2048
    >>> fc(torch.randn(2, 10, 512)).shape
    torch.Size([2, 10, 2048])
    >>> fc.active_in_features = 512
    >>> static = fc.export()                     # nn.Linear(512, 2048)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import build_uninitialized, check_width
from nas.elastic.slicing import prefix
from nas.errors import ConfigError


class ElasticDense(nn.Linear):
    """``nn.Linear`` whose active weight is ``weight[:out, :in]``.

    Args:
        max_in_features: input features of the largest configuration.
        max_out_features: output features of the largest configuration.
        bias: whether the layer has a bias (sliced with the outputs).

    Attributes:
        active_out_features: outputs ``forward`` computes unless told otherwise.
        active_in_features: inputs :meth:`export` keeps (``forward`` follows the input).
    """

    def __init__(self, max_in_features: int, max_out_features: int, *, bias: bool = True) -> None:
        super().__init__(max_in_features, max_out_features, bias=bias)
        self._active_in = max_in_features
        self._active_out = max_out_features

    @property
    def active_in_features(self) -> int:
        """Input features of the active configuration (used by :meth:`export`)."""
        return self._active_in

    @active_in_features.setter
    def active_in_features(self, value: int) -> None:
        self._active_in = check_width("active_in_features", value, self.in_features)

    @property
    def active_out_features(self) -> int:
        """Output features of the active configuration."""
        return self._active_out

    @active_out_features.setter
    def active_out_features(self, value: int) -> None:
        self._active_out = check_width("active_out_features", value, self.out_features)

    def active_weight(self, in_features: int, out_features: int) -> torch.Tensor:
        """``weight[:out_features, :in_features]`` (one view, :func:`nas.elastic.slicing.prefix`;
        the weight itself when whole)."""
        return prefix(self.weight, (out_features, in_features))

    def active_bias(self, out_features: int) -> torch.Tensor | None:
        """``bias[:out_features]`` (``None`` without a bias)."""
        if self.bias is None or out_features == self.out_features:
            return self.bias
        return self.bias.narrow(0, 0, out_features)

    def forward(self, x: torch.Tensor, out_features: int | None = None) -> torch.Tensor:
        n_in = x.shape[-1]
        n_out = self._active_out if out_features is None else out_features
        if n_in > self.in_features or n_out > self.out_features:
            raise ConfigError(
                f"{n_in} inputs -> {n_out} outputs exceed the layer's "
                f"{self.in_features} -> {self.out_features}"
            )
        return F.linear(x, self.active_weight(n_in, n_out), self.active_bias(n_out))

    @torch.no_grad()
    def permute_outputs(self, order: torch.Tensor) -> None:
        """Reorder the output features (new output ``i`` is old output ``order[i]``)."""
        self.weight.copy_(self.weight.index_select(0, order))
        if self.bias is not None:
            self.bias.copy_(self.bias.index_select(0, order))

    @torch.no_grad()
    def permute_inputs(self, order: torch.Tensor) -> None:
        """Reorder the input features (new input ``i`` is old input ``order[i]``)."""
        self.weight.copy_(self.weight.index_select(1, order))

    def export(self) -> nn.Linear:
        """A plain ``nn.Linear(active_in, active_out)`` with the active weights copied."""
        n_in, n_out = self._active_in, self._active_out
        static = build_uninitialized(
            lambda: nn.Linear(
                n_in, n_out, bias=self.bias is not None, dtype=self.weight.dtype
            ),
            self.weight.device,
        )
        with torch.no_grad():
            static.weight.copy_(self.active_weight(n_in, n_out))
            bias = self.active_bias(n_out)
            if bias is not None and static.bias is not None:
                static.bias.copy_(bias)
        return static

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, active_in={self._active_in}, active_out={self._active_out}"
