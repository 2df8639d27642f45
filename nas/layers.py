"""Layer descriptions of extracted subnets: shapes, parameter and MAC counts, profiling.

A :class:`LayerSpec` describes one layer or block of a subnet at a given input resolution: a
``kind`` and its shape fields. It knows its parameter count, its multiply-accumulates (MACs,
counted as DyNAS-T/fvcore count them: convolutions and linear layers, bias-free, one MAC per
multiply-add; BN, activations, pooling and element-wise products are free), how to build a
fresh module of that shape and the input shape to time it with. Its ``key`` names it in
latency lookup tables.

Each kind is a :class:`LayerKind`; the built-in ones are ``conv``, ``mbconv``, ``linear`` and
``pool``. Other families add theirs with :func:`register_layer_kind` and may keep extra shape
fields in ``extra``.

Example:
    >>> spec = LayerSpec(kind="mbconv", in_channels=24, out_channels=40, mid_channels=96,
    ...                  kernel=5, stride=2, input_hw=56, act="relu")
    >>> spec.key
    'mbconv|in24|out40|mid96|k5|s2|hw56|relu|se0'
    >>> spec.params(), spec.macs()
    (9008, 12117504)
    >>> module = spec.build(); y = module(torch.randn(spec.input_shape(1)))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from nas.errors import ConfigError
from nas.shapes import conv_output_size, se_channels
from nas.shapes import make_divisible as make_divisible  # re-exported (moved to nas.shapes)
from nas.space import Value

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """One layer or block of an extracted subnet.

    Fields a kind does not use stay at their defaults (0, ``""``, ``False``).

    Args:
        kind: the layer kind (``conv``, ``mbconv``, ``linear``, ``pool``, or a registered one).
        in_channels, out_channels: channels (features for ``linear``).
        mid_channels: expanded width of a block (``mbconv``: equal to ``in_channels`` when the
            block has no expand conv).
        kernel: square kernel size.
        stride: stride.
        input_hw: input height = width (0 for ``linear``).
        groups: convolution groups.
        act: activation name (``""`` for none).
        se: squeeze-and-excite (``mbconv``).
        bn: batch normalisation after the convolution (``conv``).
        bias: a bias (``conv``, ``linear``).
        extra: further kind-specific fields as sorted ``(name, value)`` pairs.
    """

    kind: str
    in_channels: int = 0
    out_channels: int = 0
    mid_channels: int = 0
    kernel: int = 1
    stride: int = 1
    input_hw: int = 0
    groups: int = 1
    act: str = ""
    se: bool = False
    bn: bool = False
    bias: bool = False
    extra: tuple[tuple[str, Value], ...] = ()

    @property
    def key(self) -> str:
        """A stable text key, e.g. ``mbconv|in24|out40|mid96|k5|s2|hw56|relu|se0``."""
        parts = [self.kind, f"in{self.in_channels}", f"out{self.out_channels}"]
        if self.mid_channels:
            parts.append(f"mid{self.mid_channels}")
        parts += [f"k{self.kernel}", f"s{self.stride}", f"hw{self.input_hw}"]
        parts += [self.act or "none", f"se{int(self.se)}"]
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        if self.bn:
            parts.append("bn")
        if self.bias:
            parts.append("bias")
        parts += [f"{name}={value}" for name, value in self.extra]
        return "|".join(parts)

    @property
    def output_hw(self) -> int:
        """Output height = width (for a 'same'-padded kernel/stride)."""
        if self.input_hw == 0:
            return 0
        return conv_output_size(self.input_hw, self.kernel, self.stride)

    def get(self, name: str, default: Value = 0) -> Value:
        """An ``extra`` field, or ``default``."""
        return dict(self.extra).get(name, default)

    def params(self) -> int:
        """Number of parameters (weights, biases, BN scale and shift)."""
        return int(layer_kind(self.kind).params(self))

    def macs(self) -> int:
        """Multiply-accumulates of one forward pass of one sample."""
        return int(layer_kind(self.kind).macs(self))

    def build(self) -> nn.Module:
        """A freshly initialised plain ``torch.nn`` module of this shape."""
        return layer_kind(self.kind).build(self)

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The input tensor shape for ``batch`` samples (to time the layer alone)."""
        if self.input_hw == 0:
            return (batch, self.in_channels)
        return (batch, self.in_channels, self.input_hw, self.input_hw)


class LayerKind(Protocol):
    """Counting and building for one ``LayerSpec.kind``."""

    def params(self, spec: LayerSpec) -> int:
        """Parameter count of ``spec``."""
        ...

    def macs(self, spec: LayerSpec) -> int:
        """MACs of ``spec`` for one sample."""
        ...

    def build(self, spec: LayerSpec) -> nn.Module:
        """A fresh module of ``spec``'s shape."""
        ...


_KINDS: dict[str, LayerKind] = {}


def register_layer_kind(name: str, kind: LayerKind) -> None:
    """Make ``LayerSpec(kind=name, ...)`` countable and buildable (replaces an old entry).

    Example:
        >>> register_layer_kind("bottleneck", BottleneckKind())
    """
    _KINDS[name] = kind


def layer_kind(name: str) -> LayerKind:
    """The :class:`LayerKind` registered as ``name``."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown layer kind {name!r}; registered kinds are {sorted(_KINDS)}"
        ) from None


def layer_kinds() -> Mapping[str, LayerKind]:
    """All registered kinds, by name."""
    return dict(_KINDS)


# ----------------------------------------------------------------- built-in kinds
def _conv_params(cin: int, cout: int, k: int, groups: int = 1, *, bias: bool, bn: bool) -> int:
    return cin // groups * cout * k * k + (cout if bias else 0) + (2 * cout if bn else 0)


def _se_params(channels: int, hidden: int) -> int:
    return 2 * channels * hidden + channels + hidden


class ConvKind:
    """``conv``: convolution (+ BN) (+ activation); ``groups == in`` is depthwise."""

    def params(self, spec: LayerSpec) -> int:
        return _conv_params(
            spec.in_channels, spec.out_channels, spec.kernel, spec.groups, bias=spec.bias,
            bn=spec.bn,
        )

    def macs(self, spec: LayerSpec) -> int:
        per_pixel = spec.in_channels // spec.groups * spec.out_channels * spec.kernel**2
        return per_pixel * spec.output_hw**2

    def build(self, spec: LayerSpec) -> nn.Module:
        from nas.blocks import ConvBNAct

        return ConvBNAct(
            spec.in_channels, spec.out_channels, spec.kernel, spec.stride, groups=spec.groups,
            act=spec.act or "none", bn=spec.bn, bias=spec.bias,
        )


class MBConvKind:
    """``mbconv``: MobileNetV3 inverted-residual block (no expand conv when ``mid == in``)."""

    def params(self, spec: LayerSpec) -> int:
        cin, mid, cout, k = spec.in_channels, spec.mid_channels, spec.out_channels, spec.kernel
        total = 0 if mid == cin else _conv_params(cin, mid, 1, bias=False, bn=True)
        total += _conv_params(mid, mid, k, mid, bias=False, bn=True)
        if spec.se:
            total += _se_params(mid, se_channels(mid))
        return total + _conv_params(mid, cout, 1, bias=False, bn=True)

    def macs(self, spec: LayerSpec) -> int:
        cin, mid, cout, k = spec.in_channels, spec.mid_channels, spec.out_channels, spec.kernel
        hw_in, hw_out = spec.input_hw**2, spec.output_hw**2
        total = 0 if mid == cin else cin * mid * hw_in
        total += mid * k * k * hw_out
        if spec.se:
            total += 2 * mid * se_channels(mid)
        return total + mid * cout * hw_out

    def build(self, spec: LayerSpec) -> nn.Module:
        from nas.blocks import MBConv

        return MBConv(
            spec.in_channels, spec.out_channels, mid_channels=spec.mid_channels,
            kernel_size=spec.kernel, stride=spec.stride, act=spec.act or "none", se=spec.se,
            expand=spec.mid_channels != spec.in_channels,
        )


class LinearKind:
    """``linear``: fully connected layer over ``in_channels`` features."""

    def params(self, spec: LayerSpec) -> int:
        return spec.in_channels * spec.out_channels + (spec.out_channels if spec.bias else 0)

    def macs(self, spec: LayerSpec) -> int:
        return spec.in_channels * spec.out_channels

    def build(self, spec: LayerSpec) -> nn.Module:
        from torch import nn

        return nn.Linear(spec.in_channels, spec.out_channels, bias=spec.bias)


class PoolKind:
    """``pool``: global average pooling (no parameters, no MACs)."""

    def params(self, spec: LayerSpec) -> int:
        return 0

    def macs(self, spec: LayerSpec) -> int:
        return 0

    def build(self, spec: LayerSpec) -> nn.Module:
        from nas.blocks import GlobalAvgPool

        return GlobalAvgPool()


register_layer_kind("conv", ConvKind())
register_layer_kind("mbconv", MBConvKind())
register_layer_kind("linear", LinearKind())
register_layer_kind("pool", PoolKind())
