"""Quantization policy groups of the MobileNetV3-family supernet (``tiny``, ``ofa_mbv3_*``).

Each elastic block ``s<i>.b<j>`` is one group: its expand, depthwise and project
convolutions (weights per channel, inputs and BN-folded outputs per tensor), all at the
block's bits (``granularity="block"`` or ``"stage"``) or each at its own
(``granularity="layer"``: ``s1.b0.expand``, ``s1.b0.depthwise``, ``s1.b0.project``). The stem,
the fixed first block, the head convolutions, the classifier and the squeeze-excite convs stay
float32. For latency lookup tables, each block's ``mbconv`` spec is the group's layer
(:func:`block_groups`; a per-layer policy tags it with each conv's bits, a composite tag), and
its module's expand, depthwise and project conv weights are what a quantized spec quantizes
(:func:`mbconv_weight_bits`).

Example:
    >>> groups = supernet.quant_groups(arch)      # {"s1.b0": [QuantLayer, ...], ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.quantization.layers import (
    UNIT_BITS,
    LayerGroups,
    SpecBits,
    bits_of,
    register_layer_groups,
    unit_bits,
)
from nas.quantization.space import QUANT_KEY, policy_of
from nas.quantization.support import (
    FLOAT_BITS,
    QuantLayer,
    QuantSupport,
    register_quant_support,
)
from nas.space import ArchConfig, SearchSpace

FIRST_STATIC_BLOCK = 1  # blocks.0 of the extracted net is the fixed first block


def quant_groups(supernet: Any, arch: ArchConfig) -> dict[str, list[QuantLayer]]:
    """Block group -> the quantizable layers of ``arch``'s active blocks (live modules)."""
    values = arch.to_dict()
    out: dict[str, list[QuantLayer]] = {}
    index = FIRST_STATIC_BLOCK
    for i, st in enumerate(supernet.plan.stages):
        blocks = supernet.stage_blocks(i)
        for b in range(int(values[f"{st.name}.depth"])):
            block, group, prefix = blocks[b], f"{st.name}.b{b}", f"blocks.{index}"
            out[group] = [
                QuantLayer(name=f"{group}.expand", conv=block.expand_conv, input_at=block,
                           output_at=block.expand_bn, weight_name=f"{prefix}.expand.conv.weight"),
                QuantLayer(name=f"{group}.depthwise", conv=block.depthwise_conv,
                           input_at=block.depthwise_conv, output_at=block.depthwise_bn,
                           weight_name=f"{prefix}.depthwise.conv.weight"),
                QuantLayer(name=f"{group}.project", conv=block.project_conv,
                           input_at=block.project_conv, output_at=block.project_bn,
                           weight_name=f"{prefix}.project.conv.weight"),
            ]
            index += 1
    return out


CONVS = ("expand", "depthwise", "project")  # a block's convs, in order; granularity "layer"


def group_weights(space: SearchSpace, arch: ArchConfig) -> dict[str, int]:
    """Policy unit -> the number of conv weights it quantizes: per block group (``s1.b0``),
    or under ``granularity="layer"`` per conv (``s1.b0.expand``, ...)."""
    from nas.registry import REGISTRY

    layers = REGISTRY.entry(space.name).layers
    assert layers is not None  # the MobileNetV3 spaces register search_spaces' layer_specs
    specs = iter(layers(space, arch, 1)[2:])  # after the stem and the first block
    values, per_conv = arch.to_dict(), _per_conv(space)
    out = {}
    for stage in _stages(space):
        for b in range(int(values[f"{stage}.depth"])):
            s = next(specs)
            mid = int(s.mid_channels or 0)
            expand = s.in_channels * mid if mid != s.in_channels else 0
            convs = dict(zip(CONVS, (expand, mid * int(s.kernel) ** 2, mid * s.out_channels),
                             strict=True))
            if per_conv:
                out.update({f"{stage}.b{b}.{conv}": n for conv, n in convs.items()})
            else:
                out[f"{stage}.b{b}"] = sum(convs.values())
    return out


def _per_conv(space: SearchSpace) -> bool:
    """Whether ``space``'s policy gives each conv its own bits (``granularity="layer"``)."""
    return (space.meta.get(QUANT_KEY) or {}).get("granularity") == "layer"


def _stages(space: SearchSpace) -> list[str]:
    return [n.removesuffix(".depth") for n in space.names if n.endswith(".depth")]


def block_groups(space: SearchSpace, arch: ArchConfig, specs: Sequence[Any]) -> list[str | None]:
    """The policy group of each of ``arch``'s layer specs: ``s<i>.b<j>`` for the elastic
    blocks' ``mbconv`` specs (after the stem and the first block), ``None`` for the rest."""
    values = arch.to_dict()
    blocks = [f"{stage}.b{b}" for stage in _stages(space)
              for b in range(int(values[f"{stage}.depth"]))]
    first = 1 + FIRST_STATIC_BLOCK  # the stem conv, then the fixed first block
    return [None] * first + blocks + [None] * (len(specs) - first - len(blocks))


def spec_bits(space: SearchSpace, arch: ArchConfig, specs: Sequence[Any]) -> list[SpecBits]:
    """The bits of each of ``arch``'s layer specs: its block's under the policy (a per-layer
    policy: ``{"expand": 8, "depthwise": 32, "project": 8}``), 32 outside the elastic
    blocks."""
    policy = policy_of(space, arch)
    per_conv = _per_conv(space)
    out: list[SpecBits] = []
    for group in block_groups(space, arch, specs):
        if group is None:
            out.append(FLOAT_BITS)
        elif per_conv:
            out.append({conv: policy.get(f"{group}.{conv}", FLOAT_BITS) for conv in CONVS})
        else:
            out.append(policy.get(group, FLOAT_BITS))
    return out


def mbconv_weight_bits(spec: Any) -> dict[str, int]:
    """Conv weight of a tagged ``mbconv`` spec's module (``"depthwise.conv.weight"``) -> its
    bits, for the convs the tag quantizes (below 32 bits; a block without an expand conv has
    none to quantize)."""
    units = unit_bits(spec) if spec.get(UNIT_BITS, "") else dict.fromkeys(CONVS, bits_of(spec))
    has_expand = spec.mid_channels != spec.in_channels
    return {f"{conv}.conv.weight": int(units[conv]) for conv in CONVS
            if int(units[conv]) < FLOAT_BITS and (conv != "expand" or has_expand)}


def mbconv_weights(spec: Any) -> list[str]:
    """The conv weights of an ``mbconv`` spec's module that its precision quantizes."""
    return list(mbconv_weight_bits(spec))


register_quant_support("mobilenetv3", QuantSupport(
    bits=(8, 32), weights=group_weights, granularities=("block", "stage", "layer"),
    layer_names=CONVS))
register_layer_groups("mobilenetv3", LayerGroups(bits=spec_bits, weights=mbconv_weights,
                                                 weight_bits=mbconv_weight_bits))
