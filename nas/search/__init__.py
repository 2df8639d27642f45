"""Architecture search: searchers behind one batched ask/tell interface, the local search loop,
Pareto results and persistence. Nothing here imports torch or ray.

Example:
    >>> from nas.search import search
    >>> result = search(space, evaluate, objectives={"accuracy": "max", "latency_ms": "min"},
    ...                 constraints={"latency_ms": 10.0}, searcher="evolution", budget=100)
    >>> result.best(), result.pareto
"""

from __future__ import annotations

from nas.search.base import (
    ArrayEvaluator,
    ArraySearcher,
    Constraint,
    Constraints,
    Evaluator,
    Objectives,
    Problem,
    Searcher,
)
from nas.search.loop import run_search, search
from nas.search.registry import create_searcher, list_searchers
from nas.search.result import SearchResult

__all__ = [
    "ArrayEvaluator",
    "ArraySearcher",
    "Constraint",
    "Constraints",
    "Evaluator",
    "Objectives",
    "Problem",
    "SearchResult",
    "Searcher",
    "create_searcher",
    "list_searchers",
    "run_search",
    "search",
]
