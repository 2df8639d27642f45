"""Importing published latency measurements: a CSV of architectures → a fitted latency model.

:func:`read_arch_table` turns the rows of a table into architectures (a cell-string column
parsed by ``space.parse``, Once-for-All ``ks/e/d/r`` columns by ``space.from_ofa``, or one
column per dimension). :func:`fit_latency_model` scores a predictor on a held-out part, refits
it on every row and returns a ``nas.hardware.LatencyModel`` with that validation score.

Example:
    >>> archs, frame = read_arch_table("nb201.csv", space, ["arch"])
    >>> model = fit_latency_model(space, archs, frame["latency_ms_pixel3"].to_numpy())
    >>> profile = profile.with_model(model)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.hardware.profile import LatencyModel
from nas.space import ArchConfig, InvalidArchError, SearchSpace
from predictors.io import predictor_to_json
from predictors.metrics import scores
from predictors.registry import create_predictor

OFA_FIELDS = ("ks", "e", "d", "r", "w", "image_size")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value.item() if isinstance(value, np.generic) else value


def read_arch_table(
    path: str | Path, space: SearchSpace, arch_columns: Sequence[str]
) -> tuple[list[ArchConfig], pd.DataFrame]:
    """The architectures of every row of CSV ``path`` and the table itself.

    Raises:
        ValueError: a column is missing, or a row does not parse (naming file, row, column).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    frame = pd.read_csv(path)
    missing = [c for c in arch_columns if c not in frame.columns]
    if missing or not arch_columns:
        raise ValueError(
            f"{path}: arch column(s) {missing or '(none given)'} not in the table; "
            f"columns are {list(frame.columns)}"
        )
    archs = []
    for row, values in enumerate(frame[list(arch_columns)].itertuples(index=False), start=2):
        try:
            archs.append(_arch_of_row(space, list(arch_columns), [_cell(v) for v in values]))
        except (InvalidArchError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(
                f"{path}: line {row}, columns {list(arch_columns)} do not parse as an "
                f"architecture of {space.name!r}: {exc}"
            ) from None
    return archs, frame


def _arch_of_row(space: SearchSpace, columns: list[str], values: list[Any]) -> ArchConfig:
    if len(columns) == 1 and isinstance(values[0], str) and hasattr(space, "parse"):
        arch: ArchConfig = space.parse(values[0])
        return arch
    if set(columns) <= set(OFA_FIELDS):
        return space.from_ofa(dict(zip(columns, values)))
    if len(columns) == 1 and isinstance(values[0], dict):
        return space.from_json(values[0])
    return space.arch(dict(zip(columns, values)))


def fit_latency_model(
    space: SearchSpace,
    archs: Sequence[ArchConfig],
    latency_ms: Sequence[float] | np.ndarray,
    *,
    predictor: str = "huber",
    encoder: str = "compact",
    holdout: float = 0.2,
    seed: int = 0,
    **kwargs: Any,
) -> LatencyModel:
    """Fit ``predictor`` on measured latencies; validation on a random ``holdout`` fraction.

    The stored model is refitted on every row; ``validation`` holds the held-out scores and
    ``n_train``/``n_test``.
    """
    y = np.asarray(latency_ms, dtype=np.float64)
    if len(archs) != len(y):
        raise ValueError(f"got {len(archs)} architectures but {len(y)} latencies")
    if not np.all(np.isfinite(y)):
        raise ValueError("latency column has missing or non-finite values")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(2, round(holdout * len(y)))
    if len(y) - n_test < 2:
        raise ValueError(f"need at least 4 measured architectures, got {len(y)}")
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
