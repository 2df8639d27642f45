"""Layer descriptions of a quantized space: each ``LayerSpec`` tagged with its precision.

:func:`with_precision` wraps a base space's registered ``layers(space, arch, num_classes)``
so that the layers a policy quantizes carry ``("bits", b)`` in their ``extra`` fields. Their
keys then differ by precision, so a latency lookup table holds one entry per (layer,
precision), and counting is unchanged (kinds ignore the tag).

Example:
    >>> layers = with_precision(REGISTRY.entry("tiny").layers)
    >>> [s.get("bits", 32) for s in layers(qspace, arch, 10)]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LayersFunction = Callable[..., list[Any]]


def with_precision(base: LayersFunction) -> LayersFunction:
    """``base`` with each quantized layer tagged by its bits (placeholder: untagged)."""

    def layers(space: Any, arch: Any, num_classes: int) -> list[Any]:
        return base(space, arch, num_classes)

    return layers
