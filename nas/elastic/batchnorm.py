"""Elastic batch normalisation: statistics and affine parameters of the active channels.

:class:`ElasticBatchNorm2d` normalises the first ``C`` channels, where ``C`` is the channel
count of its input. In training mode it uses the batch statistics of those channels and updates
the running statistics of those channels only (the others keep their values); in eval mode it
uses the stored running statistics of those channels. It subclasses ``nn.BatchNorm2d`` (same
state-dict keys, ``isinstance`` holds for BN-recalibration code) and ``export()`` returns a
plain ``nn.BatchNorm2d`` with the active parameters and statistics copied.

Example:
    >>> bn = ElasticBatchNorm2d(32)
    >>> y = bn(torch.randn(4, 24, 8, 8))      # channels 0..23 used and updated
    >>> bn.active_channels = 24
    >>> static = bn.export()                  # nn.BatchNorm2d(24)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import build_uninitialized, check_width
from nas.errors import ConfigError


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over the first ``x.shape[1]`` of ``max_features`` channels.

    Args:
        max_features: channels of the largest configuration.
        eps: added to the variance.
        momentum: running-statistics momentum (``None``: cumulative average, for BN
            recalibration).

    Attributes:
        active_channels: channels :meth:`export` uses (``forward`` follows the input).
    """

    def __init__(
        self, max_features: int, eps: float = 1e-5, momentum: float | None = 0.1
    ) -> None:
        super().__init__(max_features, eps=eps, momentum=momentum)
        self.max_features = max_features
        self._active_channels = max_features

    @property
    def active_channels(self) -> int:
        """Channels of the active configuration (used by :meth:`export`)."""
        return self._active_channels

    @active_channels.setter
    def active_channels(self, value: int) -> None:
        self._active_channels = check_width("active_channels", value, self.max_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c > self.max_features:
            raise ConfigError(f"input has {c} channels, more than max_features={self.max_features}")
        factor = 0.0
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked)
                if self.momentum is None
                else self.momentum
            )
        use_batch_stats = self.training or self.running_mean is None
        running_mean: torch.Tensor | None = self.running_mean
        running_var: torch.Tensor | None = self.running_var
        weight: torch.Tensor | None = self.weight
        bias: torch.Tensor | None = self.bias
        if c != self.max_features:
            # prefix views: F.batch_norm updates them in place, i.e. only these channels
            running_mean = None if running_mean is None else running_mean.narrow(0, 0, c)
            running_var = None if running_var is None else running_var.narrow(0, 0, c)
            weight = None if weight is None else weight.narrow(0, 0, c)
            bias = None if bias is None else bias.narrow(0, 0, c)
        return F.batch_norm(
            x,
            running_mean,
            running_var,
            weight,
            bias,
            use_batch_stats,
            factor,
            self.eps,
        )

    def export(self) -> nn.BatchNorm2d:
        """A plain ``nn.BatchNorm2d(active_channels)`` with parameters and statistics copied."""
        static = build_uninitialized(
            lambda: nn.BatchNorm2d(
                self._active_channels,
                eps=self.eps,
                momentum=self.momentum,
                affine=self.affine,
                track_running_stats=self.track_running_stats,
            ),
            self.max_device(),
        )
        self.copy_active_to(static)
        return static

    @torch.no_grad()
    def copy_active_to(self, static: nn.BatchNorm2d) -> None:
        """Copy the active parameters and statistics into ``static`` (of the active width)."""
        c = static.num_features
        pairs = (
            (self.weight, static.weight),
            (self.bias, static.bias),
            (self.running_mean, static.running_mean),
            (self.running_var, static.running_var),
        )
        for src, dst in pairs:
            if src is not None and dst is not None:
                dst.copy_(src[:c])
        if self.num_batches_tracked is not None and static.num_batches_tracked is not None:
            static.num_batches_tracked.copy_(self.num_batches_tracked)

    def max_device(self) -> torch.device:
        """The device of the layer's tensors."""
        tensor = self.weight if self.weight is not None else self.running_mean
        return tensor.device if tensor is not None else torch.device("cpu")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, active_channels={self._active_channels}"
