"""scikit-learn regressors behind the predictor interface: ridge, huber, svr, gbm, rf, et.

Saving never pickles a model. Linear models (``ridge``, ``huber``) are stored as their
coefficients and predict with one matrix product. The others are stored as their training
matrix and targets (plus hyper-parameters) and refitted when loaded: every estimator is
seeded, so the refit is the same model (same scikit-learn version).

Example:
    >>> p = SklearnPredictor(space, model="svr", encoder="features").fit(archs, y)
    >>> p.predict(archs[:3])
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from nas.errors import ConfigError
from nas.space import SearchSpace
from predictors.base import BasePredictor, State
from predictors.encoding import ONEHOT_LED, dense_part, onehot_columns, onehot_width

LINEAR_MODELS = ("ridge", "huber")
MODELS = ("ridge", "huber", "svr", "gbm", "rf", "et")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "ridge": {"alpha": 1.0},
    "huber": {"alpha": 1e-2, "epsilon": 1.35, "max_iter": 5000},
    "svr": {"C": 10.0, "epsilon": 0.1, "gamma": "scale"},
    "gbm": {
        "n_estimators": 200,
        "max_depth": 3,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "random_state": 0,
    },
    "rf": {"n_estimators": 300, "min_samples_leaf": 2, "random_state": 0, "n_jobs": 1},
    "et": {"n_estimators": 300, "max_features": 0.5, "random_state": 0, "n_jobs": 1},
}


def _estimator(model: str, params: dict[str, Any]) -> Any:
    if model == "ridge":
        return Ridge(**params)
    if model == "huber":
        # Huber is scale-sensitive: standardise, then fold the scaler into the coefficients
        return make_pipeline(StandardScaler(), HuberRegressor(**params))
    if model == "svr":
        return SVR(**params)
    if model == "gbm":
        return GradientBoostingRegressor(**params)
    if model == "rf":
        return RandomForestRegressor(**params)
    if model == "et":
        return ExtraTreesRegressor(**params)
    raise ConfigError(f"model must be one of {list(MODELS)}, got {model!r}")


class SklearnPredictor(BasePredictor):
    """A scikit-learn regressor on the space's encoding.

    Args:
        space: the search space.
        model: one of :data:`MODELS`.
        encoder: feature encoder (``onehot``, ``features``, ``compact``...).
        log_target: fit ``log(y)``.
        params: estimator keyword arguments overriding the defaults.
    """

    name = "sklearn"

    def __init__(
        self,
        space: SearchSpace,
        *,
        model: str = "ridge",
        encoder: str = "onehot",
        log_target: bool = False,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(space, encoder=encoder, log_target=log_target)
        if model not in MODELS:
            raise ConfigError(f"model must be one of {list(MODELS)}, got {model!r}")
        self.model = model
        self.params = {**_DEFAULTS[model], **(params or {})}
        _estimator(model, self.params)  # fail early on bad params names
        self._estimator: Any = None
        self._coef: np.ndarray | None = None
        self._intercept = 0.0
        self._train: tuple[np.ndarray, np.ndarray] | None = None

    def config(self) -> dict[str, Any]:
        # the model name is the registry name (``predictors.registry.predictor_kind``)
        return {**super().config(), "params": self.params}

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        est = _estimator(self.model, self.params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        if self.model in LINEAR_MODELS:
            self._coef, self._intercept = _linear_coefficients(est)
            self._estimator = None
        else:
            self._estimator = est
            self._train = (X, y)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if self._coef is not None:
            return X @ self._coef + self._intercept
        return np.asarray(self._estimator.predict(X), dtype=np.float64)

    def _predict_idx(self, idx: np.ndarray) -> np.ndarray:
        # a linear model on a one-hot-led encoding: gather-sum its coefficients per row
        # instead of building the one-hot matrix
        if self._coef is None or self.encoder not in ONEHOT_LED:
            return super()._predict_idx(idx)
        self._check_fitted(None)
        width = onehot_width(self.space)
        out = np.append(self._coef[:width], 0.0)[onehot_columns(self.space, idx)].sum(axis=1)
        rest = dense_part(self.space, idx, self.encoder)
        if rest is not None:
            out += rest @ self._coef[width:]
        return self._output(out + self._intercept)

    def _get_state(self) -> State:
        if self._coef is not None:
            return {"kind": "linear", "intercept": self._intercept}, {"coef": self._coef}
        assert self._train is not None
        X, y = self._train
        return {"kind": "refit"}, {"train_X": X, "train_y": y}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if meta.get("kind") == "linear":
            self._coef = np.asarray(arrays["coef"], dtype=np.float64)
            self._intercept = float(meta["intercept"])
        else:
            self._fit(np.asarray(arrays["train_X"]), np.asarray(arrays["train_y"]))


def _linear_coefficients(est: Any) -> tuple[np.ndarray, float]:
    """``(coef, intercept)`` of a fitted linear model or a scaler + linear pipeline."""
    if hasattr(est, "steps"):
        scaler, linear = est.steps[0][1], est.steps[-1][1]
        scale = np.where(scaler.scale_ == 0, 1.0, scaler.scale_)
        coef = linear.coef_ / scale
        return coef, float(linear.intercept_ - np.dot(coef, scaler.mean_))
    return np.asarray(est.coef_, dtype=np.float64), float(est.intercept_)
