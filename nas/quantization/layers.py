"""Layer descriptions of a quantized space: each ``LayerSpec`` tagged with its precision.

:func:`with_precision` wraps a base space's registered ``layers(space, arch, num_classes)``
so that the layers a policy quantizes carry ``("bits", b)`` in their ``extra`` fields (bits
below 32 only: a float layer keeps its key, so float entries are shared with the base
space's lookup table). Keys then differ by precision, a latency lookup table holds one entry
per (layer, precision), and counting is unchanged (kinds ignore the tag).

Which spec belongs to which policy group is the space family's knowledge: a plug-in
registers :class:`LayerGroups` for its family (:func:`register_layer_groups`): the bits of
each spec of an arch under its policy, and the names of the weights a tagged spec's
module (``spec.build()``) quantizes, which :mod:`nas.hardware.quantized` uses to time it in
ONNX Runtime. A family without registered groups keeps its specs untagged.

A spec whose weights take different precisions (a transformer block under a per-linear
policy, ``granularity="layer"``) gets a composite tag: its ``bits`` field holds the lowest
precision of its units and ``unit_bits`` every unit's (``"fc1:8,fc2:32,proj:4,qkv:32"``), so
keys stay distinct per combination; the family's ``weight_bits`` then gives each quantized
weight its own bits (:func:`quantized_weight_bits`).

Example:
    >>> register_layer_groups("mobilenetv3", LayerGroups(bits=spec_bits, weights=fn))
    >>> layers = with_precision(REGISTRY.entry("tiny").layers)
    >>> [s.get("bits", 32) for s in layers(qspace, arch, 10)]      # [32, 32, 8, 32, ...]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from nas.errors import ConfigError
from nas.quantization.support import FLOAT_BITS
from nas.space import ArchConfig, SearchSpace

LayersFunction = Callable[..., list[Any]]
# (space, arch, specs) -> the bits of each spec under arch's policy (32: float), or for a
# spec whose units differ in precision, unit ("qkv") -> bits
SpecBits = int | Mapping[str, int]
BitsFunction = Callable[[SearchSpace, ArchConfig, Sequence[Any]], Sequence[SpecBits]]
# spec -> the weight names of spec.build() that a quantized spec quantizes
WeightsFunction = Callable[[Any], list[str]]
# spec -> {weight name of spec.build(): bits} of the weights a quantized spec quantizes
WeightBitsFunction = Callable[[Any], dict[str, int]]
BITS = "bits"
UNIT_BITS = "unit_bits"


@dataclass(frozen=True, kw_only=True)
class LayerGroups:
    """How a family's layer specs map onto its policy groups (see the module docstring).

    Args:
        bits: the bits of each spec of an arch (an int, or unit -> bits).
        weights: the weights of a tagged spec's module that it quantizes.
        weight_bits: the bits of each of them, for families whose specs mix precisions
            (default: all at the spec's ``bits``).
    """

    bits: BitsFunction
    weights: WeightsFunction
    weight_bits: WeightBitsFunction | None = None


_GROUPS: dict[str, LayerGroups] = {}


def register_layer_groups(family: str, groups: LayerGroups) -> None:
    """Declare how the specs of ``family``'s spaces map to policy groups (on plug-in import)."""
    _GROUPS[family] = groups


def layer_groups(space: SearchSpace) -> LayerGroups | None:
    """The registered :class:`LayerGroups` of ``space``'s family, or ``None``."""
    return _GROUPS.get(str(space.meta.get("family")))


def bits_of(spec: Any) -> int:
    """The precision a spec is tagged with (32 when untagged)."""
    return int(spec.get(BITS, FLOAT_BITS))


def unit_bits(spec: Any) -> dict[str, int]:
    """A composite tag's bits per unit (``{"qkv": 4, "proj": 32, ...}``; empty without one)."""
    text = str(spec.get(UNIT_BITS, ""))
    return {u: int(b) for u, b in (part.split(":") for part in text.split(","))} if text else {}


def key_bits(key: str) -> int:
    """The precision a ``LayerSpec.key`` is tagged with (32 when untagged); for a composite
    tag the lowest precision of its units."""
    for part in key.split("|"):
        if part.startswith(f"{BITS}="):
            return int(part[len(BITS) + 1:])
    return FLOAT_BITS


def quantized_weights(space: SearchSpace, spec: Any) -> list[str]:
    """The weights of ``spec.build()`` (convs, or a weight-only family's linears) that
    ``spec``'s precision quantizes (none for a float spec); :class:`ConfigError` if the family
    registers no layer groups."""
    if bits_of(spec) >= FLOAT_BITS:
        return []
    groups = layer_groups(space)
    if groups is None:
        raise ConfigError(f"space {space.name!r} (family {space.meta.get('family')!r}) "
                          f"registers no layer groups; families with them: {sorted(_GROUPS)}")
    return groups.weights(spec)


def quantized_weight_bits(space: SearchSpace, spec: Any) -> dict[str, int]:
    """:func:`quantized_weights` with each weight's bits (the family's ``weight_bits``, else
    the spec's)."""
    weights = quantized_weights(space, spec)
    groups = layer_groups(space)
    if not weights or groups is None or groups.weight_bits is None:
        return {w: bits_of(spec) for w in weights}
    return groups.weight_bits(spec)


def with_precision(base: LayersFunction) -> LayersFunction:
    """``base`` with each layer a policy quantizes tagged ``("bits", b)`` (see module doc)."""

    def layers(space: SearchSpace, arch: ArchConfig, num_classes: int) -> list[Any]:
        specs = base(space, arch, num_classes)
        groups = layer_groups(space)
        if groups is None:
            return specs
        bits = groups.bits(space, arch, specs)
        return [_tagged(s, b) for s, b in zip(specs, bits, strict=True)]

    return layers


def _tagged(spec: Any, bits: SpecBits) -> Any:
    tags: list[tuple[str, int | str]]
    if isinstance(bits, Mapping):
        low = min(bits.values(), default=FLOAT_BITS)
        units = ",".join(f"{u}:{int(b)}" for u, b in sorted(bits.items()))
        tags = [(BITS, int(low)), (UNIT_BITS, units)]
    else:
        low, tags = int(bits), [(BITS, int(bits))]
    if low >= FLOAT_BITS:
        return spec
    kept = (e for e in spec.extra if e[0] not in (BITS, UNIT_BITS))
    return replace(spec, extra=tuple(sorted((*kept, *tags))))
