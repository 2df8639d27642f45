"""The predictor interface: ``fit(archs, y)``, ``predict(archs)``, ``score(archs, y)``.

Every predictor maps architectures of one :class:`nas.SearchSpace` to a scalar (accuracy,
latency...). :class:`Predictor` is the protocol searchers depend on; :class:`BasePredictor`
does the shared work (encoding, validation, target centring, scoring, state for
:mod:`predictors.io`) so that an implementation only fits and predicts on a float matrix.

Searchers that hold architectures as index rows (value positions, one column per dimension,
as :meth:`nas.SearchSpace.from_index_matrix` takes them) call :meth:`BasePredictor.predict_indices`
and skip ``ArchConfig`` objects: it returns exactly what :meth:`BasePredictor.predict` returns
for the same architectures.

Example:
    >>> from predictors import create_predictor
    >>> p = create_predictor("ridge", space=space).fit(archs[:100], y[:100])
    >>> p.score(archs[100:], y[100:])["kendall_tau"]
    >>> p.predict_indices(space.indices(archs[:5]))   # == p.predict(archs[:5])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace
from predictors.encoding import ENCODERS, arch_indices, check_indices, encode_indices
from predictors.metrics import scores

State = tuple[dict[str, Any], dict[str, np.ndarray]]


@runtime_checkable
class Predictor(Protocol):
    """What a search needs from a predictor."""

    space: SearchSpace

    def fit(self, archs: Sequence[ArchConfig], y: ArrayLike) -> Predictor:
        """Fit on measured ``archs`` and their targets ``y``; returns ``self``."""
        ...

    def predict(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """One prediction per architecture (float64 vector)."""
        ...

    def score(self, archs: Sequence[ArchConfig], y: ArrayLike) -> dict[str, float]:
        """``kendall_tau``, ``spearman``, ``rmse`` and ``mape`` against the truth ``y``."""
        ...


@runtime_checkable
class UncertainPredictor(Predictor, Protocol):
    """A predictor that also reports its uncertainty (for Bayesian search)."""

    def predict_with_std(self, archs: Sequence[ArchConfig]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per architecture."""
        ...


class NotFittedError(RuntimeError):
    """``predict`` was called before ``fit``."""


class BasePredictor(ABC):
    """Shared machinery of the predictors in this package.

    Args:
        space: the search space of the architectures.
        encoder: the feature encoder (see :mod:`predictors.encoding`).
        log_target: fit ``log(y)`` and predict ``exp`` of it (for positive, multiplicative
            targets such as latency).

    Subclasses set :attr:`name`, implement :meth:`_fit` / :meth:`_predict` on encoded
    matrices, and :meth:`_get_state` / :meth:`_set_state` for saving.
    """

    name: ClassVar[str] = "base"

    def __init__(self, space: SearchSpace, *, encoder: str = "onehot", log_target: bool = False):
        if not isinstance(space, SearchSpace):
            raise ConfigError(f"space must be a nas.SearchSpace, got {type(space).__name__}")
        if encoder not in ENCODERS:
            raise ConfigError(f"encoder must be one of {list(ENCODERS)}, got {encoder!r}")
        self.space = space
        self.encoder = encoder
        self.log_target = bool(log_target)
        self._fitted = False
        self._n_features: int | None = None

    # ---------------------------------------------------------------- public API
    def config(self) -> dict[str, Any]:
        """The constructor keywords (without ``space``) that recreate this predictor."""
        return {"encoder": self.encoder, "log_target": self.log_target}

    def encode(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """The feature matrix this predictor sees for ``archs``."""
        return self._encode_idx(arch_indices(self.space, archs))

    def encode_indices(self, idx: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
        """:meth:`encode` of an index matrix (see :meth:`predict_indices`)."""
        return self._encode_idx(check_indices(self.space, idx))

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` (or loading) has happened."""
        return self._fitted

    def fit(self, archs: Sequence[ArchConfig], y: ArrayLike) -> BasePredictor:
        """Fit on ``archs`` and targets ``y`` (same length, finite); returns ``self``."""
        return self.fit_features(self.encode(archs), y)

    def fit_features(self, X: np.ndarray, y: ArrayLike) -> BasePredictor:
        """Fit on an already encoded matrix (see :meth:`encode`)."""
        target = self._check_target(X, y)
        self._n_features = int(X.shape[1])
        self._fit(np.asarray(X, dtype=np.float64), target)
        self._fitted = True
        return self

    def predict(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """One prediction per architecture."""
        return self._predict_idx(arch_indices(self.space, archs))

    def predict_indices(self, idx: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
        """:meth:`predict` for an index matrix ``(n, dims)``, without ``ArchConfig`` objects.

        Row ``r`` holds the position of each dimension's value among its allowed values
        (``space.indices(archs)``, or the rows ``space.from_index_matrix`` takes); positions
        of inactive dimensions are ignored (they may be -1). The result equals
        ``predict(space.from_index_matrix(idx))`` exactly, and is the fast path for searches.

        Raises:
            ValueError: wrong shape or positions out of range.
            NotFittedError: called before :meth:`fit`.
        """
        return self._predict_idx(check_indices(self.space, idx))

    def predict_features(self, X: np.ndarray) -> np.ndarray:
        """Predictions for an already encoded matrix."""
        self._check_fitted(X)
        if X.shape[0] == 0:
            return np.zeros(0)
        return self._output(self._predict(np.asarray(X, dtype=np.float64)))

    def score(self, archs: Sequence[ArchConfig], y: ArrayLike) -> dict[str, float]:
        """Kendall τ, Spearman ρ, RMSE and MAPE of the predictions against ``y``."""
        return scores(y, self.predict(archs))

    def get_state(self) -> State:
        """JSON-able metadata and named arrays that :meth:`set_state` restores."""
        self._check_fitted(None)
        meta, arrays = self._get_state()
        return {"n_features": self._n_features, **meta}, arrays

    def set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore a fitted predictor from :meth:`get_state` output."""
        self._n_features = int(meta["n_features"])
        self._set_state(meta, arrays)
        self._fitted = True

    # ---------------------------------------------------------------- for subclasses
    def _encode_idx(self, idx: np.ndarray) -> np.ndarray:
        """Features of a validated index matrix (inactive positions -1)."""
        return encode_indices(self.space, idx, self.encoder)

    def _predict_idx(self, idx: np.ndarray) -> np.ndarray:
        """Predictions for a validated index matrix; subclasses may add a faster path."""
        return self.predict_features(self._encode_idx(idx))

    def _output(self, out: np.ndarray) -> np.ndarray:
        """The model's output in the target's scale (undoes ``log_target``)."""
        return np.exp(out) if self.log_target else out

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on features ``X`` and (possibly log-transformed) targets ``y``."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray:
        """Predict (in the fitted target's scale) for features ``X``."""

    @abstractmethod
    def _get_state(self) -> State:
        """Metadata and arrays of the fitted model."""

    @abstractmethod
    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore the fitted model."""

    # ---------------------------------------------------------------- checks
    def _check_target(self, X: np.ndarray, y: ArrayLike) -> np.ndarray:
        target = np.asarray(y, dtype=np.float64).ravel()
        if X.ndim != 2 or X.shape[0] != target.size:
            raise ConfigError(f"got {X.shape[0]} architectures but {target.size} targets")
        if target.size < 2:
            raise ConfigError(f"fitting needs at least 2 architectures, got {target.size}")
        if not np.all(np.isfinite(target)):
            raise ConfigError("targets y must be finite (found NaN or inf)")
        if self.log_target:
            if np.any(target <= 0):
                raise ConfigError("log_target=True needs positive targets y")
            target = np.log(target)
        return target

    def _check_fitted(self, X: np.ndarray | None) -> None:
        if not self._fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")
        if X is not None and X.shape[1] != self._n_features:
            raise ConfigError(
                f"{type(self).__name__} was fitted on {self._n_features} features, got {X.shape[1]}"
            )
