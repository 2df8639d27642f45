"""Layer descriptions of a quantized space: each ``LayerSpec`` tagged with its precision.

:func:`with_precision` wraps a base space's registered ``layers(space, arch, num_classes)``
so that the layers a policy quantizes carry ``("bits", b)`` in their ``extra`` fields (bits
below 32 only: a float layer keeps its key, so float entries are shared with the base
space's lookup table). Keys then differ by precision, a latency lookup table holds one entry
per (layer, precision), and counting is unchanged (kinds ignore the tag).

Which spec belongs to which policy group is the space family's knowledge: a plug-in
registers :class:`LayerGroups` for its family (:func:`register_layer_groups`): the bits of
each spec of an arch under its policy, and the names of the conv weights a tagged spec's
module (``spec.build()``) quantizes, which :mod:`nas.hardware.quantized` uses to time it in
ONNX Runtime. A family without registered groups keeps its specs untagged.

Example:
    >>> register_layer_groups("mobilenetv3", LayerGroups(bits=spec_bits, weights=fn))
    >>> layers = with_precision(REGISTRY.entry("tiny").layers)
    >>> [s.get("bits", 32) for s in layers(qspace, arch, 10)]      # [32, 32, 8, 32, ...]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from nas.errors import ConfigError
from nas.quantization.support import FLOAT_BITS
from nas.space import ArchConfig, SearchSpace

LayersFunction = Callable[..., list[Any]]
# (space, arch, specs) -> the bits of each spec under arch's policy (32: float)
BitsFunction = Callable[[SearchSpace, ArchConfig, Sequence[Any]], list[int]]
# spec -> the conv weight names of spec.build() that a quantized spec quantizes
WeightsFunction = Callable[[Any], list[str]]
BITS = "bits"


@dataclass(frozen=True, kw_only=True)
class LayerGroups:
    """How a family's layer specs map onto its policy groups (see the module docstring)."""

    bits: BitsFunction
    weights: WeightsFunction


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


def quantized_weights(space: SearchSpace, spec: Any) -> list[str]:
    """The conv weights of ``spec.build()`` that ``spec``'s precision quantizes (none for a
    float spec); :class:`ConfigError` if the family registers no layer groups."""
    if bits_of(spec) >= FLOAT_BITS:
        return []
    groups = layer_groups(space)
    if groups is None:
        raise ConfigError(f"space {space.name!r} (family {space.meta.get('family')!r}) "
                          f"registers no layer groups; families with them: {sorted(_GROUPS)}")
    return groups.weights(spec)


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


def _tagged(spec: Any, bits: int) -> Any:
    if bits >= FLOAT_BITS:
        return spec
    extra = tuple(sorted((*(e for e in spec.extra if e[0] != BITS), (BITS, int(bits)))))
    return replace(spec, extra=extra)
