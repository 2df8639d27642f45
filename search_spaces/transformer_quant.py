"""Quantization policy groups of the transformer supernets (families ``gpt``, ``llama``, ``vit``).

Weight-only (ONNX Runtime's ``MatMulNBits``, :mod:`nas.quantization.weight_only`), bits
{4, 8, 32}. Each transformer layer ``l<i>`` is one group (``granularity="block"``) made of its
linear layers: ``qkv`` and ``proj`` of the attention, ``fc1`` and ``fc2`` of the MLP (LLaMA:
``gate``, ``up``, ``down``); ``granularity="layer"`` gives each of them its own bits. The token
embedding, positions, class token, patch embedding (a conv), norms, the output head (tied to
the embedding in GPT-2) and the ViT classifier stay float32.

For latency lookup tables (:mod:`nas.quantization.layers`), the ``transformer_block`` spec of
layer ``l<i>`` carries its group's bits (:func:`block_bits`; under ``granularity="layer"`` a
composite tag with each linear's bits), every other spec stays float; a tagged block's module
quantizes the weights of its ``attn.qkv``, ``attn.proj`` and ``mlp.*`` linears
(:func:`block_weight_bits`), as :func:`nas.export_quantized` does in a whole subnet.

Example:
    >>> qspace = nas.quantized(nas.create_space("gpt_tiny"), bits=(4, 8, 32))
    >>> groups = quant_groups(supernet, arch)          # {"l0": [QuantLayer(l0.qkv), ...], ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.errors import ConfigError
from nas.quantization.layers import (
    UNIT_BITS,
    LayerGroups,
    SpecBits,
    bits_of,
    register_layer_groups,
    unit_bits,
)
from nas.quantization.space import QUANT_KEY, policy_of
from nas.quantization.space import bits_of as policy_bits
from nas.quantization.support import (
    FLOAT_BITS,
    QuantLayer,
    QuantSupport,
    register_quant_support,
)
from nas.space import ArchConfig, SearchSpace
from search_spaces.transformer_space import TransformerPlan

MLP_LAYERS = {"gelu": ("fc1", "fc2"), "gelu_tanh": ("fc1", "fc2"), "swiglu": ("gate", "up", "down")}
ATTENTION_LAYERS = ("qkv", "proj")


def layer_names(mlp: str) -> tuple[str, ...]:
    """The linear layers of one block of a family whose MLP is ``mlp``."""
    return ATTENTION_LAYERS + MLP_LAYERS[mlp]


def quant_groups(supernet: Any, arch: ArchConfig) -> dict[str, list[QuantLayer]]:
    """Layer group ``l<i>`` -> its linear layers in ``arch``'s active blocks (live modules)."""
    from search_spaces.transformer_stack import blocks_of

    blocks = blocks_of(supernet.blocks, active_only=False)[: int(arch["depth"])]
    out: dict[str, list[QuantLayer]] = {}
    for i, block in enumerate(blocks):
        layers = []
        for part, names in (("attn", ATTENTION_LAYERS), ("mlp", MLP_LAYERS[supernet.plan.mlp])):
            for name in names:
                layers.append(QuantLayer(
                    name=f"l{i}.{name}", conv=getattr(getattr(block, part), name),
                    input_at=None, output_at=None, weight_name=f"blocks.{i}.{part}.{name}.weight"))
        out[f"l{i}"] = layers
    return out


def linear_shapes(space: SearchSpace, arch: ArchConfig) -> dict[str, tuple[int, int]]:
    """Linear layer (``"l0.qkv"``) -> ``(K inputs, N outputs)`` of ``arch``'s active blocks."""
    plan = TransformerPlan.of(space)
    shape = plan.shape(arch)
    width, per, head = shape.width, plan.heads_per_group, plan.head_dim
    out: dict[str, tuple[int, int]] = {}
    for i, layer in enumerate(shape.layers):
        out[f"l{i}.qkv"] = (width, layer.groups * (per + 2) * head)
        out[f"l{i}.proj"] = (layer.groups * per * head, width)
        for name in MLP_LAYERS[plan.mlp]:
            out[f"l{i}.{name}"] = ((layer.hidden, width) if name in ("fc2", "down")
                                   else (width, layer.hidden))
    return out


def group_weights(space: SearchSpace, arch: ArchConfig) -> dict[str, int]:
    """Layer group ``l<i>`` -> the number of linear weights it quantizes."""
    out: dict[str, int] = {}
    for name, (k, n) in linear_shapes(space, arch).items():
        group = name.split(".")[0]
        out[group] = out.get(group, 0) + k * n
    return out


BLOCK_KIND = "transformer_block"


def block_bits(space: SearchSpace, arch: ArchConfig, specs: Sequence[Any]) -> list[SpecBits]:
    """The bits of each of ``arch``'s layer specs: the ``i``-th ``transformer_block`` spec has
    layer ``l<i>``'s (``granularity="layer"``: ``{"qkv": 4, "proj": 32, ...}``), the rest 32."""
    policy = policy_of(space, arch)
    per_linear = space.meta[QUANT_KEY]["granularity"] == "layer"
    out: list[SpecBits] = []
    i = 0
    for spec in specs:
        if spec.kind != BLOCK_KIND:
            out.append(FLOAT_BITS)
            continue
        if per_linear:
            out.append({name: policy_bits(policy, f"l{i}.{name}")
                        for name in layer_names(str(spec.act))})
        else:
            out.append(policy.get(f"l{i}", FLOAT_BITS))
        i += 1
    return out


def _weight_name(linear: str) -> str:
    part = "attn" if linear in ATTENTION_LAYERS else "mlp"
    return f"{part}.{linear}.weight"


def block_weight_bits(spec: Any) -> dict[str, int]:
    """Weight of a tagged ``transformer_block`` spec's module (``"attn.qkv.weight"``) -> its
    bits, for the linears the tag quantizes (below 32 bits)."""
    if spec.kind != BLOCK_KIND:
        raise ConfigError(f"{spec.key!r} is not a {BLOCK_KIND} spec: only blocks are quantized")
    names = layer_names(str(spec.act))
    units = unit_bits(spec) if spec.get(UNIT_BITS, "") else dict.fromkeys(names, bits_of(spec))
    return {_weight_name(n): int(units[n]) for n in names if int(units[n]) < FLOAT_BITS}


def block_weights(spec: Any) -> list[str]:
    """The weights of a tagged ``transformer_block`` spec's module that it quantizes."""
    return list(block_weight_bits(spec))


for _family, _mlp in (("gpt", "gelu_tanh"), ("vit", "gelu"), ("llama", "swiglu")):
    register_quant_support(_family, QuantSupport(
        bits=(4, 8, 32), weights=group_weights, scheme="weight_only",
        granularities=("block", "layer"), layer_names=layer_names(_mlp), shapes=linear_shapes,
        groups=quant_groups))
    register_layer_groups(_family, LayerGroups(bits=block_bits, weights=block_weights,
                                               weight_bits=block_weight_bits))
