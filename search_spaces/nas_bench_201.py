"""The NAS-Bench-201 family as the registry sees it: the space, the supernet, the layers.

The space and cell strings live in :mod:`search_spaces.nb201_space`, the supernet in
:mod:`search_spaces.nb201_net` (torch, imported only when a supernet is built) and the layer
descriptions in :mod:`search_spaces.nb201_layers`; this module joins them and nothing imports
it back.

Example:
    >>> space = make_space()
    >>> supernet = make_supernet(space, num_classes=10)
"""

from __future__ import annotations

from typing import Any

from nas.space import ArchConfig, SearchSpace
from search_spaces.nb201_space import EDGES, N_NODES, OPS, NB201Space, edge_name, make_space

__all__ = [
    "EDGES",
    "N_NODES",
    "OPS",
    "NB201Space",
    "edge_name",
    "layers",
    "make_space",
    "make_supernet",
]


def make_supernet(space: SearchSpace, **kwargs: Any) -> Any:
    """The NAS-Bench-201 weight-sharing supernet (imports torch only when called)."""
    from search_spaces.nb201_net import NB201Supernet

    return NB201Supernet(space, **kwargs)


def layers(space: SearchSpace, arch: ArchConfig, num_classes: int = 10) -> list[Any]:
    """The layers (``nas.layers.LayerSpec``) of ``arch``, for counting and lookup tables."""
    from search_spaces.nb201_layers import layer_specs

    return layer_specs(space, arch, num_classes)
