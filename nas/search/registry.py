"""Searcher names and the factory that builds them (implementations imported on first use).

Example:
    >>> searcher = create_searcher("nsga2", problem, seed=0, population=50)
    >>> list_searchers()
    ['evolution', 'gp', 'linas', 'local', 'nsga2', 'optuna-nsga2', 'random', 'regularized', 'tpe']
"""

from __future__ import annotations

import importlib
from typing import Any

from nas.errors import ConfigError
from nas.search.base import Problem, Searcher

# name -> (module, class, fixed keyword options)
_SEARCHERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "random": ("nas.search.random_search", "RandomSearcher", {}),
    "evolution": ("nas.search.evolution", "EvolutionSearcher", {}),
    "regularized": ("nas.search.evolution", "RegularizedEvolutionSearcher", {}),
    "nsga2": ("nas.search.nsga2", "NSGA2Searcher", {}),
    "local": ("nas.search.local", "LocalSearcher", {}),
    "linas": ("nas.search.linas", "LinasSearcher", {}),
    "tpe": ("nas.search.optuna_search", "OptunaSearcher", {"sampler": "tpe"}),
    "gp": ("nas.search.optuna_search", "OptunaSearcher", {"sampler": "gp"}),
    "optuna-nsga2": ("nas.search.optuna_search", "OptunaSearcher", {"sampler": "nsga2"}),
}


def list_searchers() -> list[str]:
    """The searcher names :func:`create_searcher` accepts."""
    return sorted(_SEARCHERS)


def create_searcher(name: str, problem: Problem, *, seed: int = 0, **options: Any) -> Searcher:
    """Build the searcher ``name`` for ``problem``.

    Args:
        name: one of :func:`list_searchers`.
        problem: the space, objectives and constraints.
        seed: random seed.
        **options: the searcher's own keyword options (e.g. ``population=50``).

    Raises:
        ValueError: unknown name or option.
    """
    try:
        module, cls, fixed = _SEARCHERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown searcher {name!r}; allowed values are {list_searchers()}"
        ) from None
    factory = getattr(importlib.import_module(module), cls)
    try:
        return factory(problem, seed=seed, **fixed, **options)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ConfigError(f"searcher {name!r}: {exc}") from None
