"""Quantization policy groups of the MobileNetV3-family supernet (``tiny``, ``ofa_mbv3_*``).

Each elastic block ``s<i>.b<j>`` is one group: its expand, depthwise and project
convolutions (weights per channel, inputs and BN-folded outputs per tensor). The stem, the
fixed first block, the head convolutions, the classifier and the squeeze-excite convs stay
float32.

Example:
    >>> groups = supernet.quant_groups(arch)      # {"s1.b0": [QuantLayer, ...], ...}
"""

from __future__ import annotations

from typing import Any

from nas.quantization.support import QuantLayer, QuantSupport, register_quant_support
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


def group_weights(space: SearchSpace, arch: ArchConfig) -> dict[str, int]:
    """Block group -> the number of conv weights it quantizes (expand, depthwise, project)."""
    from nas.registry import REGISTRY

    layers = REGISTRY.entry(space.name).layers
    assert layers is not None  # the MobileNetV3 spaces register search_spaces' layer_specs
    specs = iter(layers(space, arch, 1)[2:])  # after the stem and the first block
    values = arch.to_dict()
    out = {}
    for stage in [n.removesuffix(".depth") for n in space.names if n.endswith(".depth")]:
        for b in range(int(values[f"{stage}.depth"])):
            s = next(specs)
            mid = int(s.mid_channels or 0)
            out[f"{stage}.b{b}"] = (s.in_channels * mid + mid * int(s.kernel) ** 2
                                    + mid * s.out_channels)
    return out


register_quant_support("mobilenetv3", QuantSupport(bits=(8, 32), weights=group_weights))
