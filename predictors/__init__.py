"""Accuracy and latency predictors behind one interface (see ``predictors.base``).

Example:
    >>> from predictors import create_predictor
    >>> p = create_predictor("mlp", space=space).fit(archs, y)
    >>> p.score(test_archs, test_y)      # kendall_tau, spearman, rmse, mape
"""

from __future__ import annotations

from nas.predictor import register_predictor_backend
from predictors.base import BasePredictor, NotFittedError, Predictor, UncertainPredictor
from predictors.encoding import ENCODERS, encode
from predictors.io import load_predictor, save_predictor
from predictors.metrics import kendall_tau, mape, rmse, scores, spearman
from predictors.plugin import PredictorsBackend
from predictors.registry import create_predictor, list_predictors

register_predictor_backend(PredictorsBackend())

__all__ = [
    "ENCODERS",
    "BasePredictor",
    "NotFittedError",
    "Predictor",
    "UncertainPredictor",
    "create_predictor",
    "encode",
    "kendall_tau",
    "list_predictors",
    "load_predictor",
    "mape",
    "rmse",
    "save_predictor",
    "scores",
    "spearman",
]
