"""Evolutionary searchers on the first objective under the constraints.

``evolution`` follows Once-for-All's ``EvolutionFinder`` (population, parent ratio, mutation
ratio, mutation probability; github.com/mit-han-lab/once-for-all,
``ofa/nas/search_algorithm/evolution.py``) with two differences: infeasible children are
kept and ranked after every feasible one (constrained ranking) instead of being resampled
until they fit, so no loop is unbounded; and the elite is taken from every trial told so far.

``regularized`` is regularized (aging) evolution (Real et al. 2019): the population is the
last ``population`` trials; each child mutates the best of a random tournament.

Example:
    >>> result = nas.search(space, evaluate, objectives={"accuracy": "max"},
    ...                     constraints={"latency_ms": 20.0}, searcher="evolution", budget=500)
"""

from __future__ import annotations

from collections import deque

import numpy as np

from nas.errors import ConfigError
from nas.search.archive import IndexSearcher
from nas.search.base import Problem


def _check_fraction(name: str, value: float, *, open_low: bool = False) -> None:
    low_ok = value > 0 if open_low else value >= 0
    if not (low_ok and value <= 1):
        raise ConfigError(f"{name} must be in {'(0, 1]' if open_low else '[0, 1]'}, got {value!r}")


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")


class EvolutionSearcher(IndexSearcher):
    """OFA-style constrained evolution.

    Args:
        problem: the space, objectives and constraints (ranks on the first objective).
        seed: random seed.
        population: trials in the first (random) generation and children per generation.
        parent_ratio: fraction of ``population`` kept as parents (the elite).
        mutation_ratio: fraction of children made by mutation; the rest by crossover.
        mutate_prob: per-dimension resampling probability of a mutation.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int = 0,
        population: int = 100,
        parent_ratio: float = 0.25,
        mutation_ratio: float = 0.5,
        mutate_prob: float = 0.1,
    ) -> None:
        super().__init__(problem, seed=seed)
        _check_positive("population", population)
        _check_fraction("parent_ratio", parent_ratio, open_low=True)
        _check_fraction("mutation_ratio", mutation_ratio)
        _check_fraction("mutate_prob", mutate_prob)
        self.population = population
        self.parent_ratio = parent_ratio
        self.mutation_ratio = mutation_ratio
        self.mutate_prob = mutate_prob
        self.preferred_batch = population
        self.n_parents = max(2, round(parent_ratio * population))
        self._elite = np.empty(0, dtype=np.int64)  # archive indices of the parents, best first

    def on_tell(self, rows: np.ndarray, new: np.ndarray) -> None:
        """Keep the ``n_parents`` best trials seen so far (O(batch) per generation)."""
        n_new = int(new.sum())
        fresh = np.arange(len(self.archive) - n_new, len(self.archive))
        merged = np.concatenate([self._elite, fresh])
        self._elite = self.archive.ranking(merged)[: self.n_parents]

    def ask_indices(self, n: int) -> np.ndarray:
        """``n`` children of the elite (random rows until a first generation is told)."""
        if len(self.archive) < self.population:
            return self.fresh(self.random_rows(2 * n), n)
        parents = self.archive.rows[self._elite]
        n_mut = round(self.mutation_ratio * n)
        n_spare = n // 2 + 4  # spare mutants fill in for children that repeat a network
        pick = self.rng.integers(len(parents), size=n_mut + n_spare + 2 * (n - n_mut))
        mutants = self.mutate_rows(parents[pick[: n_mut + n_spare]], self.mutate_prob)
        a, b = np.split(parents[pick[n_mut + n_spare :]], 2)
        children = np.vstack([mutants[:n_mut], self.crossover_rows(a, b), mutants[n_mut:]])
        return self.fresh(children, n)


class RegularizedEvolutionSearcher(IndexSearcher):
    """Regularized (aging) evolution with tournament selection.

    Args:
        problem: the space, objectives and constraints (ranks on the first objective).
        seed: random seed.
        population: how many of the most recent trials form the population.
        tournament: how many population members compete to be a parent.
        mutate_prob: per-dimension resampling probability on top of one forced change.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int = 0,
        population: int = 20,
        tournament: int = 5,
        mutate_prob: float = 0.0,
    ) -> None:
        super().__init__(problem, seed=seed)
        _check_positive("population", population)
        _check_positive("tournament", tournament)
        if tournament > population:
            raise ConfigError(
                f"tournament ({tournament}) must not exceed population ({population})"
            )
        _check_fraction("mutate_prob", mutate_prob)
        self.population = population
        self.tournament = tournament
        self.mutate_prob = mutate_prob
        self.preferred_batch = 1
        self._members: deque[int] = deque(maxlen=population)  # archive indices, oldest first

    def on_tell(self, rows: np.ndarray, new: np.ndarray) -> None:
        """Newly told trials join the population; the oldest leave it."""
        start = len(self.archive) - int(new.sum())
        self._members.extend(range(start, len(self.archive)))

    def ask_indices(self, n: int) -> np.ndarray:
        """``n`` children, each a mutation of a tournament winner."""
        if len(self._members) < self.population:
            return self.fresh(self.random_rows(2 * n), n)
        members = np.fromiter(self._members, dtype=np.int64)
        k = 3 * n  # spares for children that repeat a known network
        contestants = np.stack(
            [self.rng.choice(members, size=self.tournament, replace=False) for _ in range(k)]
        )
        v = self.archive.violation[contestants]
        f = self.archive.F[contestants, 0]
        best = _row_best(v, f)
        parents = self.archive.rows[contestants[np.arange(k), best]]
        return self.fresh(self.mutate_rows(parents, self.mutate_prob), n)


def _row_best(violation: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Per row, the column with the least violation, ties broken by the smallest ``f``."""
    feasible = violation <= 0
    f_key = np.where(feasible, f, np.inf)
    v_key = np.where(feasible, -np.inf, violation)
    any_feasible = feasible.any(axis=1)
    return np.where(any_feasible, np.argmin(f_key, axis=1), np.argmin(v_key, axis=1))
