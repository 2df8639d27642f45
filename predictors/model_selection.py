"""Choosing a latency model by k-fold cross-validation on the user's own measurements.

A device nobody tuned for may rank architectures unlike every device a default was chosen
on, so no predictor or encoding is fixed in advance. :func:`select_model` scores each
:class:`Candidate` of a small set (:data:`CANDIDATES`: linear, robust and kernel models on
the cost, one-hot and engineered encodings, raw or log target) by k-fold cross-validation
on the given rows: every row is predicted once by a model that did not see it, and the pooled
out-of-fold predictions are scored. Candidates rank by Kendall τ first; those within half a
paired bootstrap standard error of the best τ (:data:`TIE_BAND`) are ties, broken by the
lower RMSE. The result is a :class:`Selection`: the CV table, best first, and the chosen
candidate.

Example:
    >>> selection = select_model(space, archs, latency_ms, folds=5, seed=0)
    >>> selection.chosen.label, selection.table[0].kendall_tau
    ('huber/onehot', 0.93)
    >>> selection.to_dict()        # the JSON a profile stores
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from threadpoolctl import threadpool_limits

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace
from predictors.base import BasePredictor
from predictors.encoding import ENCODERS, arch_indices
from predictors.metrics import scores
from predictors.registry import create_predictor, list_predictors

FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``fit_predict(train_rows, test_rows)``: fit on the train rows, predict the test rows."""

BOOTSTRAP = 200
"""Resamples of the out-of-fold pairs behind each τ's standard error."""

TIE_BAND = 0.5
"""Candidates whose τ trails the best by at most this many paired bootstrap standard errors
are ties (broken by error): closer than the CV can tell apart."""


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One predictor on one encoding, as :func:`predictors.create_predictor` builds it.

    Args:
        predictor: a registry name (see :func:`predictors.list_predictors`).
        encoder: one of :data:`predictors.ENCODERS`.
        log_target: fit ``log(latency)`` (multiplicative costs).
    """

    predictor: str
    encoder: str
    log_target: bool = False

    def __post_init__(self) -> None:
        if self.predictor not in list_predictors():
            raise ConfigError(
                f"candidate predictor {self.predictor!r} is unknown; "
                f"allowed: {list_predictors()}"
            )
        if self.encoder not in ENCODERS:
            raise ConfigError(
                f"candidate encoder {self.encoder!r} is unknown; allowed: {list(ENCODERS)}"
            )

    @property
    def label(self) -> str:
        """``predictor/encoder``, with ``/log`` for a log target."""
        return f"{self.predictor}/{self.encoder}" + ("/log" if self.log_target else "")

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Candidate:
        """The candidate of a CV-table row (:meth:`CandidateScore.to_dict`, as profiles keep
        them in ``selection["table"]``)."""
        try:
            return cls(predictor=str(row["predictor"]), encoder=str(row["encoder"]),
                       log_target=bool(row.get("log_target", False)))
        except (KeyError, TypeError):
            raise ConfigError(
                f"a candidate needs 'predictor' and 'encoder', got {dict(row)!r}"
            ) from None

    def make(self, space: SearchSpace, **kwargs: Any) -> BasePredictor:
        """A new, unfitted predictor for ``space``."""
        return create_predictor(
            self.predictor, space=space, encoder=self.encoder, log_target=self.log_target,
            **kwargs,
        )


CANDIDATES: tuple[Candidate, ...] = (
    Candidate(predictor="huber", encoder="compact"),
    Candidate(predictor="huber", encoder="compact", log_target=True),
    Candidate(predictor="ridge", encoder="compact"),
    Candidate(predictor="huber", encoder="onehot"),
    Candidate(predictor="ridge", encoder="onehot"),
    Candidate(predictor="ridge", encoder="features"),
    Candidate(predictor="svr", encoder="compact"),
    Candidate(predictor="svr", encoder="features"),
)
"""The candidates :func:`select_model` compares: the same for every space and device."""


@dataclass(frozen=True, kw_only=True)
class CandidateScore:
    """One row of the CV table: a candidate's out-of-fold scores."""

    candidate: Candidate
    kendall_tau: float
    kendall_tau_std: float
    spearman: float
    rmse: float
    mape: float
    tied: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the candidate flattened in)."""
        return {
            "candidate": self.candidate.label,
            "predictor": self.candidate.predictor,
            "encoder": self.candidate.encoder,
            "log_target": self.candidate.log_target,
            "kendall_tau": self.kendall_tau,
            "kendall_tau_std": self.kendall_tau_std,
            "spearman": self.spearman,
            "rmse": self.rmse,
            "mape": self.mape,
            "tied": self.tied,
        }


@dataclass(frozen=True, kw_only=True)
class Selection:
    """What :func:`select_model` found: the CV table (best first) and the chosen candidate."""

    table: tuple[CandidateScore, ...]
    folds: int
    repeats: int
    n: int
    seed: int

    @property
    def chosen(self) -> Candidate:
        """The winner: best τ, ties broken by RMSE."""
        return self.table[0].candidate

    @property
    def best(self) -> CandidateScore:
        """The winner's row of the table."""
        return self.table[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON form, stored in a profile's ``LatencyModel.selection``."""
        return {
            "method": f"{self.folds}-fold cross-validation x {self.repeats}",
            "n": self.n,
            "folds": self.folds,
            "repeats": self.repeats,
            "seed": self.seed,
            "ranking": f"kendall_tau; ties (within {TIE_BAND} paired bootstrap standard errors) "
            "by rmse",
            "chosen": self.chosen.label,
            "table": [row.to_dict() for row in self.table],
        }


def fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """A fold number per row, shuffled by ``seed``; ``folds >= n`` is leave-one-out."""
    if n < 2:
        raise ConfigError(f"cross-validation needs at least 2 rows, got {n}")
    if folds < 2:
        raise ConfigError(f"folds must be >= 2, got {folds}")
    k = min(folds, n)
    ids = np.empty(n, dtype=np.int64)
    ids[np.random.default_rng(seed).permutation(n)] = np.arange(n) % k
    return ids


def cross_val_predict(
    fit_predict: FitPredict, n: int, *, folds: int = 5, seed: int = 0, repeats: int = 1
) -> np.ndarray:
    """Out-of-fold predictions ``(repeats, n)``: row ``i`` predicted without row ``i``."""
    out = np.empty((repeats, n))
    for r in range(repeats):
        ids = fold_ids(n, folds, seed + r)
        for f in np.unique(ids):
            test = np.flatnonzero(ids == f)
            out[r, test] = fit_predict(np.flatnonzero(ids != f), test)
    return out


def pooled_scores(y: np.ndarray, oof: np.ndarray) -> dict[str, float]:
    """Scores of out-of-fold predictions ``(repeats, n)``, averaged over the repeats."""
    rows = [scores(y, p) for p in oof]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def bootstrap_taus(y: np.ndarray, oof: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Kendall τ-b of :data:`BOOTSTRAP` resamples of the (truth, prediction) pairs.

    A resample is a vector of row multiplicities, so every τ-b is two quadratic forms over
    the pair-sign matrices (no loop per resample). The same ``rng`` state draws the same
    resamples, so two candidates' values pair up (the spread of their difference is what
    ties them). ``oof`` is ``(repeats, n)``; the τ of the repeats are averaged.
    """
    n = len(y)
    rows = rng.integers(0, n, (BOOTSTRAP, n))
    W = np.zeros((BOOTSTRAP, n))
    np.add.at(W, (np.repeat(np.arange(BOOTSTRAP), n), rows.ravel()), 1.0)
    sy = np.sign(y[:, None] - y[None, :])
    total = n * (n - 1) / 2.0
    tied_y = (_quadratic(W, sy == 0) - n) / 2.0
    out = np.zeros(BOOTSTRAP)
    for p in oof:
        sp = np.sign(p[:, None] - p[None, :])
        concordance = _quadratic(W, sy * sp) / 2.0
        tied_p = (_quadratic(W, sp == 0) - n) / 2.0
        denom = np.sqrt(np.maximum(total - tied_y, 0.0) * np.maximum(total - tied_p, 0.0))
        out += np.divide(concordance, denom, out=np.zeros(BOOTSTRAP), where=denom > 0)
    return out / len(oof)


def _quadratic(W: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``w_b^T M w_b`` for every row ``w_b`` of ``W``."""
    return np.asarray(((W @ M.astype(np.float64)) * W).sum(axis=1))


def _fit_predict(cand: Candidate, space: SearchSpace, X: np.ndarray, y: np.ndarray) -> FitPredict:
    def run(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        model = cand.make(space).fit_features(X[train], y[train])
        return model.predict_features(X[test])

    return run


def _check_candidates(candidates: Sequence[Candidate], y: np.ndarray) -> list[Candidate]:
    if not candidates:
        raise ConfigError("candidates is empty: give at least one Candidate")
    usable = [c for c in candidates if not (c.log_target and np.any(y <= 0))]
    if not usable:
        raise ConfigError("every candidate has log_target=True, but some latencies are <= 0")
    return usable


def tied_with_best(
    taus: dict[str, float], boot: dict[str, np.ndarray], band: float = TIE_BAND
) -> set[str]:
    """Names whose τ is within ``band`` paired bootstrap standard errors of the best τ.

    ``boot[name]`` holds :func:`bootstrap_taus` of each name on the same resamples.
    """
    top = max(taus, key=lambda k: taus[k])
    tied = set()
    for name in taus:
        diff = boot[top] - boot[name]
        if name == top or float(np.mean(diff)) <= band * float(np.std(diff)):
            tied.add(name)
    return tied


def _rank(rows: list[CandidateScore], boot: dict[str, np.ndarray]) -> list[CandidateScore]:
    """Best τ first; candidates within :data:`TIE_BAND` SE of it are ties, by RMSE."""
    tied = tied_with_best({r.candidate.label: r.kendall_tau for r in rows}, boot)
    out = [replace(r, tied=r.candidate.label in tied) for r in rows]
    ties = sorted((r for r in out if r.tied), key=lambda r: (r.rmse, -r.kendall_tau))
    rest = sorted((r for r in out if not r.tied), key=lambda r: (-r.kendall_tau, r.rmse))
    return ties + rest


def select_model(
    space: SearchSpace,
    archs: Sequence[ArchConfig],
    latency_ms: ArrayLike,
    *,
    candidates: Sequence[Candidate] = CANDIDATES,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
) -> Selection:
    """Score ``candidates`` by ``folds``-fold CV on ``archs`` and their ``latency_ms``.

    Deterministic for a given ``seed``. Candidates with ``log_target`` are skipped when a
    latency is not positive.

    Raises:
        ConfigError (a ``ValueError``): fewer than 4 rows, lengths differ, non-finite
            latencies, bad ``folds``.
    """
    y = np.asarray(latency_ms, dtype=np.float64).ravel()
    if len(archs) != len(y):
        raise ConfigError(f"got {len(archs)} architectures but {len(y)} latencies")
    if len(y) < 4:
        raise ConfigError(f"model selection needs at least 4 measured architectures, got {len(y)}")
    if not np.all(np.isfinite(y)):
        raise ConfigError("latencies must be finite (found NaN or inf)")
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    usable = _check_candidates(candidates, y)
    idx = arch_indices(space, archs)
    with threadpool_limits(limits=1):  # many tiny fits: BLAS threads only contend
        rows, boot = _score_all(space, usable, idx, y, folds, repeats, seed)
    return Selection(
        table=tuple(_rank(rows, boot)), folds=min(folds, len(y)), repeats=repeats, n=len(y),
        seed=seed,
    )


def _score_all(
    space: SearchSpace, usable: list[Candidate], idx: np.ndarray, y: np.ndarray, folds: int,
    repeats: int, seed: int,
) -> tuple[list[CandidateScore], dict[str, np.ndarray]]:
    encoded: dict[str, np.ndarray] = {}
    rows, boot = [], {}
    for cand in usable:
        if cand.encoder not in encoded:
            encoded[cand.encoder] = cand.make(space).encode_indices(idx)
        fp = _fit_predict(cand, space, encoded[cand.encoder], y)
        oof = cross_val_predict(fp, len(y), folds=folds, seed=seed, repeats=repeats)
        boot[cand.label] = bootstrap_taus(y, oof, np.random.default_rng(seed))
        s = pooled_scores(y, oof)
        rows.append(
            CandidateScore(
                candidate=cand, kendall_tau=s["kendall_tau"],
                kendall_tau_std=float(np.std(boot[cand.label])), spearman=s["spearman"],
                rmse=s["rmse"], mape=s["mape"],
            )
        )
    return rows, boot
