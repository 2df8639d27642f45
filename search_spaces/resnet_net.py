"""The Once-for-All ResNet50-D supernet (family ``"resnet"``), as published.

Input stem: 3x3 conv stride 2 to the middle stem width, a residual 3x3 conv at that width
(skipped when ``stem.depth`` is 2), 3x3 conv to the stem width, each with BN and ReLU; 3x3 max
pooling stride 2; four stages of :class:`~nas.elastic.bottleneck.ElasticBottleneck` blocks at
widths ``make_divisible(w * mult, 8)`` for ``w`` in 256, 512, 1024, 2048 with strides 1, 2, 2,
2, the first ``depth`` blocks of each stage active; global average pooling; a linear head.
Reference: ``OFAResNets`` in github.com/mit-han-lab/once-for-all (MIT). Parameter names follow
OFA's (``input_stem``, ``blocks``, ``classifier``) up to its wrapper levels.

Example:
    >>> supernet = nas.create_supernet("ofa_resnet50", num_classes=1000)
    >>> arch = supernet.space.from_ofa({"d": [2, 0, 1, 2, 0], "e": [0.25] * 18,
    ...                                  "w": [2, 2, 1, 1, 0, 2], "r": 224})
    >>> model = supernet.extract(arch)         # a plain ResNet, weights copied
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from nas.elastic.bottleneck import ElasticBottleneck, ElasticConvBN
from nas.elastic.linear import ElasticLinear
from nas.layers import make_divisible
from nas.space import ArchConfig, SearchSpace
from nas.supernet import Supernet


def stem_widths(space: SearchSpace) -> tuple[dict[float, int], dict[float, int]]:
    """``(mid, stem)``: width multiplier → channels of the middle and last stem convs."""
    base = int(space.meta.get("stem_width", 64))
    stem = {float(m): make_divisible(base * float(m), 8) for m in space["stem.width"].values}
    mid = {
        float(m): make_divisible(make_divisible(base * float(m), 8) // 2, 8)
        for m in space["stem.mid_width"].values
    }
    return mid, stem


def stage_widths(space: SearchSpace, stage: int) -> dict[float, int]:
    """Width multiplier → channels of stage ``stage`` (1-based)."""
    base = int(space.meta["stage_widths"][stage - 1])
    return {float(m): make_divisible(base * float(m), 8) for m in space[f"s{stage}.width"].values}


def from_ofa_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an OFA ``OFAResNets`` state dict (e.g. a published checkpoint) to this supernet's.

    OFA wraps each layer once more (``conv.conv``, ``bn.bn``, ``linear.linear``); the tensors
    and their order are the same.

    Example:
        >>> supernet.load_state_dict(from_ofa_state_dict(checkpoint["state_dict"]))
    """
    out = {}
    for key, value in state.items():
        new = key.replace("classifier.linear.linear.", "classifier.").replace(".bn.bn.", ".bn.")
        head, sep, tail = new.rpartition("conv.conv.weight")
        out[head + "conv.weight" + tail if sep else new] = value
    return out


class ResidualLayer(nn.Module):
    """``x + layer(x)``: the skippable stem block (OFA's ``ResidualBlock`` with identity)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


class ResNet(nn.Module):
    """A static ResNet-D (what :meth:`OFAResNetSupernet.extract` returns)."""

    def __init__(
        self, input_stem: list[nn.Module], blocks: list[nn.Module], classifier: nn.Linear
    ) -> None:
        super().__init__()
        self.input_stem = nn.Sequential(*input_stem)
        self.max_pooling = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.blocks = nn.Sequential(*blocks)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.max_pooling(self.input_stem(x)))
        return self.classifier(x.mean((2, 3)))


class OFAResNetSupernet(Supernet):
    """Weight-sharing supernet of the ``ofa_resnet50`` space.

    Args:
        space: the OFA-ResNet50 space (``meta`` gives stem and stage widths and strides).
        num_classes: classifier outputs.

    Example:
        >>> supernet = OFAResNetSupernet(nas.create_space("ofa_resnet50"), num_classes=10)
        >>> arch = supernet.sample_active(np.random.default_rng(0))
        >>> logits = supernet(torch.randn(1, 3, 128, 128))
    """

    def __init__(self, space: SearchSpace, num_classes: int = 1000) -> None:
        super().__init__(space, num_classes)
        mid, stem = stem_widths(space)
        max_mid, max_stem = max(mid.values()), max(stem.values())
        # typed view of the stem's elastic layers (a tuple registers nothing)
        self._stem = (
            ElasticConvBN(3, max_mid, 3, 2, act=True),
            ElasticConvBN(max_mid, max_mid, 3, 1, act=True),
            ElasticConvBN(max_mid, max_stem, 3, 1, act=True),
        )
        self.input_stem = nn.ModuleList(
            [self._stem[0], ResidualLayer(self._stem[1]), self._stem[2]]
        )
        self.max_pooling = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        expands = [float(e) for e in space["s1.b0.expand"].values]
        blocks: list[ElasticBottleneck] = []
        self.stage_blocks: list[list[int]] = []
        in_choices = sorted(stem.values())
        for s, stride in enumerate(space.meta["strides"], start=1):
            out_choices = sorted(stage_widths(space, s).values())
            n_blocks = max(int(d) for d in space[f"s{s}.depth"].values)
            self.stage_blocks.append(list(range(len(blocks), len(blocks) + n_blocks)))
            for b in range(n_blocks):
                blocks.append(
                    ElasticBottleneck(
                        in_choices,
                        out_choices,
                        expand_ratios=expands,
                        stride=int(stride) if b == 0 else 1,
                    )
                )
                in_choices = out_choices
        self.blocks = nn.ModuleList(blocks)
        self._blocks = tuple(blocks)  # typed view (a tuple registers nothing)
        self.classifier = ElasticLinear(in_choices[-1], num_classes)
        self._skip_stem_block = False
        self._active_blocks: list[int] = [i for ids in self.stage_blocks for i in ids]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the active subnet for images ``x`` of shape (batch, 3, H, W)."""
        for i, layer in enumerate(self.input_stem):
            if not (i == 1 and self._skip_stem_block):
                x = layer(x)
        x = self.max_pooling(x)
        for i in self._active_blocks:
            x = self._blocks[i](x)
        return self.classifier(x.mean((2, 3)))

    def _activate(self, arch: ArchConfig) -> None:
        mid_widths, stem_w = stem_widths(self.space)
        mid = mid_widths[float(arch["stem.mid_width"])]
        width = stem_w[float(arch["stem.width"])]
        self._stem[0].set_active(3, mid)
        self._stem[1].set_active(mid, mid)
        self._stem[2].set_active(mid, width)
        self._skip_stem_block = int(arch["stem.depth"]) < 3
        active: list[int] = []
        for s, ids in enumerate(self.stage_blocks, start=1):
            out = stage_widths(self.space, s)[float(arch[f"s{s}.width"])]
            depth = int(arch[f"s{s}.depth"])
            for b, i in enumerate(ids):
                # inactive blocks get a consistent setting too, so a later depth change works
                self._blocks[i].set_active(
                    in_channels=width if b < depth else out,
                    out_channels=out,
                    expand_ratio=float(arch[f"s{s}.b{b}.expand"]),
                )
                if b < depth:
                    active.append(i)
                    width = out
        self._active_blocks = active
        self.classifier.active_in_features = width

    def _build_static(self, arch: ArchConfig) -> nn.Module:
        stem: list[nn.Module] = [self._stem[0].export()]
        if not self._skip_stem_block:
            stem.append(ResidualLayer(self._stem[1].export()))
        stem.append(self._stem[2].export())
        blocks: list[nn.Module] = [self._blocks[i].export() for i in self._active_blocks]
        return ResNet(stem, blocks, self.classifier.export())
