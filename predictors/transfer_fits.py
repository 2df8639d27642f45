"""The three kinds of fit :class:`predictors.transfer.TransferPredictor` compares: the priors'
non-negative mix, the device's own features alone, and the mix plus a residual on its own
features.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.optimize import nnls
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor, RidgeCV

RIDGE_ALPHAS = tuple(np.logspace(-3, 3, 13))
Fit = tuple[np.ndarray, float]


def _standardised(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = A.std(axis=0)
    return A.mean(axis=0), np.where(scale > 0, scale, 1.0)


def _fit_prior(A: np.ndarray, y: np.ndarray) -> Fit:
    """Non-negative weights of the priors' predictions, and a free intercept."""
    design = np.hstack([A, np.ones((len(A), 1)), -np.ones((len(A), 1))])
    w, _ = nnls(design, y)
    return w[:-2], float(w[-2] - w[-1])


def _fit_own(A: np.ndarray, y: np.ndarray, robust: bool) -> Fit:
    """Own features alone (no prior), standardised: Huber regression when ``robust``, else
    ridge with its penalty chosen by generalised cross-validation (features >= rows, where
    Huber's optimiser stops anywhere along a flat valley)."""
    mean, scale = _standardised(A)
    Z = (A - mean) / scale
    m: Any
    if robust:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = HuberRegressor(alpha=1e-2, max_iter=5000).fit(Z, y)
    else:
        m = RidgeCV(alphas=RIDGE_ALPHAS).fit(Z, y)
    coef = m.coef_ / scale
    return coef, float(m.intercept_ - coef @ mean)


def _fit_both(A: np.ndarray, y: np.ndarray, k: int) -> Fit:
    """The prior mix on the first ``k`` columns, then ridge of its residual on the rest
    (penalty chosen by generalised cross-validation)."""
    w, b = _fit_prior(A[:, :k], y)
    residual = y - A[:, :k] @ w - b
    mean, scale = _standardised(A[:, k:])
    r = RidgeCV(alphas=RIDGE_ALPHAS).fit((A[:, k:] - mean) / scale, residual)
    coef = r.coef_ / scale
    return np.concatenate([w, coef]), b + float(r.intercept_ - coef @ mean)
