"""``random``: uniform random search without repeats (the baseline every searcher must beat).

Example:
    >>> result = nas.search(space, evaluate, searcher="random", budget=50)
"""

from __future__ import annotations

import numpy as np

from nas.search.archive import IndexSearcher
from nas.search.base import Problem


class RandomSearcher(IndexSearcher):
    """Uniformly random architectures, never one already asked or told.

    Args:
        problem: the space, objectives and constraints.
        seed: random seed.
    """

    preferred_batch = 16

    def __init__(self, problem: Problem, *, seed: int = 0) -> None:
        super().__init__(problem, seed=seed)

    def ask_indices(self, n: int) -> np.ndarray:
        """``n`` fresh random rows (fewer only when the space is nearly exhausted)."""
        return self.fresh(self.random_rows(2 * n), n)
