"""Surrogate models for predictor-in-the-loop searchers (``local``, ``linas``).

A tiny local protocol (:class:`Surrogate`: ``fit(X, y)``, ``predict(X) -> (mean, std)`` on
encoded matrices) so searchers do not depend on the ``predictors/`` package (nor on torch):
a Gaussian process with a Hamming kernel (:class:`GPSurrogate`, the default) or a
scikit-learn extra-trees ensemble whose spread across trees gives the uncertainty. Any model
with ``fit(archs, y)`` and ``predict(archs)`` (an :class:`ArchPredictor`, e.g. a
``predictors.create_predictor(...)`` instance the caller built) plugs in through
:class:`PredictorSurrogate`.

Example:
    >>> model, takes_rows = make_surrogate("trees", seed=0, space=space)
    >>> model.fit(X, y)
    >>> mean, std = model.predict(X_new)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace


class Surrogate(Protocol):
    """A regression model on encoded architectures with an uncertainty estimate."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on rows ``X`` (encodings) and targets ``y``."""
        ...

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per row."""
        ...


class TreesSurrogate:
    """Extra-trees ensemble; ``std`` is the spread of the trees' predictions.

    Args:
        seed: random seed.
        n_estimators: trees in the ensemble.
    """

    def __init__(self, *, seed: int = 0, n_estimators: int = 48) -> None:
        self.seed = seed
        self.n_estimators = n_estimators
        self._model: Any = None
        self._const: float | None = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit the ensemble (a constant model when there are fewer than 2 points)."""
        from sklearn.ensemble import ExtraTreesRegressor

        y = np.asarray(y, dtype=np.float64)
        if len(y) < 2 or np.ptp(y) == 0:
            self._const = float(y.mean()) if len(y) else 0.0
            return
        self._const = None
        self._model = ExtraTreesRegressor(
            n_estimators=self.n_estimators, random_state=self.seed, n_jobs=1, min_samples_leaf=1
        )
        self._model.fit(X, y)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and across-tree standard deviation."""
        if self._const is not None or self._model is None:
            const = 0.0 if self._const is None else self._const
            return np.full(len(X), const), np.zeros(len(X))
        per_tree = np.stack([t.predict(X) for t in self._model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)


class GPSurrogate:
    """Ridge mean plus a Gaussian process on the residuals, with a weighted Hamming kernel.

    The linear part captures additive per-choice effects (latency is nearly additive); the GP
    captures what nearby networks (one or two changes apart) share. Each dimension's weight in
    the Hamming distance is the spread of its ridge coefficients (dimensions that matter more
    make networks less alike); kernel length and noise are picked by log marginal likelihood
    on a small grid. Pure numpy, O(n^3) in the number of trials (fine up to a few thousand).

    Args:
        groups: the dimension of each one-hot column (``None``: unweighted Hamming); columns
            of a negative group enter the linear mean only, not the kernel.
        alpha: ridge penalty of the linear mean (targets are standardised).
    """

    LENGTHS = (0.5, 1.0, 2.0, 4.0)
    NOISES = (1e-3, 1e-2, 1e-1, 0.3)

    def __init__(self, *, groups: np.ndarray | None = None, alpha: float = 1.0) -> None:
        self.groups = None if groups is None else np.asarray(groups, dtype=np.int64)
        self.alpha = alpha

    def _hamming(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        # one-hot rows: the weighted squared distance / 2 sums the weights of differing dims
        Aw = A * self._col_weight
        sq = (
            Aw.sum(axis=1)[:, None] + (B * self._col_weight).sum(axis=1)[None, :] - 2.0 * (Aw @ B.T)
        )
        return np.maximum(sq, 0.0) / 2.0

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit the linear mean, weight the dimensions, pick the kernel by marginal likelihood."""
        from scipy.linalg import cho_solve

        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self._mu = float(y.mean()) if len(y) else 0.0
        self._sd = float(y.std()) if len(y) > 1 and y.std() > 0 else 1.0
        yn = (y - self._mu) / self._sd
        Xa = np.hstack([X, np.ones((len(X), 1))])
        reg = self.alpha * np.eye(Xa.shape[1])
        reg[-1, -1] = 1e-8
        self._w = np.linalg.solve(Xa.T @ Xa + reg, Xa.T @ yn)
        r = yn - Xa @ self._w
        self._kcols, self._col_weight = self._kernel_columns(X.shape[1])
        self._X = X[:, self._kcols]
        s2 = max(float(r.var()), 1e-4)
        H = self._hamming(self._X, self._X)
        best: tuple[float, float, float, np.ndarray, np.ndarray] | None = None
        for ell in self.LENGTHS:
            K0 = s2 * np.exp(-H / ell)
            for noise in self.NOISES:
                K = K0 + (noise + 1e-8) * np.eye(len(X))
                try:
                    L = np.linalg.cholesky(K)
                except np.linalg.LinAlgError:
                    continue
                a = cho_solve((L, True), r)
                lml = -0.5 * r @ a - np.log(np.diag(L)).sum()
                if best is None or lml > best[0]:
                    best = (lml, ell, noise, L, a)
        if best is None:  # pragma: no cover - the largest noise always factorises
            raise ConfigError("GP surrogate: no kernel setting could be fitted")
        _, self._ell, self._noise, self._L, self._a = best
        self._s2 = s2

    def _kernel_columns(self, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
        """Which columns enter the kernel, and each one's weight: its group's spread of
        fitted ridge coefficients, relative to the mean spread (at least 0.1)."""
        if self.groups is None or len(self.groups) != n_columns:
            return np.ones(n_columns, dtype=bool), np.ones(n_columns)
        kcols = self.groups >= 0
        coef = self._w[:-1]
        n_dims = int(self.groups.max()) + 1
        spread = np.array(
            [
                np.ptp(coef[self.groups == g]) if np.any(self.groups == g) else 0.0
                for g in range(n_dims)
            ]
        )
        if spread.max() > 0:
            weight = np.maximum(spread / spread.mean(), 0.1)
            return kcols, weight[self.groups[kcols]]
        return kcols, np.ones(int(kcols.sum()))

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation (of the latent function)."""
        from scipy.linalg import solve_triangular

        X = np.asarray(X, dtype=np.float64)
        Xa = np.hstack([X, np.ones((len(X), 1))])
        Ks = self._s2 * np.exp(-self._hamming(X[:, self._kcols], self._X) / self._ell)
        mean = Xa @ self._w + Ks @ self._a
        v = solve_triangular(self._L, Ks.T, lower=True)
        var = np.maximum(self._s2 - (v**2).sum(axis=0), 1e-12)
        return mean * self._sd + self._mu, np.sqrt(var) * self._sd

    def predict_mean(self, X: np.ndarray) -> np.ndarray:
        """Posterior mean only (no triangular solve: cheap on a whole enumerated space).

        One-hot rows factor the kernel: ``exp(-d_ij / l) = u_i v_j exp(g_ij / l)`` with
        ``g = (X w) X_train^T``, so one float32 product and one ``exp`` pass suffice.
        """
        X = np.asarray(X, dtype=np.float64)
        Xk, w = X[:, self._kcols], self._col_weight
        sa, sb = (Xk * w).sum(axis=1), (self._X * w).sum(axis=1)
        # exponents are at most sa_i / (2 l): float32 unless that could overflow it
        dtype = np.float32 if len(X) and 0.5 * sa.max() / self._ell < 80 else np.float64
        G = (Xk * w).astype(dtype) @ self._X.T.astype(dtype)
        G -= (0.5 * sb).astype(dtype)[None, :]  # sa_i stays out (factored below)
        G *= dtype(1.0 / self._ell)
        np.exp(G, out=G)
        right = (self._a * self._s2).astype(dtype)
        gp = (G @ right).astype(np.float64) * np.exp(-0.5 * sa / self._ell)
        mean = X @ self._w[:-1] + self._w[-1] + gp
        return mean * self._sd + self._mu

    @property
    def prior_std(self) -> float:
        """The largest posterior standard deviation any point can have."""
        return float(np.sqrt(self._s2) * self._sd)

    @property
    def noise_std(self) -> float:
        """The fitted observation noise (what a new measurement adds to ``predict``'s std)."""
        return float(np.sqrt(self._noise) * self._sd)


@runtime_checkable
class ArchPredictor(Protocol):
    """A regression model on architectures (e.g. a ``predictors`` model)."""

    def fit(self, archs: Sequence[ArchConfig], y: np.ndarray) -> Any:
        """Fit on ``archs`` and their targets ``y``."""
        ...

    def predict(self, archs: Sequence[ArchConfig]) -> Any:
        """One prediction per architecture."""
        ...


class PredictorSurrogate:
    """An :class:`ArchPredictor` behind the :class:`Surrogate` protocol (``std`` is its
    training RMSE, constant); it takes index rows, decoded into architectures.

    Args:
        predictor: the model (fitted in place by :meth:`fit`).
        space: the search space of the rows.
    """

    def __init__(self, predictor: ArchPredictor, space: SearchSpace) -> None:
        self.space = space
        self._model = predictor
        self._rmse = 0.0

    def fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """``X`` here are index rows (see :func:`make_surrogate`)."""
        archs = self.space.from_index_matrix(X.astype(np.int64))
        self._model.fit(archs, np.asarray(y))
        pred = np.asarray(self._model.predict(archs), dtype=np.float64)
        self._rmse = float(np.sqrt(np.mean((pred - y) ** 2)))

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and the constant training RMSE."""
        archs = self.space.from_index_matrix(X.astype(np.int64))
        pred = np.asarray(self._model.predict(archs), dtype=np.float64)
        return pred, np.full(len(pred), self._rmse)


SURROGATES = ("gp", "gp-hamming", "trees")


def check_surrogate(kind: str | ArchPredictor) -> None:
    """Raise ``ValueError`` unless :func:`make_surrogate` accepts ``kind``."""
    if isinstance(kind, str) and kind in SURROGATES:
        return
    if not isinstance(kind, str) and isinstance(kind, ArchPredictor):
        return
    raise ConfigError(
        f"surrogate must be one of {list(SURROGATES)} or a model with fit(archs, y) and "
        f"predict(archs), got {kind!r}"
    )


def make_surrogate(
    kind: str | ArchPredictor,
    *,
    seed: int,
    space: SearchSpace,
    groups: np.ndarray | None = None,
) -> tuple[Surrogate, bool]:
    """A surrogate and whether it takes index rows (``True``) rather than one-hot encodings.

    ``kind`` is ``"gp"``, ``"gp-hamming"`` (unweighted kernel), ``"trees"`` or an
    :class:`ArchPredictor` instance (each call wraps a deep copy of it, so every target gets
    its own model); ``groups`` names the feature group of each encoded column (default: one
    per dimension).
    """
    check_surrogate(kind)
    if not isinstance(kind, str):
        return PredictorSurrogate(copy.deepcopy(kind), space), True
    if kind in ("gp", "gp-hamming"):
        if groups is None:
            groups = np.repeat(
                np.arange(len(space.choices)), [len(c.values) for c in space.choices]
            )
        return GPSurrogate(groups=groups if kind == "gp" else None), False
    return TreesSurrogate(seed=seed), False


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorised."""
    from scipy.special import ndtr

    return np.asarray(ndtr(z))


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """EI of minimising below ``best`` under a normal belief."""
    std = np.maximum(std, 1e-9)
    z = (best - mean) / std
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    return np.maximum((best - mean) * normal_cdf(z) + std * pdf, 0.0)
