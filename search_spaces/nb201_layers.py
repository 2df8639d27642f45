"""Layer descriptions of NAS-Bench-201 networks, for counting and latency lookup tables.

Adds the layer kinds ``nb201_cell`` (one cell; ``extra`` ``cell`` holds its operations per
edge in short form, e.g. ``c3-0-s-p-0-c1``: ``0`` none, ``s`` skip, ``c1``/``c3`` conv, ``p`` pool),
``nb201_resblock`` (the stride-2 residual block between stages) and ``bn_act`` (BN + ReLU
before the head) to :mod:`nas.layers`; importing this module registers them. Counting needs no
torch, building imports it.

Example:
    >>> space = nas.create_space("nb201")
    >>> specs = layer_specs(space, space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|"
    ...                                        "skip_connect~0|none~1|nor_conv_1x1~2|"), 10)
    >>> [s.kind for s in specs][:4]
    ['conv', 'nb201_cell', 'nb201_cell', 'nb201_cell']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.errors import ConfigError
from nas.layers import LayerSpec, register_layer_kind
from nas.space import ArchConfig, InvalidArchError, SearchSpace
from search_spaces.nb201_space import EDGES, NB201Space, edge_name

if TYPE_CHECKING:
    from torch import nn

_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
# short op names: a layer key is '|'-separated, so the cell string cannot go in it as it is
SHORT = {"none": "0", "skip_connect": "s", "nor_conv_1x1": "c1", "nor_conv_3x3": "c3",
         "avg_pool_3x3": "p"}
_LONG = {short: op for op, short in SHORT.items()}


def cell_code(ops: list[str]) -> str:
    """Short form of a cell's operations (in :data:`EDGES` order), e.g. ``c3-0-s-p-0-c1``."""
    return "-".join(SHORT[op] for op in ops)


def _ops(spec: LayerSpec) -> list[str]:
    """The operation per edge, in :data:`EDGES` order, from the spec's ``cell`` code."""
    code = str(spec.get("cell", ""))
    ops = [_LONG.get(short, "") for short in code.split("-")]
    if len(ops) != len(EDGES) or "" in ops:
        raise ConfigError(
            f"nb201_cell spec needs extra 'cell' with {len(EDGES)} of {sorted(_LONG)} joined "
            f"by '-', got {code!r}"
        )
    return ops


class CellKind:
    """``nb201_cell``: a cell on ``in_channels`` channels at ``input_hw`` (stride 1)."""

    def params(self, spec: LayerSpec) -> int:
        c = spec.in_channels
        return sum(_KERNEL[op] ** 2 * c * c + 2 * c for op in _ops(spec) if op in _KERNEL)

    def macs(self, spec: LayerSpec) -> int:
        c, hw = spec.in_channels, spec.input_hw
        return sum(_KERNEL[op] ** 2 * c * c * hw * hw for op in _ops(spec) if op in _KERNEL)

    def build(self, spec: LayerSpec) -> nn.Module:
        from search_spaces.nb201_net import Cell, edge_key, make_op

        ops = dict(zip(EDGES, _ops(spec)))
        modules = {
            edge_key(to, frm): make_op(op, spec.in_channels)
            for (to, frm), op in ops.items()
            if op != "none"
        }
        return Cell(ops, modules)


class ResBlockKind:
    """``nb201_resblock``: ReLU-conv3x3(s2)-BN, ReLU-conv3x3-BN, avgpool + 1x1 conv shortcut."""

    def params(self, spec: LayerSpec) -> int:
        cin, cout = spec.in_channels, spec.out_channels
        return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout + cin * cout

    def macs(self, spec: LayerSpec) -> int:
        cin, cout, hw = spec.in_channels, spec.out_channels, spec.output_hw
        return (9 * cin * cout + 9 * cout * cout + cin * cout) * hw * hw

    def build(self, spec: LayerSpec) -> nn.Module:
        from search_spaces.nb201_net import ResNetBasicBlock

        return ResNetBasicBlock(spec.in_channels, spec.out_channels)


class BNActKind:
    """``bn_act``: BatchNorm (+ ReLU when ``act == "relu"``); no MACs."""

    def params(self, spec: LayerSpec) -> int:
        return 2 * spec.in_channels

    def macs(self, spec: LayerSpec) -> int:
        return 0

    def build(self, spec: LayerSpec) -> nn.Module:
        from torch import nn

        layers: list[nn.Module] = [nn.BatchNorm2d(spec.in_channels)]
        if spec.act == "relu":
            layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers)


register_layer_kind("nb201_cell", CellKind())
register_layer_kind("nb201_resblock", ResBlockKind())
register_layer_kind("bn_act", BNActKind())


def layer_specs(space: SearchSpace, arch: ArchConfig, num_classes: int = 10) -> list[LayerSpec]:
    """The layers of the NAS-Bench-201 network of ``arch``, input to output.

    Raises:
        InvalidArchError: ``arch`` is not an architecture of ``space``.
    """
    if not isinstance(space, NB201Space):
        raise InvalidArchError(f"space {space.name!r} is not a NAS-Bench-201 space")
    space.validate(arch)
    cell = cell_code([str(arch[edge_name(to, frm)]) for to, frm in EDGES])
    c = int(space.meta.get("channels", 16))
    per_stage = int(space.meta.get("cells_per_stage", 5))
    hw = int(space.meta.get("resolution", 32))
    specs = [
        LayerSpec(kind="conv", in_channels=3, out_channels=c, kernel=3, input_hw=hw, bn=True)
    ]
    for stage in range(3):
        if stage > 0:
            block = LayerSpec(
                kind="nb201_resblock", in_channels=c, out_channels=2 * c, kernel=3, stride=2,
                input_hw=hw,
            )
            specs.append(block)
            c, hw = 2 * c, block.output_hw
        specs += [
            LayerSpec(
                kind="nb201_cell", in_channels=c, out_channels=c, input_hw=hw,
                extra=(("cell", cell),),
            )
        ] * per_stage
    specs.append(LayerSpec(kind="bn_act", in_channels=c, out_channels=c, input_hw=hw, act="relu"))
    specs.append(LayerSpec(kind="pool", in_channels=c, out_channels=c, input_hw=hw))
    specs.append(LayerSpec(kind="linear", in_channels=c, out_channels=num_classes, bias=True))
    return specs
