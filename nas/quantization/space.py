"""A quantization policy as search dimensions: :func:`quantized` adds ``<group>.bits``.

``granularity="block"`` adds ``s1.b0.bits``, ... (conditional exactly like the block's other
dimensions: it vanishes with the block); ``"stage"`` adds one ``s1.bits`` per stage;
``"layer"`` one per convolution of the block (``s1.b0.expand.bits``, ``s1.b0.depthwise.bits``,
``s1.b0.project.bits``; they vanish with the block too). The new
space is named ``<base>+q<bits joined by '-'><b|s|l>[f]`` (``tiny+q8-32b``), registered with
the base space's supernet and layers, and records a recipe in its meta, so a run directory or
export made with it reopens in a fresh process (:mod:`nas.space_recipes`); the registry also
builds such a name on first lookup (``nas.create_space("tiny+q8-32b")``).

Convolutional spaces (scheme ``"static"``): weights use ONNX Runtime's ``reduce_range`` by
default (int8 storage, values in ``[-64, 64]``): its int8 kernels on x86 CPUs without VNNI
saturate 16-bit sums at the full range, so the deployed model would not compute what the
supernet simulates. ``reduce_range=False`` (names ending in ``f``) keeps the full
``[-127, 127]`` for CPUs with VNNI.

Transformer spaces (scheme ``"weight_only"``, families ``gpt``, ``llama``, ``vit``): bits
``(4, 8, 32)``; ``granularity="block"`` adds one ``l<i>.bits`` per transformer layer (it
vanishes with the layer, like ``l<i>.heads``), ``"layer"`` one per linear layer
(``l<i>.qkv.bits``, ``l<i>.proj.bits``, ``l<i>.fc1.bits``, ``l<i>.fc2.bits``; LLaMA: gate, up,
down). Only those linear layers' weights are quantized (:mod:`.weight_only`); their biases,
the token embedding, positions, class token, patch embedding (a conv), norms and the output
head / classifier (GPT-2's is tied to the embedding) stay float32, and :func:`size_bytes`
counts them at 4 bytes per parameter.

Example:
    >>> qspace = nas.quantized(nas.create_space("tiny"), granularity="block", bits=(8, 32))
    >>> arch = qspace.sample(rng); policy_of(qspace, arch)      # {"s1.b0": 8, "s1.b1": 32, ...}
    >>> gspace = nas.quantized(nas.create_space("gpt_tiny"), bits=(4, 8, 32))  # gpt_tiny+q4-8-32b
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from nas.errors import ConfigError
from nas.quantization.support import FLOAT_BITS, quant_support
from nas.registry import REGISTRY
from nas.space import ArchConfig, Choice, SearchSpace, choice

QUANT_KEY = "quantization"
GRANULARITIES = {"block": "b", "stage": "s", "layer": "l"}
_BLOCK = re.compile(r"^(?P<stage>[^.]+)\.(?P<block>b\d+)\.[^.]+$")
_LAYER = re.compile(r"^(?P<layer>l\d+)\.[^.]+$")  # a transformer layer's dims: l3.heads
_NAME = re.compile(r"^(?P<base>.+)\+q(?P<bits>\d+(?:-\d+)*)(?P<g>[bsl])(?P<full>f?)$")


def quantized(
    space: SearchSpace, *, granularity: str = "block", bits: Sequence[int] = (8, 32),
    reduce_range: bool = True,
) -> SearchSpace:
    """``space`` with a ``bits`` dimension per block, stage or layer (see the module docstring).

    Raises:
        ConfigError: the space's layers cannot be quantized, ``granularity`` is unknown or not
            offered by the space's family, or a value of ``bits`` is not offered.
    """
    if QUANT_KEY in space.meta:
        raise ConfigError(f"space {space.name!r} is quantized already")
    if granularity not in GRANULARITIES:
        raise ConfigError(f"granularity must be one of {sorted(GRANULARITIES)}, "
                          f"got {granularity!r}")
    support = quant_support(space)
    if granularity not in support.granularities:
        raise ConfigError(f"granularity {granularity!r} is not offered by family "
                          f"{space.meta.get('family')!r} (space {space.name!r}): allowed are "
                          f"{list(support.granularities)}")
    values = tuple(sorted({int(b) for b in bits}))  # ascending: largest() is float32
    bad = [b for b in bits if b not in support.bits]
    if not values or bad:
        hint = ("; 4 bits is weight-only, for the linear layers of transformer spaces "
                "(convolutions have no int4)" if 4 in bad and support.scheme == "static" else "")
        raise ConfigError(f"bits {tuple(bits)} not offered by space {space.name!r}: allowed "
                          f"bits are {list(support.bits)} (32 = float){hint}")
    if support.scheme == "weight_only" and not reduce_range:
        raise ConfigError(f"reduce_range=False is for int8 convolutions; space {space.name!r} "
                          "is quantized weight-only (MatMulNBits)")
    dims = _with_bits(space, granularity, values, support.layer_names)
    name = (f"{space.name}+q{'-'.join(map(str, values))}{GRANULARITIES[granularity]}"
            f"{'' if reduce_range else 'f'}")
    from nas.registry import register_space, space_module

    base = REGISTRY.entry(space.name)
    meta = {
        **space.meta,
        QUANT_KEY: _policy_info(space.name, support.scheme, granularity, values, reduce_range),
        "recipe": {"module": __name__, "function": "quantized_by_name",
                   "args": {"base": space.name, "base_module": space_module(space.name),
                            "granularity": granularity, "bits": list(values),
                            "reduce_range": bool(reduce_range)}},
    }
    qspace = SearchSpace(name, dims, meta)
    from nas.quantization.layers import with_precision

    register_space(name, lambda: _rebuilt(space.name, granularity, values, reduce_range),
                   base.supernet,
                   layers=with_precision(base.layers) if base.layers else None,
                   description=f"{space.name} with a {granularity}-wise "
                   f"quantization policy, bits {list(values)}")
    return qspace


def _policy_info(
    base: str, scheme: str, granularity: str, bits: tuple[int, ...], reduce_range: bool,
) -> dict[str, Any]:
    """What ``meta["quantization"]`` records (weight-only: ``MatMulNBits``' block layout)."""
    info: dict[str, Any] = {"base": base, "granularity": granularity, "bits": list(bits),
                            "reduce_range": bool(reduce_range), "scheme": scheme}
    if scheme == "weight_only":
        from nas.quantization.weight_only import BLOCK_SIZE, SYMMETRIC

        info.update(block_size=BLOCK_SIZE, symmetric=SYMMETRIC)
    return info


def _group(name: str, granularity: str) -> str | None:
    """The policy group of dimension ``name`` (``s1.b0``, ``s1`` or ``l3``), if any."""
    match = _BLOCK.match(name)
    if match:
        return match["stage"] if granularity == "stage" else f"{match['stage']}.{match['block']}"
    match = _LAYER.match(name)
    return match["layer"] if match else None


def _with_bits(
    space: SearchSpace, granularity: str, bits: tuple[int, ...], layer_names: Sequence[str],
) -> list[Choice]:
    """The space's dimensions with the bits dimensions after each group's last one."""
    groups: dict[str, Choice] = {}  # group -> last dimension of it
    for c in space.choices:
        group = _group(c.name, granularity)
        if group:
            groups[group] = c
    if not groups:
        raise ConfigError(f"space {space.name!r} has no <stage>.b<i>.<dim> blocks or "
                          "l<i>.<dim> layers to quantize")
    last = {c.name: g for g, c in groups.items()}
    units = [f".{n}" for n in layer_names] if granularity == "layer" else [""]
    out: list[Choice] = []
    for c in space.choices:
        out.append(c)
        if c.name in last:
            when = None if granularity == "stage" else c.when
            out.extend(choice(f"{last[c.name]}{u}.bits", bits, when=when) for u in units)
    return out


def _rebuilt(base: str, granularity: str, bits: Sequence[int], reduce_range: bool) -> SearchSpace:
    from nas.registry import create_space

    return quantized(create_space(base), granularity=granularity, bits=bits,
                     reduce_range=reduce_range)


def quantized_by_name(
    base: str, granularity: str, bits: Sequence[int], base_module: str = "",
    reduce_range: bool = True,
) -> SearchSpace:
    """The recipe's function: rebuild (and register) the quantized space of ``base``."""
    from nas.registry import resolve_space

    return quantized(resolve_space(base, module=base_module or None),
                     granularity=granularity, bits=bits, reduce_range=reduce_range)


def from_name(name: str) -> SearchSpace | None:
    """The quantized space a name like ``tiny+q8-32b`` stands for (``None``: not such a name)."""
    match = _NAME.match(name)
    if match is None:
        return None
    granularity = next(g for g, letter in GRANULARITIES.items() if letter == match["g"])
    bits = [int(b) for b in match["bits"].split("-")]
    return quantized_by_name(match["base"], granularity, bits, reduce_range=not match["full"])


REGISTRY.add_resolver(from_name)  # nas.create_space("tiny+q8-32b") builds it on first lookup


def is_quantized(space: SearchSpace) -> bool:
    """Whether ``space`` carries a quantization policy."""
    return QUANT_KEY in space.meta


def reduce_range(space: SearchSpace) -> bool:
    """Whether the policy's weights use ONNX Runtime's 7-bit ``reduce_range``."""
    return bool((space.meta.get(QUANT_KEY) or {}).get("reduce_range", True))


def weight_only(space: SearchSpace) -> bool:
    """Whether the policy quantizes linear weights only (``MatMulNBits``, transformer spaces)."""
    return (space.meta.get(QUANT_KEY) or {}).get("scheme") == "weight_only"


def policy_of(space: SearchSpace, arch: ArchConfig) -> dict[str, int]:
    """Bits per *active* policy unit: for convolutional spaces the block group
    (``{"s1.b0": 8, ...}``) under ``granularity="block"`` or ``"stage"``, the convolution
    (``{"s1.b0.expand": 8, "s1.b0.depthwise": 32, ...}``) under ``"layer"``; for transformer
    spaces the layer (``{"l0": 4, ...}``) or, under ``"layer"``, the linear layer
    (``{"l0.qkv": 4, ...}``); empty for a space without a policy."""
    info: Any = space.meta.get(QUANT_KEY)
    if not info:
        return {}
    values = arch.to_dict()
    granularity = info["granularity"]
    if info.get("scheme") == "weight_only" or granularity == "layer":
        return {c.name.removesuffix(".bits"): int(values[c.name]) for c in space.choices
                if c.name.endswith(".bits") and space.is_active(values, c.name)}
    out: dict[str, int] = {}
    for c in space.choices:
        match = _BLOCK.match(c.name)
        block = f"{match['stage']}.{match['block']}" if match else ""
        if match and block not in out and space.is_active(values, c.name):
            key = match["stage"] if granularity == "stage" else block
            out[block] = int(values[f"{key}.bits"])
    return out


def bits_of(policy: dict[str, int], layer: str) -> int:
    """The bits of linear ``layer`` (``"l0.qkv"``) under a weight-only ``policy``."""
    return policy.get(layer, policy.get(layer.split(".")[0], FLOAT_BITS))


def size_bytes(space: SearchSpace, arch: ArchConfig, params: int) -> int:
    """Model size: ``params`` float32 parameters (4 bytes each), less what the policy's
    quantized weights save: ``bits / 8`` bytes each for convolutions; for weight-only linear
    layers what ONNX Runtime's ``MatMulNBits`` stores, scales and zero points included
    (:func:`nas.quantization.weight_only.stored_bytes`)."""
    policy = policy_of(space, arch)
    if not any(b < FLOAT_BITS for b in policy.values()):
        return 4 * params
    support = quant_support(space)
    if weight_only(space) and support.shapes is not None:
        from nas.quantization.weight_only import stored_bytes

        block = int(space.meta[QUANT_KEY].get("block_size", 32))
        saved_wo = 0
        for layer, (k, n) in support.shapes(space, arch).items():
            bits = bits_of(policy, layer)
            if bits < FLOAT_BITS:
                saved_wo += 4 * k * n - stored_bytes(k, n, bits, block)
        return 4 * params - saved_wo
    weights = support.weights(space, arch)
    saved = sum((4 - bits / 8) * weights.get(unit, 0) for unit, bits in policy.items())
    return round(4 * params - saved)
