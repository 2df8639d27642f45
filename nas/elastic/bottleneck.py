"""The width-elastic ResNet bottleneck block of Once-for-All ResNet50 (and its static export).

``conv1``: 1x1 conv to ``mid = make_divisible(round(out * expand), 8)`` channels, BN, ReLU;
``conv2``: 3x3 conv (the block's stride), BN, ReLU; ``conv3``: 1x1 conv to ``out``, BN; the
shortcut is the identity when the stride is 1 and the input and output width choices are the
same, else ``avgpool_conv`` (ResNet-D): ``AvgPool2d(stride, stride, ceil_mode=True)``, 1x1
conv, BN. ReLU after the addition. Input channels follow the input tensor; output channels and
the expand ratio are set by :meth:`ElasticBottleneck.set_active`.
Reference: OFA's ``DynamicResNetBottleneckBlock`` (github.com/mit-han-lab/once-for-all, MIT).

Example:
    >>> block = ElasticBottleneck((40, 48, 64), (168, 208, 256), expand_ratios=(0.2, 0.25, 0.35))
    >>> block.set_active(in_channels=48, out_channels=208, expand_ratio=0.25)
    >>> block(torch.randn(2, 48, 16, 16)).shape
    torch.Size([2, 208, 16, 16])
    >>> static = block.export()          # a plain Bottleneck: 48 -> 56 -> 208 channels
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from nas.blocks import ConvBNAct
from nas.elastic.batchnorm import ElasticBatchNorm2d
from nas.elastic.conv import ElasticConv2d
from nas.errors import ConfigError
from nas.layers import make_divisible


def bottleneck_mid_channels(out_channels: int, expand_ratio: float) -> int:
    """Middle width of a bottleneck: ``make_divisible(round(out * expand), 8)`` (as OFA)."""
    return make_divisible(round(out_channels * expand_ratio), 8)


def _avg_pool(stride: int) -> nn.AvgPool2d:
    return nn.AvgPool2d(stride, stride, padding=0, ceil_mode=True, count_include_pad=False)


class Bottleneck(nn.Module):
    """A static ResNet(-D) bottleneck block (what :meth:`ElasticBottleneck.export` returns).

    Build a fresh one with :meth:`build`; the constructor takes the parts.

    Args:
        conv1: 1x1 conv + BN + ReLU to the middle width.
        conv2: 3x3 conv (stride) + BN + ReLU.
        conv3: 1x1 conv + BN to the output width.
        downsample: the shortcut, ``None`` for the identity.
    """

    def __init__(
        self, conv1: nn.Module, conv2: nn.Module, conv3: nn.Module, downsample: nn.Module | None
    ) -> None:
        super().__init__()
        self.conv1 = conv1
        self.conv2 = conv2
        self.conv3 = conv3
        self.downsample = nn.Identity() if downsample is None else downsample
        self.final_act = nn.ReLU(inplace=True)

    @classmethod
    def build(
        cls,
        in_channels: int,
        out_channels: int,
        *,
        mid_channels: int,
        stride: int = 1,
        downsample: bool = True,
    ) -> Bottleneck:
        """A freshly initialised block.

        Args:
            in_channels, out_channels: channel counts.
            mid_channels: channels of the 1x1 and 3x3 convolutions.
            stride: stride of the 3x3 convolution (and of the shortcut's average pooling).
            downsample: use the ``avgpool_conv`` shortcut; ``False`` needs stride 1 and equal
                channel counts (identity shortcut).

        Example:
            >>> Bottleneck.build(256, 512, mid_channels=128, stride=2)
        """
        if not downsample and (stride != 1 or in_channels != out_channels):
            raise ConfigError(
                "an identity shortcut needs stride 1 and in_channels == out_channels, got "
                f"stride={stride}, in_channels={in_channels}, out_channels={out_channels}"
            )
        shortcut = None
        if downsample:
            shortcut = _downsample(
                stride,
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        return cls(
            ConvBNAct(in_channels, mid_channels, 1, act="relu"),
            ConvBNAct(mid_channels, mid_channels, 3, stride, act="relu"),
            ConvBNAct(mid_channels, out_channels, 1, act="none"),
            shortcut,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.downsample(x)
        y = self.conv3(self.conv2(self.conv1(x)))
        return self.final_act(y + residual)


def _downsample(stride: int, conv: nn.Module, bn: nn.Module) -> nn.Sequential:
    return nn.Sequential(OrderedDict(avg_pool=_avg_pool(stride), conv=conv, bn=bn))


class ElasticConvBN(nn.Module):
    """ElasticConv2d + ElasticBatchNorm2d (+ ReLU), named ``conv``/``bn``/``act`` like OFA.

    Args:
        max_in, max_out: the largest input and output channel counts.
        kernel_size: square kernel size ('same' padding).
        stride: convolution stride.
        act: follow with a ReLU.
    """

    def __init__(
        self, max_in: int, max_out: int, kernel_size: int, stride: int = 1, *, act: bool
    ) -> None:
        super().__init__()
        self.conv = ElasticConv2d(max_in, max_out, kernel_size, stride)
        self.bn = ElasticBatchNorm2d(max_out)
        self.act: nn.Module | None = nn.ReLU(inplace=True) if act else None

    def set_active(self, in_channels: int, out_channels: int) -> None:
        """Choose the active input and output channels."""
        self.conv.active_in_channels = in_channels
        self.conv.active_out_channels = out_channels
        self.bn.active_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.act is None else self.act(x)

    def export(self) -> nn.Sequential:
        """A plain ``conv``/``bn``(/``act``) sequence with the active weights copied."""
        parts: OrderedDict[str, nn.Module] = OrderedDict(
            conv=self.conv.export(), bn=self.bn.export()
        )
        if self.act is not None:
            parts["act"] = nn.ReLU(inplace=True)
        return nn.Sequential(parts)


class ElasticBottleneck(nn.Module):
    """A bottleneck block with elastic input width, output width and expand ratio.

    Args:
        in_channels: the input width choices (the largest sizes the weights).
        out_channels: the output width choices.
        expand_ratios: the expand ratio choices (middle width relative to the output).
        stride: stride of the 3x3 convolution.

    The shortcut is the identity when ``stride == 1`` and the two width choice lists are
    equal (then active input and output widths always agree), else ``avgpool_conv``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: Sequence[int],
        *,
        expand_ratios: Sequence[float],
        stride: int = 1,
    ) -> None:
        super().__init__()
        if not in_channels or not out_channels or not expand_ratios:
            raise ConfigError("in_channels, out_channels and expand_ratios must be non-empty")
        if stride not in (1, 2):
            raise ConfigError(f"stride must be 1 or 2, got {stride!r}")
        self.in_choices = tuple(sorted(int(c) for c in in_channels))
        self.out_choices = tuple(sorted(int(c) for c in out_channels))
        self.expand_ratios = tuple(sorted(float(e) for e in expand_ratios))
        self.stride = stride
        max_in, max_out = self.in_choices[-1], self.out_choices[-1]
        max_mid = bottleneck_mid_channels(max_out, self.expand_ratios[-1])
        self.conv1 = ElasticConvBN(max_in, max_mid, 1, act=True)
        self.conv2 = ElasticConvBN(max_mid, max_mid, 3, stride, act=True)
        self.conv3 = ElasticConvBN(max_mid, max_out, 1, act=False)
        self.identity = stride == 1 and self.in_choices == self.out_choices
        self.downsample: nn.Module = (
            nn.Identity()
            if self.identity
            else _downsample(stride, ElasticConv2d(max_in, max_out, 1), ElasticBatchNorm2d(max_out))
        )
        self.final_act = nn.ReLU(inplace=True)
        self.set_active(
            in_channels=max_in, out_channels=max_out, expand_ratio=self.expand_ratios[-1]
        )

    @property
    def active_in_channels(self) -> int:
        """Input width of the active configuration."""
        return self._in

    @property
    def active_out_channels(self) -> int:
        """Output width of the active configuration."""
        return self._out

    @property
    def active_expand_ratio(self) -> float:
        """Expand ratio of the active configuration."""
        return self._expand

    @property
    def active_mid_channels(self) -> int:
        """Middle width of the active configuration."""
        return bottleneck_mid_channels(self._out, self._expand)

    def set_active(self, *, in_channels: int, out_channels: int, expand_ratio: float) -> None:
        """Choose the active input width, output width and expand ratio.

        Raises:
            ValueError: a value is not one of the block's choices, or an identity block is
                given different input and output widths.
        """
        for name, value, allowed in (
            ("in_channels", in_channels, self.in_choices),
            ("out_channels", out_channels, self.out_choices),
            ("expand_ratio", expand_ratio, self.expand_ratios),
        ):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {list(allowed)}, got {value!r}")
        if self.identity and in_channels != out_channels:
            raise ConfigError(
                f"identity-shortcut block needs in_channels == out_channels, got "
                f"{in_channels} and {out_channels}"
            )
        self._in, self._out, self._expand = int(in_channels), int(out_channels), expand_ratio
        mid = self.active_mid_channels
        self.conv1.set_active(self._in, mid)
        self.conv2.set_active(mid, mid)
        self.conv3.set_active(mid, self._out)
        shortcut = self._shortcut()
        if shortcut is not None:
            shortcut[0].active_in_channels = self._in
            shortcut[0].active_out_channels = self._out
            shortcut[1].active_channels = self._out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.downsample(x)
        y = self.conv3(self.conv2(self.conv1(x)))
        return self.final_act(y + residual)

    def export(self) -> Bottleneck:
        """A static :class:`Bottleneck` with the active weights and BN statistics copied."""
        elastic = self._shortcut()
        shortcut = None
        if elastic is not None:
            shortcut = _downsample(self.stride, elastic[0].export(), elastic[1].export())
        return Bottleneck(self.conv1.export(), self.conv2.export(), self.conv3.export(), shortcut)

    def _shortcut(self) -> tuple[ElasticConv2d, ElasticBatchNorm2d] | None:
        """The shortcut's elastic conv and BN (``None`` for the identity)."""
        if self.identity:
            return None
        layers = cast(nn.Sequential, self.downsample)
        return cast(ElasticConv2d, layers.conv), cast(ElasticBatchNorm2d, layers.bn)

    def extra_repr(self) -> str:
        return (
            f"in={list(self.in_choices)}, out={list(self.out_choices)}, "
            f"expand={list(self.expand_ratios)}, stride={self.stride}, "
            f"active=({self._in}->{self.active_mid_channels}->{self._out})"
        )
