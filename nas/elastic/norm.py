"""Elastic LayerNorm and RMSNorm: normalise over the active width, a prefix of the largest.

Both follow the input: ``forward`` normalises ``x`` over its last dimension ``d`` with the
first ``d`` scale (and shift) entries. ``active_features`` is the width :meth:`export` uses.

Example:
    >>> norm = ElasticLayerNorm(768, eps=1e-5)
    >>> norm(torch.randn(2, 10, 512)).shape          # width follows the input
    torch.Size([2, 10, 512])
    >>> norm.active_features = 512
    >>> static = norm.export()                        # nn.LayerNorm(512)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import build_uninitialized, check_width
from nas.errors import ConfigError


def _prefix(t: torch.Tensor, n: int) -> torch.Tensor:
    return t if t.shape[0] == n else t.narrow(0, 0, n)


def _check_input(x: torch.Tensor, maximum: int) -> int:
    d = x.shape[-1]
    if d > maximum:
        raise ConfigError(f"input has {d} features, more than max_features={maximum}")
    return int(d)


class _ElasticNorm(nn.Module):
    """Shared state of the elastic norms: the largest width and the active one."""

    def __init__(self, max_features: int, eps: float) -> None:
        super().__init__()
        self.max_features = check_width("max_features", max_features, max_features)
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(max_features))
        self._active = max_features

    @property
    def active_features(self) -> int:
        """Width of the active configuration (used by :meth:`export`)."""
        return self._active

    @active_features.setter
    def active_features(self, value: int) -> None:
        self._active = check_width("active_features", value, self.max_features)

    def extra_repr(self) -> str:
        return f"{self.max_features}, eps={self.eps}, active={self._active}"


class ElasticLayerNorm(_ElasticNorm):
    """``nn.LayerNorm`` over the last dimension, sliced to the input's width.

    Args:
        max_features: width of the largest configuration.
        eps: added to the variance (GPT-2: 1e-5, ViT/DeiT: 1e-6).
    """

    def __init__(self, max_features: int, eps: float = 1e-5) -> None:
        super().__init__(max_features, eps)
        self.bias = nn.Parameter(torch.zeros(max_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = _check_input(x, self.max_features)
        return F.layer_norm(x, (d,), _prefix(self.weight, d), _prefix(self.bias, d), self.eps)

    def export(self) -> nn.LayerNorm:
        """A plain ``nn.LayerNorm(active_features)`` with the parameters copied."""
        d = self._active
        static = build_uninitialized(
            lambda: nn.LayerNorm(d, eps=self.eps, dtype=self.weight.dtype), self.weight.device
        )
        with torch.no_grad():
            static.weight.copy_(_prefix(self.weight, d))
            static.bias.copy_(_prefix(self.bias, d))
        return static


class ElasticRMSNorm(_ElasticNorm):
    """Root-mean-square norm (LLaMA) over the last dimension, sliced to the input's width.

    Computes ``weight * x / sqrt(mean(x²) + eps)`` (Hugging Face's ``LlamaRMSNorm``) with
    ``F.rms_norm``, as ``nn.RMSNorm`` does, and exports a plain ``nn.RMSNorm``.

    Args:
        max_features: width of the largest configuration.
        eps: added to the mean square (LLaMA: 1e-6 or 1e-5).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = _check_input(x, self.max_features)
        return F.rms_norm(x, (d,), _prefix(self.weight, d), self.eps)

    def export(self) -> nn.RMSNorm:
        """A plain ``nn.RMSNorm(active_features)`` with the scale copied."""
        d = self._active
        static = build_uninitialized(
            lambda: nn.RMSNorm(d, eps=self.eps, dtype=self.weight.dtype), self.weight.device
        )
        with torch.no_grad():
            assert static.weight is not None
            static.weight.copy_(_prefix(self.weight, d))
        return static

