"""The registry of named search spaces and the supernets that realise them.

Spaces register themselves from ``search_spaces/`` (imported lazily on first lookup, so the
framework never imports the user's folder at import time).

Example:
    >>> import nas
    >>> space = nas.create_space("tiny")
    >>> supernet = nas.create_supernet("tiny", num_classes=10)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.space import SearchSpace

if TYPE_CHECKING:
    from nas.supernet import Supernet

SpaceFactory = Callable[[], SearchSpace]
SupernetFactory = Callable[..., "Supernet"]
# (space, arch, num_classes) -> the arch's layers, for counting and latency lookup tables
LayersFunction = Callable[..., list[Any]]


@dataclass(frozen=True, kw_only=True)
class _Entry:
    space: SpaceFactory
    supernet: SupernetFactory | None
    layers: LayersFunction | None
    description: str


class SpaceRegistry:
    """Maps names to space and supernet factories. One default instance: :data:`REGISTRY`."""

    def __init__(self, autoload: tuple[str, ...] = ()) -> None:
        self._entries: dict[str, _Entry] = {}
        self._autoload = autoload
        self._loaded = False

    def register(
        self,
        name: str,
        space: SpaceFactory,
        supernet: SupernetFactory | None = None,
        *,
        layers: LayersFunction | None = None,
        description: str = "",
    ) -> None:
        """Register ``name``; registering the same name twice replaces the entry."""
        self._entries[name] = _Entry(
            space=space, supernet=supernet, layers=layers, description=description
        )

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._autoload:
                importlib.import_module(module)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """Name → one-line description."""
        self._load()
        return {n: self._entries[n].description for n in sorted(self._entries)}

    def entry(self, name: str) -> _Entry:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"unknown search space {name!r}; registered spaces are {self.names()}"
            ) from None


REGISTRY = SpaceRegistry(autoload=("search_spaces",))


def register_space(
    name: str,
    space: SpaceFactory,
    supernet: SupernetFactory | None = None,
    *,
    layers: LayersFunction | None = None,
    description: str = "",
) -> None:
    """Register a search space, and optionally its supernet and layer description, as ``name``.

    Args:
        name: the registry name.
        space: builds the :class:`SearchSpace`.
        supernet: ``supernet(space, num_classes=...)`` builds its supernet.
        layers: ``layers(space, arch, num_classes)`` lists the arch's layers
            (``nas.layers.LayerSpec``), used for counting and latency lookup tables.
        description: one line for ``nas spaces``.

    Example:
        >>> register_space("my_space", make_my_space, MySupernet, description="...")
    """
    REGISTRY.register(name, space, supernet, layers=layers, description=description)


def create_space(name: str) -> SearchSpace:
    """The search space registered as ``name``."""
    return REGISTRY.entry(name).space()


def create_supernet(name: str, **kwargs: Any) -> Supernet:
    """A freshly initialised supernet of space ``name`` (``num_classes=...`` etc.)."""
    entry = REGISTRY.entry(name)
    if entry.supernet is None:
        raise ValueError(f"search space {name!r} has no supernet")
    return entry.supernet(entry.space(), **kwargs)


def list_spaces() -> list[str]:
    """Names of the registered search spaces."""
    return REGISTRY.names()
