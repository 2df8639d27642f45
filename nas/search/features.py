"""Surrogate features of index rows: what the ``local`` and ``linas`` surrogates fit on.

Columns, in order: one-hot of every active dimension; for every set of two or more dimensions
that share their values (e.g. the kernels of all blocks), one-hot counts of how many take each
value (computed from the architecture alone, they let a model share what any block learns);
one-hot joint values of every pair of dimensions, both active (only while there are at most
:data:`MAX_PAIR_COLUMNS` such columns). :attr:`RowFeatures.groups` names the feature group of
each column for :class:`~nas.search.surrogate.GPSurrogate`'s weighted Hamming kernel; pair
columns are ``-1``: they enter its linear mean only (pairwise interactions).

Example:
    >>> features = RowFeatures(space)
    >>> X = features.encode(rows)            # X.shape[1] == len(features.groups)
"""

from __future__ import annotations

import numpy as np

from nas.search.base import canonical_rows
from nas.space import SearchSpace

MAX_PAIR_COLUMNS = 500  # an enumerated space keeps every encoding in memory


class RowFeatures:
    """The feature encoding of a space's index rows.

    Args:
        space: the search space.
        counts: add the value-count columns.
        pairs: add the pairwise joint one-hot columns.
    """

    def __init__(self, space: SearchSpace, *, counts: bool = True, pairs: bool = True) -> None:
        self.space = space
        self.sizes = np.array([len(c.values) for c in space.choices], dtype=np.int64)
        self._counts = _shared_value_sets(space) if counts else []
        self._pairs = _dimension_pairs(self.sizes, MAX_PAIR_COLUMNS) if pairs else []
        groups = [np.repeat(np.arange(len(self.sizes)), self.sizes)]
        for dims, n_values in self._counts:  # one feature group per (set, value)
            for _ in range(n_values):
                groups.append(np.full(len(dims) + 1, len(self.sizes) + len(groups) - 1))
        for i, j in self._pairs:  # in the linear mean only (-1): the kernel stays as it was
            groups.append(np.full(self.sizes[i] * self.sizes[j], -1))
        self.groups = np.concatenate(groups)

    def encode(self, rows: np.ndarray) -> np.ndarray:
        """One row of features per index row (inactive dimensions contribute nothing)."""
        canon = canonical_rows(self.space, rows)
        offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        out = np.zeros((len(rows), int(self.sizes.sum())))
        r, c = np.nonzero(canon >= 0)
        out[r, offsets[c] + canon[r, c]] = 1.0
        parts = [out]
        for dims, n_values in self._counts:
            sub = canon[:, dims]
            for v in range(n_values):
                hot = np.zeros((len(rows), len(dims) + 1))
                hot[np.arange(len(rows)), (sub == v).sum(axis=1)] = 1.0
                parts.append(hot)
        for i, j in self._pairs:
            hot = np.zeros((len(rows), int(self.sizes[i] * self.sizes[j])))
            r = np.flatnonzero((canon[:, i] >= 0) & (canon[:, j] >= 0))
            hot[r, canon[r, i] * self.sizes[j] + canon[r, j]] = 1.0
            parts.append(hot)
        return np.hstack(parts)


def _shared_value_sets(space: SearchSpace) -> list[tuple[np.ndarray, int]]:
    """Sets of two or more dimensions with identical values: (their indices, how many values)."""
    by_values: dict[tuple[object, ...], list[int]] = {}
    for i, c in enumerate(space.choices):
        by_values.setdefault(tuple(c.values), []).append(i)
    return [(np.array(d), len(v)) for v, d in by_values.items() if len(d) >= 2]


def _dimension_pairs(sizes: np.ndarray, max_columns: int) -> list[tuple[int, int]]:
    """Every pair of dimensions, or none when their joint one-hots exceed ``max_columns``."""
    pairs = [(i, j) for i in range(len(sizes)) for j in range(i + 1, len(sizes))]
    if sum(int(sizes[i] * sizes[j]) for i, j in pairs) > max_columns:
        return []
    return pairs
