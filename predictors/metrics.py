"""Scores of a predictor (defined in :mod:`nas.scores`, which the flow shares).

Example:
    >>> scores(np.array([1.0, 2.0, 3.0]), np.array([1.1, 1.9, 3.2]))["kendall_tau"]
    1.0
"""

from __future__ import annotations

from nas.scores import kendall_tau, mape, rmse, scores, spearman

__all__ = ["kendall_tau", "mape", "rmse", "scores", "spearman"]
