"""Elastic transformer MLPs: the hidden width is a prefix of the largest.

* :class:`ElasticMLP` — ``fc2(act(fc1(x)))`` with GELU (exact, ViT) or its tanh
  approximation (GPT-2's ``gelu_new``).
* :class:`ElasticSwiGLU` — ``down(silu(gate(x)) * up(x))`` (LLaMA).

The hidden width of a subnet is :func:`mlp_hidden` of the model width and the MLP ratio.
Both sort their hidden units by importance (:meth:`reorganize_channels`).

Example:
    >>> mlp = ElasticMLP(768, 3072, activation="gelu_tanh")
    >>> mlp.active_hidden = mlp_hidden(512, 3.0)      # 1536
    >>> mlp(torch.randn(2, 16, 512)).shape
    torch.Size([2, 16, 512])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import check_width
from nas.elastic.dense import ElasticDense
from nas.errors import ConfigError

MLP_ACTIVATIONS = ("gelu", "gelu_tanh")


def gelu_module(activation: str) -> nn.GELU:
    """``nn.GELU`` for ``gelu`` (exact) or ``gelu_tanh`` (tanh approximation)."""
    if activation not in MLP_ACTIVATIONS:
        raise ConfigError(f"activation must be one of {list(MLP_ACTIVATIONS)}, got {activation!r}")
    return nn.GELU(approximate="tanh" if activation == "gelu_tanh" else "none")


class _ElasticHidden(nn.Module):
    """Shared bookkeeping: the layers reading and writing the hidden units."""

    max_hidden: int
    _hidden: int

    def _producers(self) -> list[ElasticDense]:
        raise NotImplementedError

    def _consumer(self) -> ElasticDense:
        raise NotImplementedError

    @property
    def active_hidden(self) -> int:
        """Hidden units of the active configuration."""
        return self._hidden

    @active_hidden.setter
    def active_hidden(self, value: int) -> None:
        self._hidden = check_width("active_hidden", value, self.max_hidden)
        for layer in self._producers():
            layer.active_out_features = value
        self._consumer().active_in_features = value

    @property
    def active_width(self) -> int:
        """Model width of the active configuration (used by ``export_linears``)."""
        return self._consumer().active_out_features

    @active_width.setter
    def active_width(self, value: int) -> None:
        for layer in self._producers():
            layer.active_in_features = value
        self._consumer().active_out_features = value

    @torch.no_grad()
    def reorganize_channels(self) -> torch.Tensor:
        """Sort the hidden units by importance; the largest configuration's function is kept.

        Importance is the L1 norm of the output layer's weights reading each unit
        (Once-for-All's criterion); the producing layers' rows move with it. Optimizer state is
        not permuted.

        Returns:
            the permutation (new unit ``i`` was old unit ``order[i]``).
        """
        consumer = self._consumer()
        order = torch.argsort(consumer.weight.abs().sum(dim=0), descending=True, stable=True)
        consumer.permute_inputs(order)
        for layer in self._producers():
            layer.permute_outputs(order)
        return order

    def extra_repr(self) -> str:
        return f"max_hidden={self.max_hidden}, active_hidden={self._hidden}"


class ElasticMLP(_ElasticHidden):
    """Two-layer GELU MLP with an elastic hidden width.

    Args:
        max_width: model width of the largest configuration.
        max_hidden: hidden units of the largest configuration.
        activation: ``gelu`` (exact erf) or ``gelu_tanh`` (GPT-2).
        bias: biases on both layers.
    """

    def __init__(
        self, max_width: int, max_hidden: int, *, activation: str = "gelu", bias: bool = True
    ) -> None:
        super().__init__()
        self.activation = activation
        self.act = gelu_module(activation)
        self.max_hidden = max_hidden
        self.fc1 = ElasticDense(max_width, max_hidden, bias=bias)
        self.fc2 = ElasticDense(max_hidden, max_width, bias=bias)
        self._hidden = max_hidden

    def _producers(self) -> list[ElasticDense]:
        return [self.fc1]

    def _consumer(self) -> ElasticDense:
        return self.fc2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)), out_features=x.shape[-1])

    def export_linears(self) -> dict[str, nn.Linear]:
        """``{"fc1": ..., "fc2": ...}``: plain copies of the active weights."""
        return {"fc1": self.fc1.export(), "fc2": self.fc2.export()}


class ElasticSwiGLU(_ElasticHidden):
    """LLaMA's gated MLP ``down(silu(gate(x)) * up(x))`` with an elastic hidden width.

    Args:
        max_width: model width of the largest configuration.
        max_hidden: hidden units (``intermediate_size``) of the largest configuration.
        bias: biases on the three layers (LLaMA: none).
    """

    def __init__(self, max_width: int, max_hidden: int, *, bias: bool = False) -> None:
        super().__init__()
        self.max_hidden = max_hidden
        self.gate = ElasticDense(max_width, max_hidden, bias=bias)
        self.up = ElasticDense(max_width, max_hidden, bias=bias)
        self.down = ElasticDense(max_hidden, max_width, bias=bias)
        self._hidden = max_hidden

    def _producers(self) -> list[ElasticDense]:
        return [self.gate, self.up]

    def _consumer(self) -> ElasticDense:
        return self.down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x), out_features=x.shape[-1])

    def export_linears(self) -> dict[str, nn.Linear]:
        """``{"gate": ..., "up": ..., "down": ...}``: plain copies of the active weights."""
        return {"gate": self.gate.export(), "up": self.up.export(), "down": self.down.export()}
