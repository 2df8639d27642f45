"""Nested sub-models for the SortedNet schedule (Valipour et al., 2023).

SortedNet trains, in every step, several sub-models that are *sorted*: each one's choice in
every dimension is no larger (no later in the dimension's value order) than the next one's,
so the smaller sub-models are nested inside the larger ones and share their leading weights.
:func:`nested_archs` draws such a chain: ``n - 1`` random index rows, sorted column by column
(each dimension's order statistics), and the largest architecture on top.

Example:
    >>> space = nas.create_space("tiny")
    >>> chain = nested_archs(space, 4, np.random.default_rng(0))
    >>> chain[0] == space.largest(), is_nested(space, chain)
    (True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace


def nested_archs(space: SearchSpace, n: int, rng: np.random.Generator) -> list[ArchConfig]:
    """``n`` nested architectures of ``space``, largest first, then ever smaller (or equal).

    Row ``k`` (counted from the smallest) takes, in each dimension, the ``k``-th smallest of
    ``n - 1`` uniform draws of that dimension's value position; the largest is always the
    first. Deterministic given ``rng``'s state.

    Raises:
        ConfigError: unless ``n`` is an int >= 1.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"num_nested must be an int >= 1, got {n!r}")
    sizes = np.array([len(c.values) for c in space.choices], dtype=np.int64)
    draws = (rng.random((n - 1, len(sizes))) * sizes).astype(np.int64)
    draws = np.sort(draws, axis=0)[::-1]  # descending: each row >= the next, per dimension
    rows = np.concatenate([(sizes - 1)[None, :], draws], axis=0)
    return space.from_index_matrix(rows)


def is_nested(space: SearchSpace, archs: Sequence[ArchConfig]) -> bool:
    """Whether each architecture's value positions are >= the next one's in every dimension."""
    rows = space.indices(list(archs), fill_inactive=False)
    return bool(np.all(rows[:-1] >= rows[1:])) if len(rows) > 1 else True


def balanced_probabilities(space: SearchSpace, num_random: int) -> list[np.ndarray]:
    """Per dimension, the value probabilities of ``sampling='balanced'`` sandwich draws.

    A step trains the largest, the smallest and ``num_random`` random subnets: ``n + 2``
    draws per dimension of ``k`` values, the ends already taken once each. Value ``j`` gets
    ``max(0, (n + 2) / k - ends_j)`` (normalised), so every value is trained ``(n + 2) / k``
    times per step in expectation where that is >= 1, else the ends only by the sandwich.

    Example:
        >>> space = nas.create_space("gpt_tiny")  # depth {2, 3, 4} first
        >>> balanced_probabilities(space, 2)[0].round(3).tolist()
        [0.167, 0.667, 0.167]
    """
    out = []
    for c in space.choices:
        k = len(c.values)
        ends = np.zeros(k)
        ends[[0, k - 1]] = 1.0
        weights = np.maximum(0.0, (num_random + 2) / k - ends) if k > 2 else np.ones(k)
        out.append(weights / weights.sum())  # k > 2: the interior values weigh > 0
    return out
