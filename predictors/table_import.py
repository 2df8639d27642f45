"""Importing published latency measurements: a CSV of architectures → a fitted latency model.

:func:`read_arch_table` (from :mod:`nas.arch_table`, re-exported here) turns the rows of a
table into architectures. :func:`fit_latency_model` chooses a latency model by cross-validation
on those rows (see :mod:`predictors.model_selection`), refits it on every row and returns a
``nas.hardware.LatencyModel`` with its out-of-fold scores, the CV table and advice on how
much more to measure (``selection``); naming one predictor and encoder fits just that one.

Example:
    >>> archs, frame = read_arch_table("nb201.csv", space, ["arch"])
    >>> model = fit_latency_model(space, archs, frame["latency_ms_pixel3"].to_numpy())
    >>> model.selection["chosen"], model.selection["advice"]["message"]
    >>> profile = profile.with_model(model)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nas.arch_table import OFA_FIELDS, read_arch_table
from nas.errors import ConfigError
from nas.hardware.profile import LatencyModel
from nas.space import ArchConfig, SearchSpace
from predictors.encoding import ENCODERS
from predictors.io import predictor_to_json
from predictors.learning_curve import FRACTIONS, MeasureAdvice, advise, learning_curve
from predictors.metrics import scores
from predictors.model_selection import CANDIDATES, Candidate, Selection, select_model
from predictors.registry import create_predictor, list_predictors

__all__ = ["AUTO", "OFA_FIELDS", "fit_latency_model", "read_arch_table"]

AUTO = "auto"
"""``predictor``/``encoder`` value that leaves the choice to cross-validation."""


def fit_latency_model(
    space: SearchSpace,
    archs: Sequence[ArchConfig],
    latency_ms: Sequence[float] | np.ndarray,
    *,
    predictor: str = AUTO,
    encoder: str = AUTO,
    holdout: float = 0.2,
    folds: int = 5,
    candidates: Sequence[Candidate] = CANDIDATES,
    seed: int = 0,
    **kwargs: Any,
) -> LatencyModel:
    """A latency model for ``space`` fitted on measured ``archs``, chosen on these rows.

    With ``predictor`` and/or ``encoder`` left ``"auto"``, the matching ``candidates`` are
    compared by ``folds``-fold cross-validation (:func:`predictors.model_selection.select_model`:
    Kendall τ first, then RMSE); the best is refitted on every row. ``validation`` then holds
    its out-of-fold scores (``n_test`` = every row, ``n_train`` = rows per training fold) and
    ``selection`` the CV table, the learning curve and the advice on measuring more.
    Naming both fits that one predictor as before (any registry predictor and encoder):
    validation on a random ``holdout`` fraction, then a refit on every row; ``kwargs`` (only
    then) go to it.

    Raises:
        ConfigError (a ``ValueError``): mismatched lengths, non-finite latencies, too few
            rows, an unknown predictor or encoder, or ``kwargs`` without both predictor and
            encoder named.
    """
    y = np.asarray(latency_ms, dtype=np.float64).ravel()
    _check_rows(archs, y, holdout)
    if predictor != AUTO and encoder != AUTO:
        return _fit_one(space, archs, y, predictor, encoder, holdout, seed, kwargs)
    pool = _matching(candidates, predictor, encoder, kwargs)
    selection = select_model(space, archs, y, candidates=pool, folds=folds, seed=seed)
    chosen, best = selection.chosen, selection.best
    advice = _advice(space, archs, y, chosen, selection)
    with threadpool_limits(limits=1):
        final = chosen.make(space).fit(archs, y)
    fold_train = len(y) * (selection.folds - 1) / selection.folds
    validation = {
        "kendall_tau": best.kendall_tau,
        "spearman": best.spearman,
        "rmse": best.rmse,
        "mape": best.mape,
        "kendall_tau_std": best.kendall_tau_std,
        "n_train": float(fold_train),
        "n_test": float(len(y)),
    }
    return LatencyModel(
        space=space.name,
        fingerprint=space.fingerprint(),
        predictor=predictor_to_json(final),
        validation=validation,
        selection={**selection.to_dict(), "advice": advice.to_dict()},
    )


def _check_rows(archs: Sequence[ArchConfig], y: np.ndarray, holdout: float) -> None:
    if len(archs) != len(y):
        raise ConfigError(f"got {len(archs)} architectures but {len(y)} latencies")
    if not np.all(np.isfinite(y)):
        raise ConfigError("latency column has missing or non-finite values")
    if not 0 < holdout < 1:
        raise ConfigError(f"holdout must be in (0, 1), got {holdout}")
    if len(y) < 4:
        raise ConfigError(f"need at least 4 measured architectures, got {len(y)}")


def _matching(
    candidates: Sequence[Candidate], predictor: str, encoder: str, kwargs: dict[str, Any]
) -> list[Candidate]:
    """The candidates to cross-validate: those matching a named predictor or encoder."""
    if kwargs:
        raise ConfigError(
            f"options {sorted(kwargs)} apply to one predictor: name both predictor and encoder "
            f"(got predictor={predictor!r}, encoder={encoder!r})"
        )
    if predictor != AUTO and predictor not in list_predictors():
        raise ConfigError(f"unknown predictor {predictor!r}; allowed: {[AUTO, *list_predictors()]}")
    if encoder != AUTO and encoder not in ENCODERS:
        raise ConfigError(f"unknown encoder {encoder!r}; allowed: {[AUTO, *ENCODERS]}")
    pool = [
        c for c in candidates
        if predictor in (AUTO, c.predictor) and encoder in (AUTO, c.encoder)
    ]
    if not pool:
        raise ConfigError(
            f"no candidate matches predictor={predictor!r}, encoder={encoder!r}; candidates "
            f"are {[c.label for c in candidates]} (or name both predictor and encoder)"
        )
    return pool


def _advice(
    space: SearchSpace, archs: Sequence[ArchConfig], y: np.ndarray, chosen: Candidate,
    selection: Selection,
) -> MeasureAdvice:
    X = chosen.make(space).encode(archs)

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return chosen.make(space).fit_features(X[train], y[train]).predict_features(X[test])

    best = selection.best
    with threadpool_limits(limits=1):  # the full-size point is the selection's own CV
        curve = learning_curve(
            fit_predict, y, fractions=FRACTIONS[:-1], folds=selection.folds, seed=selection.seed
        )
    curve.append((len(y) * (selection.folds - 1) / selection.folds, best.kendall_tau))
    return advise(curve, n=len(y), tau=best.kendall_tau, tau_std=best.kendall_tau_std)


def _fit_one(
    space: SearchSpace, archs: Sequence[ArchConfig], y: np.ndarray, predictor: str,
    encoder: str, holdout: float, seed: int, kwargs: dict[str, Any],
) -> LatencyModel:
    """One named predictor: scored on a random ``holdout`` part, refitted on every row."""
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(2, round(holdout * len(y)))
    if len(y) - n_test < 2:
        raise ConfigError(f"need at least 4 measured architectures, got {len(y)}")
    test, train = order[:n_test], order[n_test:]
    make = lambda: create_predictor(predictor, space=space, encoder=encoder, **kwargs)  # noqa: E731
    X = make().encode(archs)
    held = make().fit_features(X[train], y[train])
    validation = {
        **scores(y[test], held.predict_features(X[test])),
        "n_train": float(len(train)),
        "n_test": float(len(test)),
    }
    final = make().fit_features(X, y)
    return LatencyModel(
        space=space.name,
        fingerprint=space.fingerprint(),
        predictor=predictor_to_json(final),
        validation=validation,
    )
