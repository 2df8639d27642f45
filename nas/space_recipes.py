"""Spaces rebuilt from a recipe recorded in their ``meta`` (e.g. one imported from a model).

A space made at run time (not registered by a module at import) carries
``meta["recipe"] = {"module": ..., "function": ..., "args": {...}}``: calling
``module.function(**args)`` registers it again and returns it. Runs record the meta in
``space.json`` and exports in ``arch.json``, so a later verb in a fresh process rebuilds the
space with :func:`resolve_recorded_space`. The framework imports the module by name only
(as it does a user's ``module:name``), never a plug-in statically.

Example:
    >>> space = resolve_recorded_space("hf_gpt2_mine", module="", recipe=spec["meta"]["recipe"])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.registry import REGISTRY, rebuild, resolve_space
from nas.space import SearchSpace

RECIPE_KEY = "recipe"


def recipe_of(space: SearchSpace) -> dict[str, Any] | None:
    """The space's recipe, or ``None`` for a space its module registers on import."""
    recipe = space.meta.get(RECIPE_KEY)
    return dict(recipe) if isinstance(recipe, Mapping) else None


def resolve_recorded_space(
    name: str, *, module: str | None = None, recipe: Mapping[str, Any] | None = None
) -> SearchSpace:
    """The space recorded as ``name``: registered already, rebuilt from ``recipe`` if given,
    else resolved (importing ``module``) as :func:`nas.registry.resolve_space` does."""
    if recipe and name not in REGISTRY.names():
        return rebuild(recipe)
    return resolve_space(name, module=module)
