"""``local``: surrogate-guided local search (works on any discrete space).

Each batch: fit one surrogate per objective and constrained metric on every trial so far;
build a candidate pool from the one-change neighbourhoods of the best trials (the feasible
front for several objectives), two-change mutations of them and uniform random samples;
drop every network already measured; score the pool with constrained expected improvement
(one objective) or optimistic hypervolume improvement times the probability of feasibility
(two objectives; random Chebyshev scalarisation beyond two) and measure the top of the pool.
Local structure does most of the work: good networks have good neighbours, and the
surrogates decide which few of them are worth a measurement.

Example:
    >>> result = nas.search(space, evaluate, objectives={"accuracy": "max"},
    ...                     constraints={"latency_ms": 12.0}, searcher="local", budget=100)
"""

from __future__ import annotations

import numpy as np

from nas.search.archive import IndexSearcher
from nas.search.base import Problem, canonical_rows, row_keys
from nas.search.pareto import pareto_mask
from nas.search.surrogate import Surrogate, expected_improvement, make_surrogate, normal_cdf


def hvi_2d(front: np.ndarray, points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Exact 2-D hypervolume improvement of each point over ``front`` (minimisation)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(front):
        front = front[np.argsort(front[:, 0])]
        xs = front[:, 0]
        ys = np.minimum.accumulate(front[:, 1])
    else:
        xs = ys = np.empty(0)
    lo = np.concatenate([[-np.inf], xs])  # segment j spans [lo[j], hi[j]) at staircase level[j]
    hi = np.concatenate([xs, [reference[0]]])
    level = np.minimum(np.concatenate([[reference[1]], ys]), reference[1])
    a, b = points[:, :1], points[:, 1:]
    width = np.clip(np.minimum(hi, reference[0])[None, :] - np.maximum(lo[None, :], a), 0, None)
    height = np.clip(level[None, :] - b, 0, None)
    return (width * height).sum(axis=1)


def _normal_scores(F: np.ndarray) -> np.ndarray:
    """Column-wise rank-based normal scores (ties share their mean rank)."""
    from scipy.special import ndtri

    n = len(F)
    out = np.empty(F.shape)
    for j in range(F.shape[1]):
        values, inverse = np.unique(F[:, j], return_inverse=True)
        first = np.searchsorted(np.sort(F[:, j]), values, side="left")
        last = np.searchsorted(np.sort(F[:, j]), values, side="right")
        mean_rank = (first + last + 1) / 2.0  # 1-based average rank of each distinct value
        out[:, j] = mean_rank[inverse.reshape(-1)]
    return np.asarray(ndtri(out / (n + 1)))


class LocalSearcher(IndexSearcher):
    """Surrogate-guided local search.

    Args:
        problem: the space, objectives and constraints.
        seed: random seed.
        n_init: random trials before the surrogates take over.
        top_k: how many of the best trials (single objective) seed the neighbourhood.
        n_random: random candidates added to every pool (exploration).
        n_mutants: two-change mutants of the seeds added to every pool.
        surrogate: ``"gp"`` (default), ``"trees"`` or ``"predictor:<name>"``.
        optimism: how many standard deviations the hypervolume acquisition adds.
        batch_size: preferred batch (small batches refit the surrogates more often).
        acquisition: ``"ei"`` (constrained expected improvement) or ``"mean"`` (pure
            exploitation: best predicted among likely-feasible candidates), one objective.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int = 0,
        n_init: int = 10,
        top_k: int = 4,
        n_random: int = 1000,
        n_mutants: int = 128,
        surrogate: str = "gp",
        optimism: float = 1.0,
        batch_size: int = 5,
        acquisition: str = "ei",
    ) -> None:
        super().__init__(problem, seed=seed)
        for name, value in (("n_init", n_init), ("top_k", top_k)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.n_init = n_init
        self.top_k = top_k
        self.n_random = n_random
        self.n_mutants = n_mutants
        self.surrogate = surrogate
        if surrogate not in ("gp", "gp-hamming", "trees") and not surrogate.startswith(
            "predictor:"
        ):
            raise ValueError(
                f"surrogate must be 'gp', 'trees' or 'predictor:<name>', got {surrogate!r}"
            )
        self.optimism = optimism
        self._takes_rows = surrogate.startswith("predictor:")
        self.preferred_batch = batch_size
        if acquisition not in ("ei", "mean"):
            raise ValueError(f"acquisition must be 'ei' or 'mean', got {acquisition!r}")
        self.acquisition = acquisition
        self._seed = seed

    # ------------------------------------------------------------------ pool
    def _unseen(self, rows: np.ndarray) -> np.ndarray:
        """Rows that are neither told, pending nor repeated (nothing is marked)."""
        seen = self.archive.keys | self.pending
        keep = []
        for i, key in enumerate(row_keys(self.space, rows)):
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return rows[np.array(keep, dtype=np.int64)]

    def _exploration(self, seeds: np.ndarray) -> list[np.ndarray]:
        parts = [self.random_rows(self.n_random)]
        if self.n_mutants and len(seeds):
            pick = seeds[self.rng.integers(len(seeds), size=self.n_mutants)]
            parts.append(self.mutate_rows(self.mutate_rows(pick, 0.0), 0.0))
        return parts

    def _neighbourhood_pool(self, n: int, models: dict[str, Surrogate]) -> np.ndarray:
        """Neighbours of the best trials, best first, until enough likely-feasible ones."""
        order = self.archive.ranking()
        parts: list[np.ndarray] = []
        viable = 0
        for idx in order[: 4 * self.top_k]:
            nb = self._unseen(self.neighbour_rows(self.archive.rows[idx]))
            if not len(nb):
                continue
            parts.append(nb)
            viable += int(np.sum(self._feasibility(nb, models) >= 0.1))
            if viable >= self.top_k * n:
                break
        parts += self._exploration(self.archive.rows[order[: self.top_k]])
        return self._unseen(np.vstack(parts))

    def _front_pool(self) -> np.ndarray:
        arc = self.archive
        mask = pareto_mask(arc.F, arc.violation)
        seeds = arc.rows[mask] if mask.any() else arc.rows[arc.ranking()[: self.top_k]]
        parts = [self.neighbour_rows(r) for r in seeds] + self._exploration(seeds)
        return self._unseen(np.vstack(parts))

    # ------------------------------------------------------------------ models
    def _fit(self) -> dict[str, Surrogate]:
        models: dict[str, Surrogate] = {}
        X = self.archive.rows if self._takes_rows else self._encode(self.archive.rows)
        # objectives are fitted on normal scores of their ranks: a long tail of broken
        # networks must not drown the differences among good ones (order is all EI needs)
        self._scores = _normal_scores(self.archive.F)
        targets = {f"objective:{j}": self._scores[:, j] for j in range(self.archive.F.shape[1])}
        # positive constrained metrics (latency, MACs) are modelled in log space: their
        # effects compose multiplicatively and their tails are long
        self._log = {
            c.metric: bool(np.all(self.archive.columns[c.metric] > 0) and c.limit > 0)
            for c in self.problem.constraints.items
        }
        targets.update(
            {
                f"constraint:{c.metric}": self._constraint_target(c.metric)
                for c in self.problem.constraints.items
            }
        )
        for name, y in targets.items():
            model, _ = make_surrogate(self.surrogate, seed=self._seed, space=self.space)
            model.fit(X, y)
            models[name] = model
        return models

    def _constraint_target(self, metric: str) -> np.ndarray:
        values = self.archive.columns[metric]
        return np.log(values) if self._log[metric] else values

    def _predict(self, model: Surrogate, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return model.predict(rows if self._takes_rows else self._encode(rows))

    def _encode(self, rows: np.ndarray) -> np.ndarray:
        canon = canonical_rows(self.space, rows)
        offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        out = np.zeros((len(rows), int(self.sizes.sum())))
        r, c = np.nonzero(canon >= 0)
        out[r, offsets[c] + canon[r, c]] = 1.0
        return out

    def _feasibility(self, rows: np.ndarray, models: dict[str, Surrogate]) -> np.ndarray:
        prob = np.ones(len(rows))
        for c in self.problem.constraints.items:
            mean, std = self._predict(models[f"constraint:{c.metric}"], rows)
            limit = float(np.log(c.limit)) if self._log[c.metric] else c.limit
            std = np.maximum(std, 1e-6 * max(abs(limit), 1.0))
            z = (limit - mean) / std if c.bound == "upper" else (mean - limit) / std
            prob *= normal_cdf(z)
        return prob

    # ------------------------------------------------------------------ ask
    def ask_indices(self, n: int) -> np.ndarray:
        """The ``n`` pool candidates with the highest acquisition."""
        if len(self.archive) < self.n_init:
            return self.fresh(self.random_rows(2 * n), n)
        models = self._fit()
        k = len(self.problem.objectives.names)
        pool = self._neighbourhood_pool(n, models) if k == 1 else self._front_pool()
        if not len(pool):
            return self.fresh(self.random_rows(2 * n), n)
        preds = [self._predict(models[f"objective:{j}"], pool) for j in range(k)]
        p_feas = self._feasibility(pool, models)
        if k == 1:
            order = self._order_single(preds[0], p_feas)
        elif k == 2:
            order = self._order_pareto(preds, p_feas, n)
        else:
            order = self._order_chebyshev(preds, p_feas)
        return self.fresh(pool[order], n)

    def _order_single(self, pred: tuple[np.ndarray, np.ndarray], p_feas: np.ndarray) -> np.ndarray:
        mean, std = pred
        feas = self.archive.feasible()
        if feas.any():
            best = float(self._scores[feas, 0].min())
            if self.acquisition == "mean":
                return np.lexsort((mean, p_feas < 0.5))
            score = expected_improvement(mean, std, best) * p_feas
            # ties (EI ~ 0 everywhere): prefer the better predicted mean among likely-feasible
            tie = -mean * 1e-9 * p_feas
            return np.lexsort((-tie, -score))
        return np.argsort(-p_feas)

    def _order_pareto(
        self, preds: list[tuple[np.ndarray, np.ndarray]], p_feas: np.ndarray, n: int
    ) -> np.ndarray:
        arc = self.archive
        mask = pareto_mask(arc.F, arc.violation)
        front = arc.F[mask] if mask.any() else np.empty((0, 2))
        span = np.ptp(arc.F, axis=0) + 1e-12
        reference = arc.F.max(axis=0) + 0.1 * span
        means = np.stack([p[0] for p in preds], axis=1)
        stds = np.stack([p[1] for p in preds], axis=1)
        optimistic = means - self.optimism * stds
        chosen: list[int] = []
        available = np.ones(len(means), dtype=bool)
        for _ in range(min(n, len(means))):  # greedy batch, believing the predicted means
            score = hvi_2d(front, optimistic, reference) * p_feas
            score[~available] = -1.0
            best = int(np.argmax(score))
            if score[best] <= 0:
                break
            chosen.append(best)
            available[best] = False
            front = np.vstack([front, means[best]])
        rest = np.flatnonzero(available)
        dist = (
            np.min(np.abs(optimistic[rest, None, :] - front[None, :, :]).sum(axis=2), axis=1)
            if len(front)
            else np.zeros(len(rest))
        )
        rest = rest[np.lexsort((dist, p_feas[rest] < 0.5))]  # likely-feasible, near the front
        return np.concatenate([np.array(chosen, dtype=np.int64), rest])

    def _order_chebyshev(
        self, preds: list[tuple[np.ndarray, np.ndarray]], p_feas: np.ndarray
    ) -> np.ndarray:
        arc = self.archive
        lo, span = arc.F.min(axis=0), np.ptp(arc.F, axis=0) + 1e-12
        w = self.rng.dirichlet(np.ones(arc.F.shape[1]))
        means = np.stack([(p[0] - lo[j]) / span[j] for j, p in enumerate(preds)], axis=1)
        # smaller weighted Chebyshev distance to the ideal point is better; damp by feasibility
        score = (w * means).max(axis=1) + (1.0 - p_feas)
        return np.argsort(score)
