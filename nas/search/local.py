"""``local``: surrogate-guided local search (works on any discrete space).

Each batch: fit one surrogate per objective and constrained metric on every trial so far
(one-hot choices plus, for dimensions sharing their values, one-hot counts of each value,
plus joint one-hots of every pair of dimensions, which enter only the linear mean);
build a candidate pool: with one objective, every unmeasured network when the space is
small enough to enumerate (``enumerate_limit``; cheap surrogate means shortlist it), else the
one-change neighbourhoods of the best trials (the feasible front for several objectives),
two-change mutations of them and uniform random samples; score the pool with constrained
expected improvement (one objective) or optimistic hypervolume improvement times the
probability of feasibility (two objectives; random Chebyshev scalarisation beyond two) and
measure the top of the pool. Good networks have good neighbours; the surrogates decide
which few candidates are worth a measurement.

Example:
    >>> result = nas.search(space, evaluate, objectives={"accuracy": "max"},
    ...                     constraints={"latency_ms": 12.0}, searcher="local", budget=100)
"""

from __future__ import annotations

import numpy as np

from nas.errors import ConfigError
from nas.search.archive import IndexSearcher
from nas.search.base import Problem, row_keys
from nas.search.features import RowFeatures
from nas.search.pareto import hypervolume_improvement_2d as hvi_2d
from nas.search.pareto import pareto_mask
from nas.search.surrogate import (
    ArchPredictor,
    Surrogate,
    check_surrogate,
    expected_improvement,
    make_surrogate,
    normal_cdf,
)
from nas.space import SearchSpace


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


def _enumerate(space: SearchSpace, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One index row per distinct network of a small space, and its key."""
    rows = np.indices(tuple(int(x) for x in sizes)).reshape(len(sizes), -1).T.astype(np.int64)
    keys = np.asarray(row_keys(space, rows), dtype=np.int64)
    _, first = np.unique(keys, return_index=True)
    first.sort()
    return rows[first], keys[first]


class LocalSearcher(IndexSearcher):
    """Surrogate-guided local search.

    Args:
        problem: the space, objectives and constraints.
        seed: random seed.
        n_init: random trials before the surrogates take over.
        top_k: how many of the best trials (single objective) seed the neighbourhood.
        n_random: random candidates added to every pool (exploration).
        n_mutants: two-change mutants of the seeds added to every pool.
        surrogate: ``"gp"`` (default), ``"gp-hamming"``, ``"trees"`` or a model with
            ``fit(archs, y)`` and ``predict(archs)`` (e.g. a ``predictors`` instance; each
            objective and constraint fits its own copy).
        optimism: how many standard deviations the hypervolume acquisition adds.
        batch_size: preferred batch (small batches refit the surrogates more often).
        acquisition: ``"ei"`` (constrained expected improvement) or ``"mean"`` (pure
            exploitation: best predicted among likely-feasible candidates), one objective.
        enumerate_limit: with one objective, when the space has at most this many index rows,
            the pool is every unmeasured network (exact inner optimisation) instead of
            neighbourhoods (0: never).
        shortlist: with a large pool, only this many candidates (best by a bound that uses
            the surrogates' means and prior deviations) get the full posterior.
        exploit_every: with one objective, every this many model-guided batches uses the
            ``"mean"`` acquisition instead (0: never).
        log_constraints: model positive constrained metrics in log space (multiplicative
            effects) rather than as measured (additive effects, e.g. per-layer latency).
        feasibility_noise: the probability of feasibility includes the surrogate's fitted
            measurement noise (near the limit, noise decides), not only its uncertainty.
        count_features: add to the encoding how many dimensions take each value, for every
            set of dimensions with the same values (e.g. how many 3x3 convolutions): computed
            from the architecture alone, they let the surrogates share what any edge learns.
        pair_features: add one-hot of the joint values of every pair of dimensions (when
            there are at most ``features.MAX_PAIR_COLUMNS`` such columns), in the GP's linear mean
            only: it then captures pairwise interactions (one choice matters given another).
            Both are :class:`~nas.search.features.RowFeatures`.
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
        surrogate: str | ArchPredictor = "gp",
        optimism: float = 1.0,
        batch_size: int = 5,
        acquisition: str = "ei",
        enumerate_limit: int = 100_000,
        shortlist: int = 1500,
        exploit_every: int = 0,
        log_constraints: bool = False,
        feasibility_noise: bool = False,
        count_features: bool = True,
        pair_features: bool = True,
    ) -> None:
        super().__init__(problem, seed=seed)
        for name, value in (("n_init", n_init), ("top_k", top_k)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        check_surrogate(surrogate)
        if acquisition not in ("ei", "mean"):
            raise ConfigError(f"acquisition must be 'ei' or 'mean', got {acquisition!r}")
        self.n_init = n_init
        self.top_k = top_k
        self.n_random = n_random
        self.n_mutants = n_mutants
        self.surrogate = surrogate
        self.optimism = optimism
        self._takes_rows = not isinstance(surrogate, str)
        self.preferred_batch = batch_size
        self.acquisition = acquisition
        self._seed = seed
        self.shortlist = shortlist
        self.exploit_every = exploit_every
        self.log_constraints = log_constraints
        self.feasibility_noise = feasibility_noise
        self.features = RowFeatures(self.space, counts=count_features, pairs=pair_features)
        self._guided = 0  # model-guided batches asked so far
        self._all: tuple[np.ndarray, np.ndarray] | None = None
        self._all_X: np.ndarray | None = None
        if 0 < float(np.prod(self.sizes.astype(np.float64))) <= enumerate_limit:
            self._all = _enumerate(self.space, self.sizes)

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

    def _all_unseen(self) -> tuple[np.ndarray, np.ndarray]:
        """Every unmeasured network of the enumerated space and its encoding."""
        assert self._all is not None
        rows, keys = self._all
        if self._all_X is None:  # encoded once per searcher
            self._all_X = rows if self._takes_rows else self._encode(rows)
        seen = np.fromiter(self.archive.keys | self.pending, dtype=np.int64)
        keep = ~np.isin(keys, seen)
        return rows[keep], self._all_X[keep]

    def _shortlist(
        self, pool: np.ndarray, X: np.ndarray, models: dict[str, Surrogate], k: int
    ) -> np.ndarray:
        """The ``shortlist`` candidates with the best acquisition bound (cheap means only)."""
        if len(pool) <= self.shortlist or not all(
            hasattr(m, "predict_mean") for m in models.values()
        ):
            return pool
        p_ub = np.ones(len(pool))
        slack = np.full(len(pool), np.inf)  # predicted margin to the nearest limit, in sds
        for c in self.problem.constraints.items:
            model = models[f"constraint:{c.metric}"]
            mean = model.predict_mean(X)  # type: ignore[attr-defined]
            limit = float(np.log(c.limit)) if self._log[c.metric] else c.limit
            z = (limit - mean) if c.bound == "upper" else (mean - limit)
            sd = np.hypot(model.prior_std, self._noise_std(model))  # type: ignore[attr-defined]
            p_ub *= np.where(z >= 0, 1.0, normal_cdf(z / max(sd, 1e-12)))
            slack = np.minimum(slack, z / max(sd, 1e-12))
        means = [models[f"objective:{j}"].predict_mean(X) for j in range(k)]  # type: ignore[attr-defined]
        sds = [models[f"objective:{j}"].prior_std for j in range(k)]  # type: ignore[attr-defined]
        feas = self.archive.feasible()
        if k == 1 and feas.any():
            best = float(self._scores[feas, 0].min())
            bound = expected_improvement(means[0], np.full(len(pool), sds[0]), best) * p_ub
            order = np.lexsort((means[0], -bound))
        elif k == 2:
            arc = self.archive
            mask = pareto_mask(arc.F, arc.violation)
            front = self._scores[mask] if mask.any() else np.empty((0, 2))
            span = np.ptp(self._scores, axis=0) + 1e-12
            reference = self._scores.max(axis=0) + 0.1 * span
            optimistic = np.stack(means, axis=1) - self.optimism * np.array(sds)
            bound = hvi_2d(front, optimistic, reference) * p_ub
            order = np.lexsort((optimistic.sum(axis=1), -bound))
        elif k == 1:  # nothing feasible yet: the most surely feasible first
            order = np.lexsort((means[0], -slack))
        else:
            order = np.lexsort((means[0], -p_ub))
        return pool[order[: self.shortlist]]

    # ------------------------------------------------------------------ models
    def _fit(self) -> dict[str, Surrogate]:
        models: dict[str, Surrogate] = {}
        X = self.archive.rows if self._takes_rows else self._encode(self.archive.rows)
        # objectives are fitted on normal scores of their ranks: a long tail of broken
        # networks must not drown the differences among good ones (order is all EI needs)
        self._scores = _normal_scores(self.archive.F)
        targets = {f"objective:{j}": self._scores[:, j] for j in range(self.archive.F.shape[1])}
        # with log_constraints, positive constrained metrics are modelled in log space
        # (multiplicative effects, long tails); measured latency is closer to additive
        self._log = {
            c.metric: self.log_constraints
            and bool(np.all(self.archive.columns[c.metric] > 0) and c.limit > 0)
            for c in self.problem.constraints.items
        }
        targets.update(
            {
                f"constraint:{c.metric}": self._constraint_target(c.metric)
                for c in self.problem.constraints.items
            }
        )
        for name, y in targets.items():
            model, _ = make_surrogate(
                self.surrogate, seed=self._seed, space=self.space, groups=self.features.groups
            )
            model.fit(X, y)
            models[name] = model
        return models

    def _constraint_target(self, metric: str) -> np.ndarray:
        values = self.archive.columns[metric]
        return np.log(values) if self._log[metric] else values

    def _predict(self, model: Surrogate, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return model.predict(rows if self._takes_rows else self._encode(rows))

    def _encode(self, rows: np.ndarray) -> np.ndarray:
        return self.features.encode(rows)

    def _noise_std(self, model: Surrogate) -> float:
        return float(getattr(model, "noise_std", 0.0)) if self.feasibility_noise else 0.0

    def _feasibility(self, rows: np.ndarray, models: dict[str, Surrogate]) -> np.ndarray:
        prob = np.ones(len(rows))
        for c in self.problem.constraints.items:
            model = models[f"constraint:{c.metric}"]
            mean, std = self._predict(model, rows)
            # a measurement, not the latent mean, decides feasibility: add the fitted noise
            std = np.hypot(std, self._noise_std(model))
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
        if k > 1:  # fronts grow best from their own neighbourhoods (measured on NB201)
            pool = self._front_pool()
        elif self._all is not None:
            pool = self._shortlist(*self._all_unseen(), models, k)
        else:
            pool = self._neighbourhood_pool(n, models)
        if not len(pool):
            return self.fresh(self.random_rows(2 * n), n)
        preds = [self._predict(models[f"objective:{j}"], pool) for j in range(k)]
        p_feas = self._feasibility(pool, models)
        self._guided += 1
        if k == 1:
            exploit = self.exploit_every > 0 and self._guided % self.exploit_every == 0
            order = self._order_single(preds[0], p_feas, "mean" if exploit else self.acquisition)
        elif k == 2:
            order = self._order_pareto(preds, p_feas, n)
        else:
            order = self._order_chebyshev(preds, p_feas)
        if self.problem.constraints.items and not self.archive.feasible().any():
            # nothing feasible yet: surrogates fitted on infeasible trials alone extrapolate
            # badly, so half of the batch explores uniformly
            ranked = self.fresh(pool[order], n - n // 2)
            return np.vstack([ranked, self.fresh(self.random_rows(4 * n), n - len(ranked))])
        return self.fresh(pool[order], n)

    def _order_single(
        self, pred: tuple[np.ndarray, np.ndarray], p_feas: np.ndarray, acquisition: str
    ) -> np.ndarray:
        mean, std = pred
        feas = self.archive.feasible()
        if feas.any():
            best = float(self._scores[feas, 0].min())
            if acquisition == "mean":
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
        # the surrogates predict normal scores: the front and reference live in that space too
        front = self._scores[mask] if mask.any() else np.empty((0, 2))
        span = np.ptp(self._scores, axis=0) + 1e-12
        reference = self._scores.max(axis=0) + 0.1 * span
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
