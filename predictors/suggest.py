"""Which architectures to measure next: where a bootstrap ensemble disagrees, spread out.

:func:`suggest_archs` picks ``n`` architectures from a pool (given, or sampled from the
space) one at a time. Each pick maximises ``disagreement × distance``: the relative spread
of a bootstrap ensemble of the latency model (refitted on resampled measured rows) at that
architecture, times its distance in the model's standardised encoding to the nearest
architecture already measured or picked. Without measurements (or with fewer than 4) the
disagreement is 1 everywhere and the picks are a farthest-point (space-filling) design.
Deterministic for a given ``seed``.

Example:
    >>> picks = suggest_archs(space, 10, measured=archs, latency_ms=y, seed=0)
    >>> [space.format(a) for a in picks]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from nas.space import ArchConfig, SearchSpace
from predictors.base import BasePredictor
from predictors.encoding import arch_indices
from predictors.model_selection import CANDIDATES, Candidate

POOL = 5000
"""Architectures sampled from the space when no pool is given."""

Factory = Callable[[], BasePredictor]


def _pool(
    space: SearchSpace, pool: Sequence[ArchConfig] | None, measured: Sequence[ArchConfig],
    rng: np.random.Generator,
) -> list[ArchConfig]:
    if pool is None:
        pool = space.sample_many(POOL, rng)
    seen = {a.key for a in measured}
    out = []
    for arch in pool:
        if arch.key not in seen:
            seen.add(arch.key)
            out.append(arch)
    return out


def disagreement(
    factory: Factory, X: np.ndarray, y: np.ndarray, X_pool: np.ndarray, *, members: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Relative spread (std / |mean|) of ``members`` bootstrap refits at each pool row."""
    preds = []
    for _ in range(members):
        rows = rng.integers(0, len(y), len(y))
        if np.ptp(y[rows]) == 0:
            continue
        preds.append(factory().fit_features(X[rows], y[rows]).predict_features(X_pool))
    if len(preds) < 2:
        return np.ones(len(X_pool))
    P = np.stack(preds)
    spread = P.std(axis=0) / np.maximum(np.abs(P.mean(axis=0)), 1e-12)
    top = float(spread.max())
    return spread / top if top > 0 else np.ones(len(X_pool))


def farthest_points(
    X_pool: np.ndarray, X_seen: np.ndarray, n: int, weight: np.ndarray | None = None
) -> list[int]:
    """Greedy picks of ``n`` pool rows maximising ``weight × distance to the nearest seen``.

    Columns are standardised over the pool first; with nothing seen the first pick is the
    row farthest from the pool's centroid.
    """
    scale = X_pool.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = (X_pool - X_pool.mean(axis=0)) / scale
    if len(X_seen):
        S = (X_seen - X_pool.mean(axis=0)) / scale
        nearest = _squared_distance_to_nearest(Z, S)
    else:
        nearest = np.full(len(Z), np.inf)
    w = np.ones(len(Z)) if weight is None else np.asarray(weight, dtype=np.float64)
    picks: list[int] = []
    for _ in range(min(n, len(Z))):
        score = w * (np.sqrt(nearest) if np.isfinite(nearest).all() else np.linalg.norm(Z, axis=1))
        score[picks] = -np.inf
        i = int(np.argmax(score))
        picks.append(i)
        nearest = np.minimum(nearest, ((Z - Z[i]) ** 2).sum(axis=1))
    return picks


def _squared_distance_to_nearest(Z: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Per row of ``Z``, the squared distance to its nearest row of ``S`` (in chunks)."""
    z2 = (Z**2).sum(axis=1)
    out = np.full(len(Z), np.inf)
    for start in range(0, len(S), 256):
        chunk = S[start : start + 256]
        d = z2[:, None] + (chunk**2).sum(axis=1)[None, :] - 2.0 * Z @ chunk.T
        out = np.minimum(out, np.maximum(d, 0.0).min(axis=1))
    return out


def suggest_archs(
    space: SearchSpace,
    n: int,
    *,
    measured: Sequence[ArchConfig] = (),
    latency_ms: ArrayLike | None = None,
    pool: Sequence[ArchConfig] | None = None,
    model: Candidate | Factory | None = None,
    members: int = 10,
    seed: int = 0,
) -> list[ArchConfig]:
    """The ``n`` architectures worth measuring next (none already in ``measured``).

    Args:
        space: the search space.
        n: how many to pick.
        measured: the architectures measured so far; ``latency_ms``: their latencies.
        pool: where to pick from (default: :data:`POOL` sampled from ``space``).
        model: the latency model to bootstrap (a :class:`Candidate`, or a factory of unfitted
            predictors); default the first of :data:`CANDIDATES`. Pass the chosen one
            (``selection.chosen``).
        members: bootstrap refits behind the disagreement.

    Raises:
        ValueError: ``n < 1``, or ``latency_ms`` does not match ``measured``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    y = None if latency_ms is None else np.asarray(latency_ms, dtype=np.float64).ravel()
    if y is not None and len(y) != len(measured):
        raise ValueError(f"got {len(measured)} measured architectures but {len(y)} latencies")
    rng = np.random.default_rng(seed)
    candidates = _pool(space, pool, measured, rng)
    factory = _factory(space, model)
    probe = factory()
    X_pool = probe.encode_indices(arch_indices(space, candidates))
    X_seen = (
        probe.encode_indices(arch_indices(space, measured)) if measured
        else np.zeros((0, X_pool.shape[1]))
    )
    weight = None
    if y is not None and len(y) >= 4:
        weight = np.maximum(
            disagreement(factory, X_seen, y, X_pool, members=members, rng=rng), 0.05
        )
    return [candidates[i] for i in farthest_points(X_pool, X_seen, n, weight)]


def _factory(space: SearchSpace, model: Candidate | Factory | None) -> Factory:
    if model is None:
        model = CANDIDATES[0]
    if isinstance(model, Candidate):
        chosen = model
        return lambda: chosen.make(space)
    if not callable(model):
        raise ValueError(
            f"model must be a Candidate, a factory of predictors or None, got {type(model).__name__}"
        )
    return model
