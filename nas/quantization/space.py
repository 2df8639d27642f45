"""A quantization policy as search dimensions: :func:`quantized` adds ``<group>.bits``.

``granularity="block"`` adds ``s1.b0.bits``, ... (conditional exactly like the block's other
dimensions: it vanishes with the block); ``"stage"`` adds one ``s1.bits`` per stage. The new
space is named ``<base>+q<bits joined by '-'><b|s>[f]`` (``tiny+q8-32b``), registered with the
base space's supernet and layers, and records a recipe in its meta, so a run directory or
export made with it reopens in a fresh process (:mod:`nas.space_recipes`); the registry also
builds such a name on first lookup (``nas.create_space("tiny+q8-32b")``).

Weights use ONNX Runtime's ``reduce_range`` by default (int8 storage, values in ``[-64, 64]``):
its int8 kernels on x86 CPUs without VNNI saturate 16-bit sums at the full range, so the
deployed model would not compute what the supernet simulates. ``reduce_range=False`` (names
ending in ``f``) keeps the full ``[-127, 127]`` for CPUs with VNNI.

Example:
    >>> qspace = nas.quantized(nas.create_space("tiny"), granularity="block", bits=(8, 32))
    >>> arch = qspace.sample(rng); policy_of(qspace, arch)      # {"s1.b0": 8, "s1.b1": 32, ...}
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
GRANULARITIES = {"block": "b", "stage": "s"}
_BLOCK = re.compile(r"^(?P<stage>[^.]+)\.(?P<block>b\d+)\.[^.]+$")
_NAME = re.compile(r"^(?P<base>.+)\+q(?P<bits>\d+(?:-\d+)*)(?P<g>[bs])(?P<full>f?)$")


def quantized(
    space: SearchSpace, *, granularity: str = "block", bits: Sequence[int] = (8, 32),
    reduce_range: bool = True,
) -> SearchSpace:
    """``space`` with a ``bits`` dimension per block or per stage (see the module docstring).

    Raises:
        ConfigError: the space's layers cannot be quantized, ``granularity`` is unknown, or a
            value of ``bits`` is not offered.
    """
    if QUANT_KEY in space.meta:
        raise ConfigError(f"space {space.name!r} is quantized already")
    if granularity not in GRANULARITIES:
        raise ConfigError(f"granularity must be one of {sorted(GRANULARITIES)}, "
                          f"got {granularity!r}")
    offered = quant_support(space).bits
    values = tuple(sorted({int(b) for b in bits}))  # ascending: largest() is float32
    bad = [b for b in bits if b not in offered]
    if not values or bad:
        raise ConfigError(f"bits {tuple(bits)} not offered by space {space.name!r}: allowed "
                          f"bits are {list(offered)} (32 = float)")
    dims = _with_bits(space, granularity, values)
    name = (f"{space.name}+q{'-'.join(map(str, values))}{GRANULARITIES[granularity]}"
            f"{'' if reduce_range else 'f'}")
    from nas.registry import register_space, space_module

    base = REGISTRY.entry(space.name)
    meta = {
        **space.meta,
        QUANT_KEY: {"base": space.name, "granularity": granularity, "bits": list(values),
                    "reduce_range": bool(reduce_range)},
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


def _with_bits(space: SearchSpace, granularity: str, bits: tuple[int, ...]) -> list[Choice]:
    """The space's dimensions with a bits dimension after each block's (or stage's) last."""
    groups: dict[str, Choice] = {}  # group -> last dimension of it
    for c in space.choices:
        match = _BLOCK.match(c.name)
        if match:
            block = f"{match['stage']}.{match['block']}"
            groups[match["stage"] if granularity == "stage" else block] = c
    if not groups:
        raise ConfigError(f"space {space.name!r} has no <stage>.b<i>.<dim> blocks to quantize")
    last = {c.name: g for g, c in groups.items()}
    out: list[Choice] = []
    for c in space.choices:
        out.append(c)
        if c.name in last:
            when = None if granularity == "stage" else c.when
            out.append(choice(f"{last[c.name]}.bits", bits, when=when))
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


def policy_of(space: SearchSpace, arch: ArchConfig) -> dict[str, int]:
    """Bits per *active block* group (``{"s1.b0": 8, ...}``), whatever the granularity; empty
    for a space without a policy."""
    info: Any = space.meta.get(QUANT_KEY)
    if not info:
        return {}
    values = arch.to_dict()
    out: dict[str, int] = {}
    for c in space.choices:
        match = _BLOCK.match(c.name)
        block = f"{match['stage']}.{match['block']}" if match else ""
        if match and block not in out and space.is_active(values, c.name):
            key = match["stage"] if info["granularity"] == "stage" else block
            out[block] = int(values[f"{key}.bits"])
    return out


def size_bytes(space: SearchSpace, arch: ArchConfig, params: int) -> int:
    """Model size: ``params`` float32 parameters (4 bytes each), less what the policy's
    quantized weights save (``bits / 8`` bytes each)."""
    policy = policy_of(space, arch)
    if not any(b < FLOAT_BITS for b in policy.values()):
        return 4 * params
    weights = quant_support(space).weights(space, arch)
    saved = sum((4 - bits / 8) * weights.get(group, 0) for group, bits in policy.items())
    return round(4 * params - saved)
