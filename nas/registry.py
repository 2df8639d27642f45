"""The registry of named search spaces and the supernets that realise them.

Spaces come from plug-ins: installed packages that name a module in the ``nas.spaces``
entry-point group (this project's ``search_spaces`` and ``predictors`` do), imported on the
first lookup, and from a user's own module named on the command line as ``module:name``
(:func:`resolve_space`). The framework itself imports no plug-in.

Example:
    >>> import nas
    >>> space = nas.create_space("tiny")
    >>> supernet = nas.create_supernet("tiny", num_classes=10)
    >>> space = nas.resolve_space("myspaces:my_space")   # imports myspaces.py, which registers
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError
from nas.space import SearchSpace

if TYPE_CHECKING:
    from nas.supernet import Supernet

SpaceFactory = Callable[[], SearchSpace]
SupernetFactory = Callable[..., "Supernet"]
# (space, arch, num_classes) -> the arch's layers, for counting and latency lookup tables
LayersFunction = Callable[..., list[Any]]
SPACE_PLUGINS = "nas.spaces"
# a source tree on sys.path that is not installed has no entry points: its plug-ins by name
_SOURCE_TREE_PLUGINS = {"nas.spaces": "search_spaces", "nas.predictors": "predictors"}


def load_plugins(group: str) -> list[str]:
    """Import every module named in the entry-point ``group`` (Python caches imported modules,
    so a second call imports nothing); returns their names. Without any entry point (this
    project run from a source tree, not installed), the tree's own plug-in is imported if
    it is on the path."""
    names = [point.value for point in entry_points(group=group)]
    if not names and group in _SOURCE_TREE_PLUGINS:
        names = [_SOURCE_TREE_PLUGINS[group]]
    loaded = []
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        loaded.append(name)
    return loaded


@dataclass(frozen=True, kw_only=True)
class _Entry:
    space: SpaceFactory
    supernet: SupernetFactory | None
    layers: LayersFunction | None
    description: str
    module: str


class SpaceRegistry:
    """Maps names to space and supernet factories. One default instance: :data:`REGISTRY`."""

    def __init__(self, *, plugins: bool = True) -> None:
        self._entries: dict[str, _Entry] = {}
        self._plugins = plugins
        self._loaded = False
        self._resolvers: list[Callable[[str], object]] = []

    def add_resolver(self, resolve: Callable[[str], object]) -> None:
        """Call ``resolve(name)`` for a name not registered: it may build and register it
        (``nas.quantization`` does for ``<space>+q...`` names)."""
        if resolve not in self._resolvers:
            self._resolvers.append(resolve)

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
            space=space, supernet=supernet, layers=layers, description=description,
            module=getattr(space, "__module__", "") or "",
        )

    def _load(self) -> None:
        if self._plugins and not self._loaded:
            self._loaded = True
            load_plugins(SPACE_PLUGINS)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """Name → one-line description."""
        self._load()
        return {n: self._entries[n].description for n in sorted(self._entries)}

    def entry(self, name: str) -> _Entry:
        """The entry of ``name``; :class:`ConfigError` listing the registered names if none."""
        self._load()
        for resolve in self._resolvers:  # derived names built on demand, e.g. tiny+q8-32b
            if name in self._entries:
                break
            resolve(name)
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown search space {name!r}; registered spaces are {self.names()} "
                "(or name your own as module:name)"
            ) from None


REGISTRY = SpaceRegistry()


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
        raise ConfigError(f"search space {name!r} has no supernet")
    try:
        return entry.supernet(entry.space(), **kwargs)
    except TypeError as exc:  # a build option the supernet does not take is the user's error
        bad = [k for k in kwargs if f"unexpected keyword argument '{k}'" in str(exc)]
        if not bad:
            raise
        raise ConfigError(f"supernet of {name!r} has no option {bad[0]!r} ({exc})") from None


def rebuild(recipe: Mapping[str, Any]) -> SearchSpace:
    """Run ``recipe`` (import its module, call its function with its args): the space."""
    module, function = recipe.get("module"), recipe.get("function")
    if not isinstance(module, str) or not isinstance(function, str):
        raise ConfigError(f"space recipe needs string 'module' and 'function', got {dict(recipe)}")
    try:
        make = getattr(importlib.import_module(module), function)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise ConfigError(f"space recipe {module}.{function}: cannot import it ({exc})") from None
    space = make(**dict(recipe.get("args") or {}))
    if not isinstance(space, SearchSpace):
        raise ConfigError(f"space recipe {module}.{function} returned {type(space).__name__}, "
                          "not a SearchSpace")
    return space


def list_spaces() -> list[str]:
    """Names of the registered search spaces."""
    return REGISTRY.names()


@dataclass(frozen=True)
class SpaceRef:
    """A space by name and registering module: what travels to another process, which
    rebuilds the space with :meth:`resolve` (importing the user's module if needed). A space
    made at run time (an imported model's) also carries its recipe, ``meta["recipe"]`` as
    JSON (see :mod:`nas.space_recipes`)."""

    name: str
    module: str = ""
    recipe: str = ""

    @classmethod
    def of(cls, space: SearchSpace) -> SpaceRef:
        """The reference of a registered ``space``."""
        recipe = space.meta.get("recipe")
        text = json.dumps(recipe, sort_keys=True) if isinstance(recipe, dict) else ""
        return cls(space.name, space_module(space.name), text)

    def resolve(self) -> SearchSpace:
        """The space, rebuilt in this process."""
        if self.recipe and self.name not in REGISTRY.names():
            return rebuild(json.loads(self.recipe))
        return resolve_space(self.name, module=self.module or None)


def space_module(name: str) -> str:
    """The module that registered ``name`` (recorded in runs and exports so a fresh
    interpreter can import it again before rebuilding the space)."""
    return REGISTRY.entry(name).module


def import_space_module(module: str) -> None:
    """Import a user's module that registers spaces (the working directory is searched too,
    as ``python -m`` does)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise ConfigError(
                f"space module {module!r} not found (looked on sys.path and in {os.getcwd()})"
            ) from None
        raise


def resolve_space(spec: str, *, module: str | None = None) -> SearchSpace:
    """The space ``spec`` names: a registered name, or ``module:name`` for a user's module.

    ``module:name`` imports ``module`` (which registers its spaces), then takes ``name`` as a
    registered space or as a function of the module that returns a registered space.
    ``module`` (as recorded in a run) is imported first when ``spec`` is not yet registered.

    Example:
        >>> resolve_space("tiny"); resolve_space("myspaces:my_space")
    """
    name = spec
    if ":" in spec:
        module, _, name = spec.partition(":")
        if not module or not name:
            raise ConfigError(f"space {spec!r}: expected NAME or MODULE:NAME")
    if module and name not in REGISTRY.names() and module not in sys.modules:
        import_space_module(module)
    if name not in REGISTRY.names() and module:
        factory = getattr(sys.modules[module], name, None)
        if callable(factory):
            space = factory()
            if isinstance(space, SearchSpace):
                return create_space(space.name)
    return create_space(name)
