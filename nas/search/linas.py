"""``linas``: LINAS-style predictor-in-the-loop search (Cummings et al. 2022, DyNAS-T).

Each iteration: fit one surrogate per objective and constrained metric on every measured
trial, run NSGA-II on the surrogates (an inner search that costs no measurements, one batched
prediction per generation), and measure the best ``n`` of its final population that were never
measured (dedupe by network). The inner search is warm-started from the measured trials and the
previous inner population.

Example:
    >>> result = nas.search(space, evaluate, objectives={"accuracy": "max", "latency_ms": "min"},
    ...                     searcher="linas", budget=200, batch_size=20)
"""

from __future__ import annotations

import numpy as np

from nas.errors import ConfigError
from nas.search.base import Problem
from nas.search.local import LocalSearcher
from nas.search.nsga2 import NSGA2Searcher, evolve, survival_order
from nas.search.surrogate import ArchPredictor


class LinasSearcher(LocalSearcher):
    """Predictor-in-the-loop NSGA-II.

    Args:
        problem: the space, objectives and constraints.
        seed: random seed.
        n_init: random trials measured before the predictors take over.
        population: inner NSGA-II population.
        generations: inner NSGA-II generations per iteration.
        surrogate: ``"gp"`` (default), ``"gp-hamming"``, ``"trees"`` or a model with
            ``fit(archs, y)`` and ``predict(archs)`` (see :class:`LocalSearcher`).
        batch_size: preferred number of measurements per iteration.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int = 0,
        n_init: int = 20,
        population: int = 50,
        generations: int = 20,
        surrogate: str | ArchPredictor = "gp",
        batch_size: int = 10,
    ) -> None:
        super().__init__(
            problem, seed=seed, n_init=n_init, surrogate=surrogate, batch_size=batch_size
        )
        if not isinstance(generations, int) or generations < 1:
            raise ConfigError(f"generations must be a positive int, got {generations!r}")
        self.inner_population = population
        self.generations = generations
        self._warm = np.empty((0, len(self.sizes)), dtype=np.int64)

    def _inner_problem(self) -> Problem:
        k = len(self.problem.objectives.names)
        constraints = {
            f"c{i}": (("min", 0.0) if c.bound == "lower" else 0.0)
            for i, c in enumerate(self.problem.constraints.items)
        }
        return Problem.create(self.space, {f"f{j}": "min" for j in range(k)}, constraints)

    def ask_indices(self, n: int) -> np.ndarray:
        """The ``n`` best unmeasured members of the inner NSGA-II population."""
        if len(self.archive) < self.n_init:
            return self.fresh(self.random_rows(2 * n), n)
        models = self._fit()
        k = len(self.problem.objectives.names)

        def predict(rows: np.ndarray) -> dict[str, np.ndarray]:
            out = {f"f{j}": self._predict(models[f"objective:{j}"], rows)[0] for j in range(k)}
            for i, c in enumerate(self.problem.constraints.items):
                mean = self._predict(models[f"constraint:{c.metric}"], rows)[0]
                limit = float(np.log(c.limit)) if self._log[c.metric] else c.limit
                out[f"c{i}"] = mean - limit  # <= 0 feasible (upper); >= 0 (lower)
            return out

        inner = NSGA2Searcher(
            self._inner_problem(),
            seed=int(self.rng.integers(2**31)),
            population=self.inner_population,
        )
        warm = np.vstack([self.archive.rows, self._warm])
        inner.tell_indices(warm, predict(warm))
        evolve(inner, predict, self.generations)
        self._warm = inner.survivors()
        # every inner candidate, best first; measured ones are skipped by fresh()
        order = survival_order(inner.archive.F, inner.archive.violation)
        return self.fresh(inner.archive.rows[order], n)
