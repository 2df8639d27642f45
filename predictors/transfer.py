"""A new device from few measurements, with other devices' latency models as prior (HELP-style).

Latency rankings transfer across devices: most devices are close to a non-negative mix of
others. :class:`TransferPredictor` gets fitted predictors of *other* devices (``priors``) and a
handful (~20) of measured architectures on the new one, and chooses by leave-one-out error
(10-fold beyond 30 points) among three fits:

* ``prior``: non-negative least squares on the priors' predictions (plus an intercept);
* ``own``: a robust (Huber) linear model on the space's ``compact`` features alone, for a
  device unlike any prior (on NAS-Bench-201, Pixel 3 prunes dead ops where others do not);
* ``both``: ridge on the priors' predictions and the compact features together.

Example:
    >>> priors = [load_profile(n).latency_predictor("nb201") for n in others]
    >>> p = TransferPredictor(space, priors=priors).fit(archs20, latency20)
    >>> p.choice   # which fit leave-one-out preferred
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import nnls
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor, Ridge

from nas.space import ArchConfig, SearchSpace
from predictors.base import BasePredictor, State

CHOICES = ("prior", "own", "both")
MAX_LOO = 30


def _fit_choice(choice: str, A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of one candidate fit on design ``A``."""
    if choice == "prior":
        design = np.hstack([A, np.ones((len(A), 1)), -np.ones((len(A), 1))])
        w, _ = nnls(design, y)
        return w[:-2], float(w[-2] - w[-1])
    if choice == "own":
        scale = A.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        mean = A.mean(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = HuberRegressor(alpha=1e-2, max_iter=5000).fit((A - mean) / scale, y)
        coef = m.coef_ / scale
        return coef, float(m.intercept_ - coef @ mean)
    r = Ridge(alpha=1.0).fit(A, y)
    return np.asarray(r.coef_), float(r.intercept_)


class TransferPredictor(BasePredictor):
    """Latency on a new device from few measurements and other devices' predictors.

    Args:
        space: the search space.
        priors: fitted predictors of other devices (same space).
        encoder: the encoder of the device's own features (``compact`` by default).
        choice: force one of :data:`CHOICES` instead of choosing by leave-one-out error.
    """

    name = "transfer"

    def __init__(
        self,
        space: SearchSpace,
        *,
        priors: Sequence[BasePredictor] = (),
        encoder: str = "compact",
        choice: str | None = None,
        log_target: bool = False,
    ) -> None:
        super().__init__(space, encoder=encoder, log_target=log_target)
        if choice is not None and choice not in CHOICES:
            raise ValueError(f"choice must be one of {list(CHOICES)} or None, got {choice!r}")
        for i, prior in enumerate(priors):
            if not isinstance(prior, BasePredictor) or not prior.fitted:
                raise ValueError(f"priors[{i}] must be a fitted predictor")
            if prior.space.name != space.name:
                raise ValueError(
                    f"priors[{i}] predicts space {prior.space.name!r}, not {space.name!r}"
                )
        self.priors = list(priors)
        self.forced = choice
        self.choice: str | None = None
        self.loo_errors: dict[str, float] = {}
        self._coef = np.zeros(0)
        self._intercept = 0.0

    def config(self) -> dict[str, Any]:
        return {**super().config(), "choice": self.forced}

    def fit(self, archs: Sequence[ArchConfig], y: Any) -> TransferPredictor:
        """Fit on the new device's measured ``archs`` (as few as ~20) and latencies ``y``."""
        super().fit(archs, y)
        return self

    def _encode_idx(self, idx: np.ndarray) -> np.ndarray:
        """The priors' predictions, then the device's own features."""
        own = super()._encode_idx(idx)
        if not self.priors:
            return own
        prior = np.column_stack([p.predict_indices(idx) for p in self.priors])
        return np.hstack([prior, own])

    def _design(self, X: np.ndarray, choice: str) -> np.ndarray:
        k = len(self.priors)
        if choice == "prior":
            return X[:, :k]
        if choice == "own":
            return X[:, k:]
        return X

    def _candidates(self) -> list[str]:
        if self.forced is not None:
            return [self.forced]
        return list(CHOICES) if self.priors else ["own"]

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        candidates = self._candidates()
        if "prior" in candidates and not self.priors:
            raise ValueError("choice='prior' needs at least one prior predictor")
        self.loo_errors = {}
        if len(candidates) > 1:
            for choice in candidates:
                A = self._design(X, choice)
                # leave-one-out while it is cheap (the few-shot case), else 10-fold
                fold = np.arange(len(y)) % (len(y) if len(y) <= MAX_LOO else 10)
                errors: list[float] = []
                for f in np.unique(fold):
                    keep = fold != f
                    coef, b = _fit_choice(choice, A[keep], y[keep])
                    errors.extend(np.abs(A[~keep] @ coef + b - y[~keep]).tolist())
                self.loo_errors[choice] = float(np.median(errors))
            self.choice = min(self.loo_errors, key=self.loo_errors.__getitem__)
        else:
            self.choice = candidates[0]
        coef, self._intercept = _fit_choice(self.choice, self._design(X, self.choice), y)
        full = np.zeros(X.shape[1])
        k = len(self.priors)
        if self.choice == "prior":
            full[:k] = coef
        elif self.choice == "own":
            full[k:] = coef
        else:
            full[:] = coef
        self._coef = full

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self._coef + self._intercept

    def _get_state(self) -> State:
        meta: dict[str, Any] = {
            "choice": self.choice,
            "intercept": self._intercept,
            "loo_errors": self.loo_errors,
            "priors": [],
        }
        arrays: dict[str, np.ndarray] = {"coef": self._coef}
        from predictors.io import predictor_to_dict

        for i, prior in enumerate(self.priors):
            p_meta, p_arrays = predictor_to_dict(prior)
            meta["priors"].append(p_meta)
            arrays.update({f"p{i}.{k}": v for k, v in p_arrays.items()})
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        from predictors.io import predictor_from_dict

        self.priors = []
        for i, p_meta in enumerate(meta.get("priors", [])):
            prefix = f"p{i}."
            sub = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            self.priors.append(predictor_from_dict(p_meta, sub, self.space))
        self.choice = meta["choice"]
        self.loo_errors = dict(meta.get("loo_errors", {}))
        self._intercept = float(meta["intercept"])
        self._coef = np.asarray(arrays["coef"], dtype=np.float64)
