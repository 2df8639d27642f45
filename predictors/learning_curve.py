"""How much to measure: a learning curve from the user's own rows, and what it promises.

:func:`learning_curve` cross-validates one fit on nested random subsets of the measured
rows (by default 40 %, 60 %, 80 % and all of them) and records the pooled
out-of-fold Kendall τ against the number of rows each model was trained on.
:func:`advise` fits the saturating curve ``τ(m) = plateau - b · m^(-c)`` to those points
(``b >= 0``, ``plateau <= 1``, ``c`` from :data:`EXPONENTS` by least squares) and
turns it into a :class:`MeasureAdvice`: the τ now, its bootstrap spread, and how many more
measurements would likely raise it by ``gain`` (or that more would hardly help).

Example:
    >>> curve = learning_curve(fit_predict, y, folds=5, seed=0)
    >>> advise(curve, n=20, tau=0.71, tau_std=0.06).message
    'kendall tau 0.71 +- 0.06 from 20 measurements; 50 more would likely reach 0.80'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.errors import ConfigError
from predictors.metrics import kendall_tau
from predictors.model_selection import FitPredict, cross_val_predict

FRACTIONS = (0.4, 0.6, 0.8, 1.0)
EXPONENTS = (0.5,)
"""Exponents ``c`` :func:`fit_curve` tries (one: four noisy points fit no more)."""
STEPS = (10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10000)
"""The numbers of extra measurements :func:`advise` considers."""


@dataclass(frozen=True, kw_only=True)
class MeasureAdvice:
    """Whether more measurements would help, from the CV learning curve.

    Args:
        n: measured rows now.
        kendall_tau: CV Kendall τ with all of them; ``kendall_tau_std`` its bootstrap spread.
        curve: ``(training rows, CV τ)`` points the fit used.
        plateau: the fitted curve's limit.
        more: extra measurements that would likely add ``gain`` (0: more would hardly help).
        expected_tau: the fitted curve's τ after ``more`` extra measurements.
        message: the advice in one sentence.
    """

    n: int
    kendall_tau: float
    kendall_tau_std: float
    curve: tuple[tuple[float, float], ...]
    plateau: float
    more: int
    expected_tau: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored next to the CV table in a profile)."""
        return {
            "n": self.n,
            "kendall_tau": self.kendall_tau,
            "kendall_tau_std": self.kendall_tau_std,
            "curve": [list(p) for p in self.curve],
            "plateau": self.plateau,
            "more": self.more,
            "expected_tau": self.expected_tau,
            "message": self.message,
        }


def learning_curve(
    fit_predict: FitPredict,
    y: np.ndarray,
    *,
    fractions: Sequence[float] = FRACTIONS,
    folds: int = 5,
    repeats: int = 2,
    seed: int = 0,
) -> list[tuple[float, float]]:
    """CV τ of ``fit_predict`` on nested random subsets of the rows of ``y``.

    Returns ``(mean training rows, τ)`` per fraction, smallest first; subsets smaller than
    6 rows are skipped.
    """
    y = np.asarray(y, dtype=np.float64)
    if any(not 0 < f <= 1 for f in fractions):
        raise ConfigError(f"fractions must lie in (0, 1], got {list(fractions)}")
    n = len(y)
    out = []
    for f in sorted(set(fractions)):
        m = round(f * n)
        if m < 6:
            continue
        taus, sizes = [], []
        for r in range(repeats):
            rows = np.random.default_rng(seed + 1000 + r).permutation(n)[:m]
            k = min(folds, m)

            def on_subset(train: np.ndarray, test: np.ndarray, rows: np.ndarray = rows) -> Any:
                return fit_predict(rows[train], rows[test])

            oof = cross_val_predict(on_subset, m, folds=k, seed=seed + r)[0]
            taus.append(kendall_tau(y[rows], oof))
            sizes.append(m * (k - 1) / k)
        out.append((float(np.mean(sizes)), float(np.mean(taus))))
    return out


def fit_curve(curve: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """``(plateau, b, c)`` of ``τ(m) = plateau - b · m^(-c)`` fitted to ``curve``."""
    m = np.array([p[0] for p in curve], dtype=np.float64)
    t = np.array([p[1] for p in curve], dtype=np.float64)
    if len(m) < 2 or np.ptp(m) == 0:
        return float(np.mean(t)) if len(t) else 0.0, 0.0, 0.5
    best: tuple[float, float, float, float] | None = None
    for c in EXPONENTS:
        x = m ** (-c)
        b = -float(np.polyfit(x, t, 1)[0])
        b = max(b, 0.0)
        a = float(np.mean(t + b * x))
        if a > 1.0:  # a rank correlation cannot pass 1: refit b with the plateau at 1
            a = 1.0
            b = max(float(np.dot(x, 1.0 - t) / np.dot(x, x)), 0.0)
        sse = float(np.sum((a - b * x - t) ** 2))
        if best is None or sse < best[0] - 1e-12:
            best = (sse, a, b, c)
    assert best is not None
    return best[1], best[2], best[3]


def advise(
    curve: Sequence[tuple[float, float]],
    *,
    n: int,
    tau: float,
    tau_std: float,
    gain: float = 0.05,
    unit: str = "measurements",
) -> MeasureAdvice:
    """Advice from a :func:`learning_curve`: the τ now and what more rows would likely add.

    ``more`` is the smallest of :data:`STEPS` (at most ten times ``n``) after which the
    fitted curve gains ``gain`` (capped by the plateau) over its value where ``tau`` was
    measured (the training size of the last curve point: CV trains on fewer than ``n``).
    The expected τ is ``tau`` plus that gain, never above the plateau.
    """
    plateau, b, c = fit_curve(curve)
    measured_at = curve[-1][0] if curve else float(n)
    now = plateau - b * measured_at ** (-c)
    head = f"kendall tau {tau:.2f} +- {tau_std:.2f} from {n} {unit}"
    room = plateau - max(now, tau)

    def advice(more: int, expected: float, message: str) -> MeasureAdvice:
        return MeasureAdvice(n=n, kendall_tau=tau, kendall_tau_std=tau_std, curve=tuple(curve),
                             plateau=plateau, more=more, expected_tau=expected, message=message)

    if room < max(0.02, gain / 2):
        return advice(
            0, tau, f"{head}; more would hardly help (the curve levels off near {plateau:.2f})"
        )
    target = now + min(gain, room - 0.01)
    for step in (s for s in STEPS if s <= 10 * n):
        expected = plateau - b * (n + step) ** (-c)
        if expected >= target:
            reach = min(plateau, tau + (expected - now))
            return advice(step, reach, f"{head}; {step} more would likely reach {reach:.2f}")
    return advice(
        0, tau,
        f"{head}; even {10 * n} more would add under {gain:.2f} "
        f"(the curve levels off near {plateau:.2f})",
    )
