"""Static building blocks (plain ``torch.nn``) of extracted subnets and layer profiling.

Elastic layers export into these, :class:`nas.layers.LayerSpec` builds them, and extracted
subnets are made of them, so a saved subnet never needs ``nas.elastic``.

Example:
    >>> block = MBConv(24, 40, mid_channels=96, kernel_size=5, stride=2, act="relu", se=True)
    >>> block(torch.randn(1, 24, 56, 56)).shape
    torch.Size([1, 40, 28, 28])
"""

from __future__ import annotations

import torch
from torch import nn

from nas.errors import ConfigError
from nas.shapes import make_divisible, se_channels

ACTIVATIONS = ("relu", "h_swish", "h_sigmoid", "none")
__all__ = [
    "ACTIVATIONS",
    "ConvBNAct",
    "GlobalAvgPool",
    "MBConv",
    "SqueezeExcite",
    "activation",
    "make_divisible",
    "se_channels",
]


def activation(name: str) -> nn.Module:
    """A fresh activation module: ``relu``, ``h_swish``, ``h_sigmoid`` or ``none``."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "h_swish":
        return nn.Hardswish()
    if name == "h_sigmoid":
        return nn.Hardsigmoid()
    if name == "none":
        return nn.Identity()
    raise ConfigError(f"activation must be one of {list(ACTIVATIONS)}, got {name!r}")


class ConvBNAct(nn.Sequential):
    """``conv`` (+ ``bn``) (+ ``act``): a square convolution with 'same' padding.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd kernel size.
        stride: stride.
        groups: convolution groups (``in_channels`` for depthwise).
        act: activation name (``"none"`` for none).
        bn: add batch normalisation.
        bias: convolution bias.
    """

    conv: nn.Conv2d
    bn: nn.BatchNorm2d  # absent when built with bn=False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        *,
        groups: int = 1,
        act: str = "relu",
        bn: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.add_module(
            "conv",
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                kernel_size // 2,
                groups=groups,
                bias=bias,
            ),
        )
        if bn:
            self.add_module("bn", nn.BatchNorm2d(out_channels))
        if act != "none":
            self.add_module("act", activation(act))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite of MobileNetV3: mean-pool, 1x1 reduce, ReLU, 1x1 expand, h-sigmoid.

    Args:
        channels: channels of the input (and output).
        mid_channels: hidden channels (default :func:`se_channels` of ``channels``).
    """

    def __init__(self, channels: int, mid_channels: int | None = None) -> None:
        super().__init__()
        mid = se_channels(channels) if mid_channels is None else mid_channels
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3), keepdim=True)
        y = self.gate(self.expand(self.relu(self.reduce(y))))
        return x * y


class MBConv(nn.Module):
    """MobileNetV3 inverted-residual block.

    1x1 expand conv + BN + act (absent when ``mid_channels == in_channels`` and
    ``expand=False``), depthwise kxk conv + BN + act, optional squeeze-and-excite, 1x1 project
    conv + BN; identity residual when ``stride == 1`` and ``in_channels == out_channels``.

    Args:
        in_channels, out_channels: channel counts.
        mid_channels: expanded channels.
        kernel_size: depthwise kernel size.
        stride: depthwise stride.
        act: activation of the expand and depthwise convolutions.
        se: add squeeze-and-excite after the depthwise activation.
        expand: include the 1x1 expand convolution (OFA omits it for expand ratio 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        mid_channels: int,
        kernel_size: int,
        stride: int = 1,
        act: str = "relu",
        se: bool = False,
        expand: bool = True,
    ) -> None:
        super().__init__()
        if not expand and mid_channels != in_channels:
            raise ConfigError(
                f"a block without expand conv needs mid_channels == in_channels, "
                f"got {mid_channels} and {in_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.expand = ConvBNAct(in_channels, mid_channels, 1, act=act) if expand else None
        self.depthwise = ConvBNAct(
            mid_channels, mid_channels, kernel_size, stride, groups=mid_channels, act=act
        )
        self.se = SqueezeExcite(mid_channels) if se else None
        self.project = ConvBNAct(mid_channels, out_channels, 1, act="none")
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else self.expand(x)
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.residual else y


class GlobalAvgPool(nn.Module):
    """Mean over height and width, keeping them as size-1 dimensions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=True)
