"""``nsga2``: NSGA-II (Deb et al. 2002) with constrained domination, vectorised on index rows.

A generation is one batched ``ask``: binary tournaments on (front, crowding), uniform
crossover and per-dimension mutation of whole index matrices, so with an array evaluator
(predictors) a generation is a single predictor call. Survivors are the best ``population``
of parents plus children by constrained non-dominated sorting and crowding distance.

Example:
    >>> result = nas.search(space, predict, objectives={"accuracy": "max", "latency_ms": "min"},
    ...                     searcher="nsga2", budget=5000, batch_size=100)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas.errors import ConfigError
from nas.search.archive import IndexSearcher
from nas.search.base import Problem
from nas.search.pareto import crowding_by_front, nondominated_sort


def survival_order(F: np.ndarray, violation: np.ndarray, enough: int | None = None) -> np.ndarray:
    """Indices sorted best first by (constrained front, larger crowding distance); with
    ``enough``, only the first ``enough`` positions are exact."""
    ranks = nondominated_sort(F, violation, enough=enough)
    crowd = crowding_by_front(F, ranks)
    return np.lexsort((-crowd, ranks))


class NSGA2Searcher(IndexSearcher):
    """NSGA-II over the space's index rows.

    Args:
        problem: the space, objectives and constraints.
        seed: random seed.
        population: survivors per generation (and the size of the random first generation).
        crossover_prob: probability that a child is a crossover of two parents.
        mutate_prob: per-dimension mutation probability (default ``1 / dims``).
    """

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int = 0,
        population: int = 50,
        crossover_prob: float = 0.9,
        mutate_prob: float | None = None,
    ) -> None:
        super().__init__(problem, seed=seed)
        if not isinstance(population, int) or population < 2:
            raise ConfigError(f"population must be an int >= 2, got {population!r}")
        if not 0 <= crossover_prob <= 1:
            raise ConfigError(f"crossover_prob must be in [0, 1], got {crossover_prob!r}")
        self.population = population
        self.crossover_prob = crossover_prob
        self.mutate_prob = 1.0 / len(self.sizes) if mutate_prob is None else float(mutate_prob)
        if not 0 <= self.mutate_prob <= 1:
            raise ConfigError(f"mutate_prob must be in [0, 1], got {mutate_prob!r}")
        self.preferred_batch = population
        self._pop = np.empty(0, dtype=np.int64)  # archive indices of the survivors
        self._rank = np.empty(0, dtype=np.int64)  # survivors' position in survival order

    def on_tell(self, rows: np.ndarray, new: np.ndarray) -> None:
        """Merge newly told trials into the population and keep the best ``population``."""
        n_new = int(new.sum())
        if not n_new:
            return
        merged = np.concatenate(
            [self._pop, np.arange(len(self.archive) - n_new, len(self.archive))]
        )
        order = survival_order(
            self.archive.F[merged], self.archive.violation[merged], enough=self.population
        )
        self._pop = merged[order[: self.population]]
        self._rank = np.arange(len(self._pop))

    def survivors(self) -> np.ndarray:
        """Index rows of the current population, best first."""
        return self.archive.rows[self._pop]

    def ask_indices(self, n: int) -> np.ndarray:
        """One generation of ``n`` children (random rows until a population is told)."""
        if len(self._pop) < min(self.population, 2) or len(self.archive) < self.population:
            return self.fresh(self.random_rows(2 * n), n)
        k = 2 * n  # spares for children that repeat a known network
        size = len(self._pop)
        a, b = self.rng.integers(size, size=(2, 2 * k))
        winners = np.minimum(a, b)  # lower survival position wins the binary tournament
        p1 = self.archive.rows[self._pop[winners[:k]]]
        p2 = self.archive.rows[self._pop[winners[k:]]]
        cross = self.rng.random(k) < self.crossover_prob
        children = np.where(cross[:, None], self.crossover_rows(p1, p2), p1)
        children = self.mutate_rows(children, self.mutate_prob, force=False)
        return self.fresh(children, n)


def evolve(
    searcher: NSGA2Searcher,
    evaluate_indices: Callable[[np.ndarray], dict[str, np.ndarray]],
    generations: int,
    batch: int | None = None,
) -> NSGA2Searcher:
    """Run ``generations`` NSGA-II generations against an array evaluator (e.g. predictors)."""
    batch = batch or searcher.population
    for _ in range(generations):
        rows = searcher.ask_indices(batch)
        if not len(rows):
            break
        searcher.tell_indices(rows, evaluate_indices(rows))
    return searcher
