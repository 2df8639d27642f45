"""Layer descriptions of OFA-ResNet50 subnets, for counting and latency lookup tables.

Adds the layer kinds ``bottleneck``, ``residual_conv`` and ``maxpool`` to :mod:`nas.layers`
(importing this module registers them); counting needs no torch, building imports it.

Example:
    >>> space = nas.create_space("ofa_resnet50")
    >>> specs = layer_specs(space, space.largest(), num_classes=1000)
    >>> specs[3].key
    'maxpool|in64|out64|k3|s2|hw112|none|se0'
    >>> sum(s.params() for s in specs)
    48105992
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.layers import ConvKind, LayerSpec, make_divisible, register_layer_kind
from nas.space import ArchConfig, SearchSpace

if TYPE_CHECKING:
    from torch import nn


def _bn(channels: int) -> int:
    return 2 * channels


class BottleneckKind:
    """``bottleneck``: ResNet-D bottleneck; ``extra`` ``downsample`` 1 = ``avgpool_conv``."""

    def params(self, spec: LayerSpec) -> int:
        cin, mid, cout = spec.in_channels, spec.mid_channels, spec.out_channels
        total = cin * mid + _bn(mid) + 9 * mid * mid + _bn(mid) + mid * cout + _bn(cout)
        if spec.get("downsample"):
            total += cin * cout + _bn(cout)
        return total

    def macs(self, spec: LayerSpec) -> int:
        cin, mid, cout = spec.in_channels, spec.mid_channels, spec.out_channels
        hw_in, hw_out = spec.input_hw**2, spec.output_hw**2
        total = cin * mid * hw_in + 9 * mid * mid * hw_out + mid * cout * hw_out
        if spec.get("downsample"):
            total += cin * cout * hw_out  # after the (ceil-mode) average pooling
        return total

    def build(self, spec: LayerSpec) -> nn.Module:
        from nas.elastic.bottleneck import Bottleneck

        return Bottleneck.build(
            spec.in_channels,
            spec.out_channels,
            mid_channels=spec.mid_channels,
            stride=spec.stride,
            downsample=bool(spec.get("downsample")),
        )


class ResidualConvKind(ConvKind):
    """``residual_conv``: ``x + conv(x)`` (conv + BN + ReLU), the skippable stem block."""

    def build(self, spec: LayerSpec) -> nn.Module:
        from search_spaces.resnet_net import ResidualLayer

        return ResidualLayer(super().build(spec))


class MaxPoolKind:
    """``maxpool``: 3x3 stride-2 max pooling with padding 1 (no parameters, no MACs)."""

    def params(self, spec: LayerSpec) -> int:
        return 0

    def macs(self, spec: LayerSpec) -> int:
        return 0

    def build(self, spec: LayerSpec) -> nn.Module:
        from torch import nn

        return nn.MaxPool2d(spec.kernel, spec.stride, spec.kernel // 2)


register_layer_kind("bottleneck", BottleneckKind())
register_layer_kind("residual_conv", ResidualConvKind())
register_layer_kind("maxpool", MaxPoolKind())


def _stem_conv(kind: str, cin: int, cout: int, stride: int, hw: int) -> LayerSpec:
    return LayerSpec(
        kind=kind, in_channels=cin, out_channels=cout, kernel=3, stride=stride, input_hw=hw,
        bn=True, act="relu",
    )


def layer_specs(space: SearchSpace, arch: ArchConfig, num_classes: int = 1000) -> list[LayerSpec]:
    """The layers of ``arch`` at its resolution, input to output.

    Raises:
        InvalidArchError: ``arch`` is not an architecture of ``space``.
    """
    space.validate(arch)
    meta = space.meta
    base = int(meta.get("stem_width", 64))
    stem = make_divisible(base * float(arch["stem.width"]), 8)
    mid = make_divisible(make_divisible(base * float(arch["stem.mid_width"]), 8) // 2, 8)
    hw = int(arch["resolution"])
    specs = [_stem_conv("conv", 3, mid, 2, hw)]
    hw = specs[-1].output_hw
    if int(arch["stem.depth"]) == 3:
        specs.append(_stem_conv("residual_conv", mid, mid, 1, hw))
    specs.append(_stem_conv("conv", mid, stem, 1, hw))
    pool = LayerSpec(
        kind="maxpool", in_channels=stem, out_channels=stem, kernel=3, stride=2, input_hw=hw
    )
    specs.append(pool)
    hw = specs[-1].output_hw
    width = stem
    for s, (base_width, stride) in enumerate(zip(meta["stage_widths"], meta["strides"]), 1):
        out = make_divisible(int(base_width) * float(arch[f"s{s}.width"]), 8)
        for b in range(int(arch[f"s{s}.depth"])):
            block_stride = int(stride) if b == 0 else 1
            spec = LayerSpec(
                kind="bottleneck",
                in_channels=width,
                out_channels=out,
                mid_channels=make_divisible(round(out * float(arch[f"s{s}.b{b}.expand"])), 8),
                kernel=3,
                stride=block_stride,
                input_hw=hw,
                act="relu",
                # the first block of a stage changes width (stem widths differ from stage
                # widths, stages from each other): avgpool_conv; the others are identity
                extra=(("downsample", int(b == 0)),),
            )
            specs.append(spec)
            hw, width = spec.output_hw, out
    specs.append(LayerSpec(kind="pool", in_channels=width, out_channels=width, input_hw=hw))
    specs.append(
        LayerSpec(kind="linear", in_channels=width, out_channels=num_classes, bias=True)
    )
    return specs

