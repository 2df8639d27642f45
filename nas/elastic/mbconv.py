"""Elastic MobileNetV3 inverted-residual block: elastic kernel size and expand ratio.

Structure (as OFA's ``DynamicMBConvLayer`` inside a ``ResidualBlock``): 1x1 expand conv + BN +
act, depthwise kxk conv + BN + act, optional squeeze-and-excite, 1x1 project conv + BN, and an
identity residual when ``stride == 1`` and ``in_channels == out_channels``. The expanded width is
``make_divisible(round(in_channels * expand_ratio), 8)``.

Example:
    >>> block = ElasticMBConv(24, 40, kernel_sizes=(3, 5, 7), expand_ratios=(3, 4, 6),
    ...                       stride=2, act="relu", se=True)
    >>> block.set_active(kernel_size=5, expand_ratio=4)
    >>> static = block.export()          # nas.blocks.MBConv(24, 40, mid 96, k5)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.blocks import MBConv, activation, make_divisible
from nas.elastic.batchnorm import ElasticBatchNorm2d
from nas.elastic.conv import ElasticConv2d, ElasticDepthwiseConv2d, build_uninitialized
from nas.elastic.squeeze_excite import ElasticSqueezeExcite
from nas.errors import ConfigError


def mid_channels(in_channels: int, expand_ratio: float, divisor: int = 8) -> int:
    """Expanded width of an inverted-residual block (OFA's ``active_middle_channel``)."""
    return make_divisible(round(in_channels * expand_ratio), divisor)


class ElasticMBConv(nn.Module):
    """An inverted-residual block whose kernel size and expand ratio are chosen at run time.

    Args:
        in_channels: input channels (fixed).
        out_channels: output channels (fixed).
        kernel_sizes: allowed depthwise kernel sizes, e.g. ``(3, 5, 7)``.
        expand_ratios: allowed expand ratios, e.g. ``(3, 4, 6)``; all must be > 1.
        stride: depthwise stride.
        act: activation name (``relu`` or ``h_swish``).
        se: add squeeze-and-excite.
        transform_kernels: learn OFA's kernel transformation matrices.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_sizes: Sequence[int],
        expand_ratios: Sequence[float],
        stride: int = 1,
        act: str = "relu",
        se: bool = False,
        transform_kernels: bool = True,
    ) -> None:
        super().__init__()
        ratios = tuple(sorted(set(expand_ratios)))
        if not ratios or min(ratios) <= 1:
            raise ConfigError(f"expand_ratios must all be > 1, got {list(expand_ratios)}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_sizes = tuple(sorted(set(kernel_sizes)))
        self.expand_ratios = ratios
        self.stride = stride
        self.act_name = act
        max_mid = mid_channels(in_channels, ratios[-1])
        self.max_mid_channels = max_mid
        self.expand_conv = ElasticConv2d(in_channels, max_mid, 1)
        self.expand_bn = ElasticBatchNorm2d(max_mid)
        self.expand_act = activation(act)
        self.depthwise_conv = ElasticDepthwiseConv2d(
            max_mid, self.kernel_sizes, stride, transform=transform_kernels
        )
        self.depthwise_bn = ElasticBatchNorm2d(max_mid)
        self.depthwise_act = activation(act)
        self.se = ElasticSqueezeExcite(max_mid) if se else None
        self.project_conv = ElasticConv2d(max_mid, out_channels, 1)
        self.project_bn = ElasticBatchNorm2d(out_channels)
        self.residual = stride == 1 and in_channels == out_channels
        self._kernel = self.kernel_sizes[-1]
        self._ratio = ratios[-1]

    @property
    def active_kernel_size(self) -> int:
        """The active depthwise kernel size."""
        return self._kernel

    @property
    def active_expand_ratio(self) -> float:
        """The active expand ratio."""
        return self._ratio

    @property
    def active_mid_channels(self) -> int:
        """The expanded width of the active configuration."""
        return mid_channels(self.in_channels, self._ratio)

    def set_active(self, *, kernel_size: int, expand_ratio: float) -> None:
        """Choose the kernel size and expand ratio ``forward`` computes.

        Raises:
            ValueError: a value is not one of the allowed ones.
        """
        if expand_ratio not in self.expand_ratios:
            raise ConfigError(
                f"expand_ratio must be one of {list(self.expand_ratios)}, got {expand_ratio!r}"
            )
        self.depthwise_conv.active_kernel_size = kernel_size  # validates
        self._kernel = kernel_size
        self._ratio = expand_ratio
        mid = self.active_mid_channels
        self.expand_conv.active_out_channels = mid
        self.expand_bn.active_channels = mid
        self.depthwise_conv.active_channels = mid
        self.depthwise_bn.active_channels = mid
        if self.se is not None:
            self.se.active_channels = mid
        self.project_conv.active_in_channels = mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand_act(self.expand_bn(self.expand_conv(x)))
        y = self.depthwise_act(self.depthwise_bn(self.depthwise_conv(y)))
        if self.se is not None:
            y = self.se(y)
        y = self.project_bn(self.project_conv(y))
        return x + y if self.residual else y

    def export(self) -> MBConv:
        """A static :class:`nas.blocks.MBConv` with the active weights and BN statistics."""
        mid = self.active_mid_channels
        device = self.project_conv.weight.device
        static = build_uninitialized(
            lambda: MBConv(
                self.in_channels,
                self.out_channels,
                mid_channels=mid,
                kernel_size=self._kernel,
                stride=self.stride,
                act=self.act_name,
                se=self.se is not None,
            ),
            device,
        )
        assert static.expand is not None  # built with expand=True
        with torch.no_grad():
            static.expand.conv.weight.copy_(self.expand_conv.active_weight())
            self.expand_bn.copy_active_to(static.expand.bn)
            static.depthwise.conv.weight.copy_(self.depthwise_conv.active_weight())
            self.depthwise_bn.copy_active_to(static.depthwise.bn)
            if self.se is not None and static.se is not None:
                self.se.copy_active_to(static.se)
            static.project.conv.weight.copy_(self.project_conv.active_weight())
            self.project_bn.copy_active_to(static.project.bn)
        return static

    @torch.no_grad()
    def reorganize_channels(self) -> torch.Tensor:
        """Sort the expanded channels by importance; the largest block's function is unchanged.

        Importance is the L1 norm of the project conv's weights reading each channel (OFA's
        ``re_organize_middle_weights``). The expand conv's outputs, both BNs, the depthwise
        conv, the SE and the project conv's inputs are permuted together, so smaller expand
        ratios keep the most important channels. Optimizer state is not permuted.

        Returns:
            the permutation applied (new channel ``i`` was old channel ``order[i]``).
        """
        importance = self.project_conv.weight.abs().sum(dim=(0, 2, 3))
        order = torch.argsort(importance, descending=True, stable=True)
        _permute(self.project_conv.weight, order, dim=1)
        _permute(self.depthwise_conv.weight, order, dim=0)
        _permute_bn(self.depthwise_bn, order)
        if self.se is not None:
            self.se.permute_channels(order)
        _permute(self.expand_conv.weight, order, dim=0)
        _permute_bn(self.expand_bn, order)
        return order


def _permute(tensor: torch.Tensor, order: torch.Tensor, dim: int) -> None:
    tensor.copy_(tensor.index_select(dim, order))


def _permute_bn(bn: nn.BatchNorm2d, order: torch.Tensor) -> None:
    for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        if t is not None:
            _permute(t, order, 0)
