"""Flow step 3: fit a predictor of a metric on the run's samples, with a cross-validated report.

Reads ``samples/<metric>.csv``, scores the predictor by k-fold cross-validation, refits it on
every sample and writes ``predictors/<metric>.json`` + ``.npz`` and the report
``predictors/<metric>_fit.json``.

Example:
    >>> report = fit_predictor("runs/tiny", predictor="rf", folds=5)
    >>> report.cv["kendall_tau"]
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import ConfigError, RunDirError
from nas.rundir import RunDir, atomic_write_json
from nas.scores import scores

DEFAULT_PREDICTOR = "rf"  # seconds at the sizes `collect_samples` produces


@dataclass(frozen=True, kw_only=True)
class FitReport:
    """What :func:`fit_predictor` wrote and how well the predictor ranks held-out samples."""

    metric: str
    predictor: str
    encoder: str | None
    n: int
    folds: int
    cv: dict[str, float]
    path: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def fit_predictor(
    run: RunDir | str | Path,
    *,
    metric: str | None = None,
    predictor: str = DEFAULT_PREDICTOR,
    encoder: str | None = None,
    folds: int = 5,
    seed: int = 0,
) -> FitReport:
    """Fit ``predictor`` on ``samples/<metric>.csv`` (default metric: the run's task metric).

    Args:
        run: the run with samples (see :func:`nas.flow.collect_samples`).
        metric: the column to predict (and the samples file to read).
        predictor: a name of :func:`nas.predictor.list_predictors`.
        encoder: the predictor's architecture encoding (default: the predictor's own).
        folds: cross-validation folds of the report (2 or more).
        seed: the fold assignment.
    """
    from nas.predictor import create_predictor, list_predictors, save_predictor

    if predictor not in list_predictors():
        raise ConfigError(f"unknown predictor {predictor!r}; available: {list_predictors()}")
    if not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"folds must be an int >= 2, got {folds!r}")
    run = run if isinstance(run, RunDir) else RunDir.open(run)
    metric = metric or run.task.metric
    samples = run.read_samples(metric, columns=[metric])
    needed = max(10, folds)
    if len(samples.archs) < needed:
        raise RunDirError(
            f"{run.samples_csv(metric)}: {len(samples.archs)} samples; at least {needed} are "
            f"needed for {folds}-fold cross-validation (collect more: nas predictors collect)"
        )
    y = samples.values(metric)
    if not np.all(np.isfinite(y)):
        raise RunDirError(f"{run.samples_csv(metric)}: column {metric!r} has missing values")
    options = {} if encoder is None else {"encoder": encoder}
    started = time.perf_counter()
    order = np.random.default_rng(seed).permutation(len(y)) % folds
    pred = np.zeros(len(y))
    for f in range(folds):
        train = np.flatnonzero(order != f)
        model = create_predictor(predictor, space=run.space, **options)
        model.fit([samples.archs[i] for i in train], y[train])
        test = np.flatnonzero(order == f)
        pred[test] = model.predict([samples.archs[i] for i in test])
    final = create_predictor(predictor, space=run.space, **options).fit(samples.archs, y)
    path = save_predictor(final, run.predictor_stem(metric))
    report = FitReport(metric=metric, predictor=predictor, encoder=encoder, n=len(y),
                       folds=folds, cv=scores(y, pred), path=str(path))
    atomic_write_json(run.predictor_report(metric), report.to_dict())
    run.record_timing(f"fit the {metric} predictor", time.perf_counter() - started)
    return report
