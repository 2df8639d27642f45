"""The MobileNetV3-family supernet (family ``"mobilenetv3"``), built from ``space.meta``.

Exactly Once-for-All's ``OFAMobileNetV3`` (github.com/mit-han-lab/once-for-all, MIT): a 3x3
stride-2 stem (BN + h-swish), a fixed inverted-residual block (expand 1, kernel 3, ReLU,
identity residual), elastic stages of :class:`nas.elastic.ElasticMBConv` blocks (kernel,
expand ratio and depth chosen per arch), a 1x1 final-expand conv (BN + h-swish), global average
pooling, a 1x1 feature-mix conv (no BN, no bias, h-swish), dropout and a linear classifier.
Widths are ``make_divisible(width * width_mult, 8)``.

The space's dimensions are ``s<i>.depth``, ``s<i>.b<j>.kernel``, ``s<i>.b<j>.expand`` and
``resolution``; meta holds ``width_mult``, ``stem_width``, ``first_block_width``,
``stage_widths``, ``strides``, ``activations``, ``squeeze_excite``, ``final_expand_width`` and
``last_channel``.

Example:
    >>> supernet = nas.create_supernet("ofa_mbv3_w1.0", num_classes=1000)
    >>> arch = supernet.sample_active(np.random.default_rng(0))
    >>> model = supernet.extract(arch)                 # MobileNetV3Net, plain torch
    >>> specs = layer_specs(supernet.space, arch, 1000)  # for counting and latency tables
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from nas.blocks import ConvBNAct, GlobalAvgPool, MBConv
from nas.elastic import ElasticMBConv, mid_channels
from nas.errors import ConfigError
from nas.layers import LayerSpec, conv_output_size, make_divisible
from nas.space import ArchConfig, SearchSpace
from nas.supernet import Supernet


@dataclass(frozen=True, kw_only=True)
class _Stage:
    name: str
    width: int
    stride: int
    act: str
    se: bool
    max_depth: int
    kernels: tuple[int, ...]
    expands: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class _Plan:
    """The fixed skeleton of a MobileNetV3 space, read from ``space.meta``."""

    stem: int
    first_block: int
    first_block_act: str
    stages: tuple[_Stage, ...]
    final_expand: int
    last_channel: int

    @classmethod
    def of(cls, space: SearchSpace) -> _Plan:
        plan = _PLANS.get(space)
        if plan is None:
            plan = _PLANS[space] = cls._read(space)
        return plan

    @classmethod
    def _read(cls, space: SearchSpace) -> _Plan:
        meta = space.meta
        if meta.get("family") != "mobilenetv3":
            raise ConfigError(
                f"space {space.name!r} has family {meta.get('family')!r}, expected 'mobilenetv3'"
            )
        w = float(meta["width_mult"])

        def width(base: float) -> int:
            return make_divisible(base * w, 8)

        stages = []
        for i, base in enumerate(meta["stage_widths"]):
            name = f"s{i + 1}"
            stages.append(
                _Stage(
                    name=name,
                    width=width(base),
                    stride=int(meta["strides"][i]),
                    act=str(meta["activations"][i]),
                    se=bool(meta["squeeze_excite"][i]),
                    max_depth=int(max(space[f"{name}.depth"].values)),  # type: ignore[call-overload]
                    kernels=tuple(int(k) for k in space[f"{name}.b0.kernel"].values),
                    expands=tuple(float(e) for e in space[f"{name}.b0.expand"].values),
                )
            )
        return cls(
            stem=width(meta["stem_width"]),
            first_block=width(meta["first_block_width"]),
            first_block_act=str(meta.get("first_block_act", "relu")),
            stages=tuple(stages),
            final_expand=width(meta["final_expand_width"]),
            last_channel=width(meta["last_channel"]),
        )


# a cache (spaces are immutable in practice): layer_specs runs per arch, 10,000s of times
_PLANS: weakref.WeakKeyDictionary[SearchSpace, _Plan] = weakref.WeakKeyDictionary()


class MobileNetV3Net(nn.Module):
    """A static MobileNetV3 subnet (what :meth:`MobileNetV3Supernet.extract` returns)."""

    blocks: nn.Sequential

    def __init__(
        self,
        stem: nn.Module,
        blocks: list[nn.Module],
        final_expand: nn.Module,
        feature_mix: nn.Module,
        classifier: nn.Linear,
        dropout: float,
    ) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.final_expand = final_expand
        self.pool = GlobalAvgPool()
        self.feature_mix = feature_mix
        self.dropout = nn.Dropout(dropout)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        x = self.feature_mix(self.pool(self.final_expand(x)))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


class MobileNetV3Supernet(Supernet):
    """Once-for-All MobileNetV3 supernet over a ``mobilenetv3``-family space.

    Args:
        space: the search space (its ``meta`` gives the skeleton).
        num_classes: classifier outputs.
        dropout: dropout before the classifier (OFA: 0.1).
        bn_momentum: BatchNorm momentum (OFA: 0.1).
        bn_eps: BatchNorm epsilon (OFA: 1e-5).
    """

    def __init__(
        self,
        space: SearchSpace,
        num_classes: int = 1000,
        *,
        dropout: float = 0.1,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__(space, num_classes)
        plan = _Plan.of(space)
        self.plan = plan
        self.stem = ConvBNAct(3, plan.stem, 3, 2, act="h_swish")
        self.first_block = MBConv(
            plan.stem,
            plan.first_block,
            mid_channels=plan.stem,
            kernel_size=3,
            act=plan.first_block_act,
            expand=False,
        )
        stages = []
        channels = plan.first_block
        for st in plan.stages:
            blocks = []
            for b in range(st.max_depth):
                blocks.append(
                    ElasticMBConv(
                        channels,
                        st.width,
                        kernel_sizes=st.kernels,
                        expand_ratios=st.expands,
                        stride=st.stride if b == 0 else 1,
                        act=st.act,
                        se=st.se,
                    )
                )
                channels = st.width
            stages.append(nn.ModuleList(blocks))
        self.stages = nn.ModuleList(stages)
        self.final_expand = ConvBNAct(channels, plan.final_expand, 1, act="h_swish")
        self.pool = GlobalAvgPool()
        self.feature_mix = ConvBNAct(
            plan.final_expand, plan.last_channel, 1, act="h_swish", bn=False
        )
        self.dropout_rate = dropout
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(plan.last_channel, num_classes)
        self._depths = [st.max_depth for st in plan.stages]
        self._init_weights()
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum, m.eps = bn_momentum, bn_eps

    def _init_weights(self) -> None:
        # OFA's 'he_fout': conv ~ N(0, sqrt(2 / (k*k*out))), BN 1/0, linear U(±1/sqrt(in))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def stage_blocks(self, stage: int) -> list[ElasticMBConv]:
        """All elastic blocks of stage ``stage`` (0-based), active or not."""
        return cast(list[ElasticMBConv], list(cast(nn.ModuleList, self.stages[stage])))

    def _activate(self, arch: ArchConfig) -> None:
        values = arch.to_dict()
        for i, st in enumerate(self.plan.stages):
            depth = int(values[f"{st.name}.depth"])
            self._depths[i] = depth
            blocks = self.stage_blocks(i)
            for b in range(depth):
                blocks[b].set_active(
                    kernel_size=int(values[f"{st.name}.b{b}.kernel"]),
                    expand_ratio=float(values[f"{st.name}.b{b}.expand"]),
                )

    def _active_blocks(self) -> list[ElasticMBConv]:
        out = []
        for i, depth in enumerate(self._depths):
            out += self.stage_blocks(i)[:depth]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first_block(self.stem(x))
        for block in self._active_blocks():
            x = block(x)
        x = self.feature_mix(self.pool(self.final_expand(x)))
        return self.classifier(self.dropout(torch.flatten(x, 1)))

    def _build_static(self, arch: ArchConfig) -> nn.Module:
        blocks: list[nn.Module] = [copy.deepcopy(self.first_block)]
        blocks += [block.export() for block in self._active_blocks()]
        return MobileNetV3Net(
            copy.deepcopy(self.stem),
            blocks,
            copy.deepcopy(self.final_expand),
            copy.deepcopy(self.feature_mix),
            copy.deepcopy(self.classifier),
            self.dropout_rate,
        )

    def quant_groups(self, arch: ArchConfig) -> dict[str, Any]:
        """Policy group (``s1.b0``) -> its quantizable layers in ``arch`` (see
        :mod:`search_spaces.mobilenet_v3_quant`)."""
        from search_spaces.mobilenet_v3_quant import quant_groups

        return quant_groups(self, arch)

    @torch.no_grad()
    def reorganize_channels(self) -> None:
        """Sort every elastic block's expanded channels by importance (OFA's re-organisation).

        The largest subnet computes the same function afterwards; smaller expand ratios then
        keep each block's most important channels. Call it between progressive-shrinking
        phases (before training smaller expand ratios).
        """
        for i in range(len(self.stages)):
            for block in self.stage_blocks(i):
                block.reorganize_channels()


def layer_specs(space: SearchSpace, arch: ArchConfig, num_classes: int = 1000) -> list[LayerSpec]:
    """The layers of ``arch``'s subnet, in order, at the arch's resolution.

    Kinds: ``conv`` (stem, final expand, feature mix), ``mbconv`` (every inverted-residual
    block; ``mid == in`` means no expand conv), ``pool`` (global average) and ``linear``.

    Example:
        >>> sum(s.params() for s in layer_specs(space, space.largest(), 1000))
    """
    plan = _Plan.of(space)
    values: Mapping[str, Any] = arch.to_dict()
    hw = int(values["resolution"])
    specs = [
        LayerSpec(
            kind="conv", in_channels=3, out_channels=plan.stem, kernel=3, stride=2,
            input_hw=hw, act="h_swish", bn=True,
        )
    ]
    hw = conv_output_size(hw, 3, 2)
    specs.append(
        LayerSpec(
            kind="mbconv", in_channels=plan.stem, out_channels=plan.first_block,
            mid_channels=plan.stem, kernel=3, stride=1, input_hw=hw, act=plan.first_block_act,
        )
    )
    channels = plan.first_block
    for st in plan.stages:
        for b in range(int(values[f"{st.name}.depth"])):
            stride = st.stride if b == 0 else 1
            kernel = int(values[f"{st.name}.b{b}.kernel"])
            mid = mid_channels(channels, float(values[f"{st.name}.b{b}.expand"]))
            specs.append(
                LayerSpec(
                    kind="mbconv", in_channels=channels, out_channels=st.width,
                    mid_channels=mid, kernel=kernel, stride=stride, input_hw=hw, act=st.act,
                    se=st.se,
                )
            )
            hw = conv_output_size(hw, kernel, stride)
            channels = st.width
    specs += [
        LayerSpec(
            kind="conv", in_channels=channels, out_channels=plan.final_expand, kernel=1,
            input_hw=hw, act="h_swish", bn=True,
        ),
        LayerSpec(kind="pool", in_channels=plan.final_expand, out_channels=plan.final_expand,
                  input_hw=hw),
        LayerSpec(
            kind="conv", in_channels=plan.final_expand, out_channels=plan.last_channel,
            kernel=1, input_hw=1, act="h_swish",
        ),
        LayerSpec(kind="linear", in_channels=plan.last_channel, out_channels=num_classes,
                  bias=True),
    ]
    return specs
