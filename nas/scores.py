"""Scores of a prediction: rank agreement (Kendall τ, Spearman ρ) and error (RMSE, MAPE).

Example:
    >>> scores(np.array([1.0, 2.0, 3.0]), np.array([1.1, 1.9, 3.2]))["kendall_tau"]
    1.0
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from nas.errors import ConfigError


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ConfigError(f"y_true has {t.size} values but y_pred has {p.size}")
    if t.size < 2:
        raise ConfigError(f"scoring needs at least 2 values, got {t.size}")
    return t, p


def kendall_tau(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Kendall's τ-b between truth and prediction (0.0 when either is constant)."""
    t, p = _pair(y_true, y_pred)
    value = stats.kendalltau(t, p).statistic
    return 0.0 if np.isnan(value) else float(value)


def spearman(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Spearman's ρ between truth and prediction (0.0 when either is constant)."""
    t, p = _pair(y_true, y_pred)
    value = stats.spearmanr(t, p).statistic
    return 0.0 if np.isnan(value) else float(value)


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, in the units of ``y``."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute percentage error, in percent (``y_true`` must be non-zero)."""
    t, p = _pair(y_true, y_pred)
    if np.any(t == 0):
        raise ConfigError("MAPE is undefined when a true value is 0")
    return float(np.mean(np.abs((p - t) / t)) * 100.0)


def scores(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """All four scores; ``mape`` is NaN when a true value is 0."""
    t, p = _pair(y_true, y_pred)
    return {
        "kendall_tau": kendall_tau(t, p),
        "spearman": spearman(t, p),
        "rmse": rmse(t, p),
        "mape": mape(t, p) if np.all(t != 0) else float("nan"),
    }
