"""Parameter and MAC counts of architectures, from their layer descriptions.

The counts sum the :class:`nas.layers.LayerSpec` list that the space's registered ``layers``
function returns, so they need no network and no torch. MACs are multiply-accumulates (not
FLOPs), counted as DyNAS-T/fvcore count them (see :mod:`nas.layers`). They are per sample:
per image, or for a language model per sequence of ``seq_len`` tokens (default the space's
``meta["seq_len"]``; attention grows with its square); the vocabulary plays ``num_classes``.

Example:
    >>> space = nas.create_space("ofa_mbv3_w1.0")
    >>> nas.count(space, space.largest(), num_classes=1000)
    {'params': 7664760, 'macs': 566170656}
    >>> rows = count_many(space, space.sample_many(10_000, rng))   # cached per layer
    >>> gpt = nas.create_space("gpt_tiny")
    >>> nas.count(gpt, gpt.largest(), num_classes=256, seq_len=64)     # MACs per 64 tokens
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nas.errors import ConfigError
from nas.layers import LayerSpec
from nas.registry import REGISTRY
from nas.sequence import at_seq_len, sequence_length
from nas.space import ArchConfig, SearchSpace

Counts = dict[str, int]


def _layers_function(space: SearchSpace) -> Callable[..., list[Any]]:
    layers = REGISTRY.entry(space.name).layers
    if layers is None:
        raise ConfigError(f"search space {space.name!r} registers no layers function to count")
    return layers


def _check_classes(num_classes: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive int, got {num_classes!r}")


def count(
    space: SearchSpace, arch: ArchConfig, num_classes: int = 1000, *, seq_len: int | None = None
) -> Counts:
    """``{"params": int, "macs": int}`` of ``arch`` with a ``num_classes``-way classifier (the
    vocabulary of a language model), MACs per image or per sequence of ``seq_len`` tokens.

    Raises:
        InvalidArchError: ``arch`` is not an architecture of ``space``.
        ValueError: the space has no layers function, ``num_classes`` is not positive, or
            ``seq_len`` is not allowed (see :func:`nas.sequence.sequence_length`).
    """
    _check_classes(num_classes)
    length = _length(space, seq_len)
    space.validate(arch)
    specs = at_seq_len(_layers_function(space)(space, arch, num_classes), length)
    return _with_size(space, arch, {
        "params": sum(s.params() for s in specs),
        "macs": sum(s.macs() for s in specs),
    })


def _with_size(space: SearchSpace, arch: ArchConfig, counts: Counts) -> Counts:
    """``counts`` plus ``size_bytes`` (weights at their bits) for a space with a quantization
    policy (:mod:`nas.quantization`)."""
    from nas.quantization.space import is_quantized, size_bytes

    if is_quantized(space):
        counts["size_bytes"] = size_bytes(space, arch, counts["params"])
    return counts


def _length(space: SearchSpace, seq_len: int | None) -> int | None:
    """``seq_len`` checked; ``None`` (the layers as described) when not given."""
    return None if seq_len is None else sequence_length(space, seq_len)


def count_many(
    space: SearchSpace,
    archs: Sequence[ArchConfig],
    num_classes: int = 1000,
    *,
    seq_len: int | None = None,
) -> list[Counts]:
    """:func:`count` of every arch, caching each distinct layer's counts.

    Architectures that share a network (same ``key``) are counted once; layers that recur
    across architectures are counted once. 10,000 OFA-MobileNetV3 archs take about a second.
    """
    _check_classes(num_classes)
    length = _length(space, seq_len)
    layers = _layers_function(space)
    per_layer: dict[LayerSpec, tuple[int, int]] = {}
    per_arch: dict[str, Counts] = {}
    out = []
    for arch in archs:
        if not isinstance(arch, ArchConfig) or arch.space != space.name:
            space.validate(arch)  # raises; ArchConfigs of this space are valid by construction
        known = per_arch.get(arch.key)
        if known is None:
            params = macs = 0
            for spec in at_seq_len(layers(space, arch, num_classes), length):
                counts = per_layer.get(spec)
                if counts is None:
                    counts = per_layer[spec] = (spec.params(), spec.macs())
                params += counts[0]
                macs += counts[1]
            known = per_arch[arch.key] = _with_size(space, arch,
                                                    {"params": params, "macs": macs})
        out.append(dict(known))
    return out
