"""Which architectures to measure next: those that most lower the model's average uncertainty.

:func:`suggest_archs` picks ``n`` architectures from a pool (given, or sampled from the
space) by greedy V-optimal design: each pick is the architecture whose measurement most
lowers the prediction variance of a linear model in the latency model's encoding, averaged
over the whole pool (so, unlike farthest-point or extreme designs, the picks serve the
architectures a search will query, not the corners). What is measured already counts: the
design starts from those rows. Latencies are not needed (a linear model's variance depends
on where it was measured, not on what), so it also plans the first measurements of a
device. Deterministic for a given ``seed`` (which only draws the pool).

Example:
    >>> model = profile.model_for(space)         # an imported or transferred latency model
    >>> picks = suggest_archs(space, 10, measured=archs,
    ...                       model=model_from_selection(model.selection))
    >>> [space.format(a) for a in picks]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace
from predictors.encoding import ENCODERS, arch_indices, encode_indices
from predictors.model_selection import CANDIDATES, Candidate

POOL = 5000
"""Architectures sampled from the space when no pool is given."""

RIDGE = 1e-3
"""Prior precision of the design's linear model (keeps the first picks well defined)."""


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


def variance_picks(
    X_pool: np.ndarray, X_seen: np.ndarray, n: int, *, ridge: float = RIDGE
) -> list[int]:
    """Greedy V-optimal picks: ``n`` pool rows, each lowering the mean prediction variance
    of a linear model (with intercept, on pool-standardised columns) over the pool most.

    Adding row ``z`` to a design with precision ``A`` lowers the pool's summed variance by
    ``zᵀ A⁻¹ G A⁻¹ z / (1 + zᵀ A⁻¹ z)`` with ``G = Σ x xᵀ`` over the pool (rank-one update).
    """
    mean = X_pool.mean(axis=0)
    scale = X_pool.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    P = np.hstack([(X_pool - mean) / scale, np.ones((len(X_pool), 1))])
    S = np.hstack([(X_seen - mean) / scale, np.ones((len(X_seen), 1))])
    A = S.T @ S + ridge * np.eye(P.shape[1])
    G = P.T @ P / len(P)
    picks: list[int] = []
    for _ in range(min(n, len(P))):
        inv = np.linalg.inv(A)
        gain = ((P @ (inv @ G @ inv)) * P).sum(axis=1) / (1.0 + ((P @ inv) * P).sum(axis=1))
        gain[picks] = -np.inf
        i = int(np.argmax(gain))
        picks.append(i)
        A += np.outer(P[i], P[i])
    return picks


def suggest_archs(
    space: SearchSpace,
    n: int,
    *,
    measured: Sequence[ArchConfig] = (),
    pool: Sequence[ArchConfig] | None = None,
    model: Candidate | str | None = None,
    seed: int = 0,
) -> list[ArchConfig]:
    """The ``n`` architectures worth measuring next (none already in ``measured``).

    Args:
        space: the search space.
        n: how many to pick.
        measured: the architectures measured so far (the design starts from them).
        pool: where to pick from (default: :data:`POOL` architectures sampled from ``space``
            with ``seed``).
        model: whose encoding the design is made in: a :class:`Candidate` (pass the import's
            chosen one, ``selection.chosen``), an encoder name, or ``None`` (the first of
            :data:`CANDIDATES`).

    Raises:
        ConfigError (a ``ValueError``): ``n < 1`` or an unknown encoder.
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    encoder = _encoder(model)
    candidates = _pool(space, pool, measured, np.random.default_rng(seed))
    X_pool = encode_indices(space, arch_indices(space, candidates), encoder)
    X_seen = (
        encode_indices(space, arch_indices(space, measured), encoder) if measured
        else np.zeros((0, X_pool.shape[1]))
    )
    return [candidates[i] for i in variance_picks(X_pool, X_seen, n)]


def model_from_selection(selection: Mapping[str, Any]) -> Candidate | str | None:
    """What to design in for a profile's stored ``LatencyModel.selection``: an import's
    chosen candidate, a transfer's own encoder (``own:onehot`` -> ``onehot``), else ``None``.
    """
    table = selection.get("table") or []
    if table and "predictor" in table[0]:
        return Candidate.from_dict(table[0])
    _, _, encoder = str(selection.get("chosen", "")).partition(":")
    return encoder if encoder in ENCODERS else None


def _encoder(model: Candidate | str | None) -> str:
    if model is None:
        return CANDIDATES[0].encoder
    if isinstance(model, Candidate):
        return model.encoder
    if model not in ENCODERS:
        raise ConfigError(
            f"model must be a Candidate, an encoder of {list(ENCODERS)} or None, got {model!r}"
        )
    return model
