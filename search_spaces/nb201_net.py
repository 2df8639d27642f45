"""The NAS-Bench-201 CIFAR network as a weight-sharing supernet (family ``"nb201"``).

Skeleton (Dong & Yang, ICLR 2020; ``xautodl/models/cell_infers/tiny_network.py``): a 3x3 conv
stem to ``C`` channels with BN; three stages of ``N`` cells at ``C``, ``2C``, ``4C`` channels,
separated by stride-2 residual blocks; BN + ReLU, global average pooling and a linear head.
Every cell edge of the supernet holds all five candidate operations; the architecture picks
one per edge. The extracted network keeps only the chosen operations and drops ``none`` edges.

Example:
    >>> supernet = nas.create_supernet("nb201", num_classes=10)
    >>> arch = supernet.space.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|"
    ...                             "avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|")
    >>> supernet.set_active(arch)
    >>> model = supernet.extract(arch)     # same function, only the chosen operations
"""

from __future__ import annotations

import copy
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace
from nas.supernet import Supernet
from search_spaces.nb201_space import EDGES, N_NODES, OPS, edge_name


class ReLUConvBN(nn.Sequential):
    """``nor_conv_kxk``: ReLU, a ``k x k`` convolution without bias, BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """``none``: an all-zero output of the input's shape (NAS-Bench-201's ``Zero``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class AvgPool3x3(nn.Module):
    """3x3 average pooling, stride 1, padding 1, padding not counted (NAS-Bench-201's op).

    Computed as a depthwise convolution with a box kernel divided by the count of valid
    pixels: the same function as ``nn.AvgPool2d(3, 1, 1, count_include_pad=False)``, but
    ~8x faster forward+backward on CPU, where torch's ``avg_pool2d`` kernels are slow.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        box = torch.ones(channels, 1, 3, 3, dtype=x.dtype, device=x.device)
        total = F.conv2d(x, box, padding=1, groups=channels)
        ones = torch.ones(1, 1, *x.shape[2:], dtype=x.dtype, device=x.device)
        count = F.conv2d(ones, box[:1], padding=1)
        return total / count


def make_op(name: str, channels: int) -> nn.Module:
    """A fresh cell operation ``name`` (one of :data:`OPS`) on ``channels`` channels."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1)
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    raise ConfigError(f"NAS-Bench-201 operation {name!r} is unknown; allowed: {list(OPS)}")


class ResNetBasicBlock(nn.Module):
    """The stride-2 reduction block between stages (NAS-Bench-201's ``ResNetBasicblock``)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def edge_key(to: int, frm: int) -> str:
    """Module name of the edge ``frm -> to`` (``n2_from0``: ModuleDict keys may not hold dots)."""
    return edge_name(to, frm).replace(".", "_")


class SuperCell(nn.Module):
    """A cell whose every edge holds all candidate operations; ``ops`` picks one per edge."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(
            {
                edge_key(to, frm): nn.ModuleDict({op: make_op(op, channels) for op in OPS})
                for to, frm in EDGES
            }
        )
        self.ops: dict[tuple[int, int], str] = {edge: OPS[-1] for edge in EDGES}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to in range(1, N_NODES):
            out = self.op(to, 0)(nodes[0])
            for frm in range(1, to):
                out = out + self.op(to, frm)(nodes[frm])
            nodes.append(out)
        return nodes[-1]

    def op(self, to: int, frm: int) -> nn.Module:
        """The active operation of edge ``frm -> to``."""
        return cast(nn.ModuleDict, self.edges[edge_key(to, frm)])[self.ops[(to, frm)]]


class Cell(nn.Module):
    """A static cell: only the chosen operations; a node without inputs is zero.

    Args:
        ops: operation name per edge ``(to, from)``; ``none`` edges are dropped.
        modules: the module per kept edge (copied from a :class:`SuperCell`).
    """

    def __init__(self, ops: dict[tuple[int, int], str], modules: dict[str, nn.Module]) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(modules)
        self.inputs: tuple[tuple[int, ...], ...] = tuple(
            tuple(frm for frm in range(to) if ops[(to, frm)] != "none")
            for to in range(1, N_NODES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to, inputs in enumerate(self.inputs, start=1):
            if not inputs:
                nodes.append(x.mul(0.0))
                continue
            out = self.edges[edge_key(to, inputs[0])](nodes[inputs[0]])
            for frm in inputs[1:]:
                out = out + self.edges[edge_key(to, frm)](nodes[frm])
            nodes.append(out)
        return nodes[-1]


class NB201Network(nn.Module):
    """The static NAS-Bench-201 network of one cell (what :meth:`NB201Supernet.extract` returns)."""

    def __init__(
        self, stem: nn.Module, cells: list[nn.Module], lastact: nn.Module, classifier: nn.Linear
    ) -> None:
        super().__init__()
        self.stem = stem
        self.cells = nn.ModuleList(cells)
        self.lastact = lastact
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(torch.flatten(x, 1))


class NB201Supernet(Supernet):
    """Weight-sharing supernet of the ``nb201`` space.

    Args:
        space: the NAS-Bench-201 space (its ``meta`` gives the default ``channels`` and
            ``cells_per_stage``: 16 and 5, the benchmark's CIFAR network).
        num_classes: classifier outputs (10 for CIFAR-10).
        channels: width of the first stage, overriding the benchmark's 16 (a cheaper proxy).
        cells_per_stage: cells per stage, overriding the benchmark's 5.
        resolution: the input size the network is trained and exported at (default 32; the
            network itself works at any size).

    Example:
        >>> supernet = NB201Supernet(nas.create_space("nb201"), num_classes=10)
        >>> arch = supernet.sample_active(np.random.default_rng(0))
        >>> logits = supernet(torch.randn(2, 3, 32, 32))
    """

    def __init__(
        self,
        space: SearchSpace,
        num_classes: int = 10,
        *,
        channels: int | None = None,
        cells_per_stage: int | None = None,
        resolution: int | None = None,
    ) -> None:
        given = {"channels": channels, "cells_per_stage": cells_per_stage, "resolution": resolution}
        options = {k: v for k, v in given.items() if v is not None}
        for name, value in options.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        super().__init__(space, num_classes, **options)
        channels = int(channels or space.meta.get("channels", 16))
        per_stage = int(cells_per_stage or space.meta.get("cells_per_stage", 5))
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        cells: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage > 0:
                cells.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            cells += [SuperCell(c) for _ in range(per_stage)]
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the active cell for images ``x`` of shape (batch, 3, H, W)."""
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(torch.flatten(x, 1))

    def _activate(self, arch: ArchConfig) -> None:
        ops = {(to, frm): str(arch[edge_name(to, frm)]) for to, frm in EDGES}
        for cell in self.cells:
            if isinstance(cell, SuperCell):
                cell.ops = dict(ops)

    def _build_static(self, arch: ArchConfig) -> nn.Module:
        cells: list[nn.Module] = []
        for cell in self.cells:
            if not isinstance(cell, SuperCell):
                cells.append(copy.deepcopy(cell))
                continue
            kept = {
                edge_key(to, frm): copy.deepcopy(cell.op(to, frm))
                for (to, frm), op in cell.ops.items()
                if op != "none"
            }
            cells.append(Cell(dict(cell.ops), kept))
        return NB201Network(
            copy.deepcopy(self.stem),
            cells,
            copy.deepcopy(self.lastact),
            copy.deepcopy(self.classifier),
        )
