"""What searchers share: the archive of told trials and a base class speaking index rows.

:class:`IndexSearcher` implements ``ask``/``tell`` on top of ``ask_indices``/``tell_indices``
and keeps an :class:`Archive` (every told row with its objectives and violation) and the set
of asked-but-not-told networks, so no searcher proposes the same network twice.

Example:
    >>> class MySearcher(IndexSearcher):
    ...     def ask_indices(self, n):
    ...         return self.fresh(self.random_rows(4 * n), n)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nas.errors import ConfigError
from nas.search.base import Problem, row_keys
from nas.space import ArchConfig

_MAX_FILL_ROUNDS = 8  # bounded retries when topping up a batch with random rows


class Archive:
    """Told rows, their metric columns, minimisation scores and constraint violation.

    Storage grows by doubling, so appending a generation costs O(generation), not O(archive):
    ``rows``, ``F``, ``violation`` and ``columns`` are views of the filled part.
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self._d = len(problem.space.choices)
        self._k = len(problem.objectives.names)
        self._n = 0
        self._rows = np.empty((0, self._d), dtype=np.int64)
        self._F = np.empty((0, self._k))
        self._violation = np.empty(0)
        self._cols: dict[str, np.ndarray] = {m: np.empty(0) for m in problem.metrics}
        self._alloc(64)
        self.keys: set[int] = set()

    def _alloc(self, capacity: int) -> None:
        rows = np.empty((capacity, self._d), dtype=np.int64)
        F = np.empty((capacity, self._k))
        violation = np.empty(capacity)
        cols = {m: np.empty(capacity) for m in self.problem.metrics}
        if self._n:
            n = self._n
            rows[:n], F[:n], violation[:n] = self._rows[:n], self._F[:n], self._violation[:n]
            for m in cols:
                cols[m][:n] = self._cols[m][:n]
        self._rows, self._F, self._violation, self._cols = rows, F, violation, cols

    @property
    def rows(self) -> np.ndarray:
        return self._rows[: self._n]

    @property
    def F(self) -> np.ndarray:
        return self._F[: self._n]

    @property
    def violation(self) -> np.ndarray:
        return self._violation[: self._n]

    @property
    def columns(self) -> dict[str, np.ndarray]:
        return {m: v[: self._n] for m, v in self._cols.items()}

    def __len__(self) -> int:
        return self._n

    def add(
        self,
        rows: np.ndarray,
        columns: Mapping[str, np.ndarray],
        keys: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Append rows not already in the archive; returns the mask of rows appended.

        ``keys`` (``row_keys`` of ``rows``, when the caller has them) saves recomputing them.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, self._d)
        if keys is None:
            keys = row_keys(self.problem.space, rows)
        known = self.keys
        new = np.fromiter((k not in known for k in keys), dtype=bool, count=len(rows))
        distinct = set(keys)
        if new.all() and len(distinct) == len(keys):
            known.update(distinct)
        else:  # a key may repeat within rows: keep its first row only
            for i in np.flatnonzero(new).tolist():
                if keys[i] in known:
                    new[i] = False
                else:
                    known.add(keys[i])
        m_new = int(new.sum())
        if not m_new:
            return new
        cols = {m: np.asarray(columns[m], dtype=np.float64)[new] for m in self.problem.metrics}
        F, v = self.problem.scores(cols)
        if self._n + m_new > len(self._rows):
            self._alloc(max(2 * len(self._rows), self._n + m_new))
        end = self._n + m_new
        self._rows[self._n : end] = rows[new]
        self._F[self._n : end] = F
        self._violation[self._n : end] = v
        for m in self.problem.metrics:
            self._cols[m][self._n : end] = cols[m]
        self._n = end
        return new

    def ranking(self, among: np.ndarray | None = None) -> np.ndarray:
        """Indices ordered best first (feasible before infeasible, then by the first objective),
        of every row or of the rows ``among``."""
        idx = np.arange(self._n) if among is None else np.asarray(among, dtype=np.int64)
        order = np.lexsort((self._F[idx, 0], self._violation[idx]))
        return idx[order]

    def feasible(self) -> np.ndarray:
        """Mask of feasible rows."""
        return self.violation <= 0


class IndexSearcher:
    """Base class of searchers that work on index rows; subclasses implement ``ask_indices``.

    Args:
        problem: the space, objectives and constraints.
        seed: seeds the searcher's own ``numpy`` generator.
    """

    def __init__(self, problem: Problem, *, seed: int = 0) -> None:
        self.problem = problem
        self.space = problem.space
        self.rng = np.random.default_rng(seed)
        self.archive = Archive(problem)
        self.pending: set[int] = set()
        self.sizes = np.array([len(c.values) for c in self.space.choices], dtype=np.int64)
        # the last batch ``fresh`` returned and its row keys (reused when it is told back)
        self._last_fresh: tuple[np.ndarray, list[int]] | None = None

    # ------------------------------------------------------------------ ask/tell
    def ask(self, n: int) -> list[ArchConfig]:
        """Up to ``n`` new architectures."""
        return self.space.from_index_matrix(self.ask_indices(n))

    def tell(self, archs: Sequence[ArchConfig], metrics: Sequence[Mapping[str, float]]) -> None:
        """Report metrics of ``archs`` (asked or not)."""
        if len(archs) != len(metrics):
            raise ConfigError(f"tell: {len(archs)} archs but {len(metrics)} metric dicts")
        if not archs:
            return
        rows = self.space.indices(list(archs), fill_inactive=False)
        self.tell_indices(rows, self.problem.columns(metrics))

    def ask_indices(self, n: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def tell_indices(self, rows: np.ndarray, metrics: Mapping[str, np.ndarray]) -> None:
        """Report metric columns for ``rows``."""
        keys = self.keys_of(rows)
        self._last_fresh = None
        rows = np.asarray(rows, dtype=np.int64)
        if self.pending:
            self.pending.difference_update(keys)
        new = self.archive.add(rows, metrics, keys)
        self.on_tell(rows, new)

    def keys_of(self, rows: np.ndarray) -> list[int]:
        """``row_keys(space, rows)``, free for the batch :meth:`fresh` last returned."""
        last = self._last_fresh
        if last is not None and rows is last[0]:
            return last[1]
        return row_keys(self.space, np.asarray(rows, dtype=np.int64))

    def on_tell(self, rows: np.ndarray, new: np.ndarray) -> None:
        """Hook: ``rows`` were told (``new`` marks those not seen before)."""

    # ------------------------------------------------------------------ helpers
    def random_rows(self, n: int) -> np.ndarray:
        """``n`` uniformly random index rows."""
        return (self.rng.random((n, len(self.sizes))) * self.sizes).astype(np.int64)

    def mutate_rows(self, parents: np.ndarray, prob: float, *, force: bool = True) -> np.ndarray:
        """Change each dimension of each row with probability ``prob`` to another value;
        with ``force``, at least one dimension changes."""
        parents = np.asarray(parents, dtype=np.int64)
        n, d = parents.shape
        mask = self.rng.random((n, d)) < prob
        if force and n:
            forced = self.rng.integers(d, size=n)
            mask[np.arange(n), forced] = True
        mask &= self.sizes > 1
        # a new value that differs from the old one: shift by 1..size-1 (drawn where changed)
        r, c = np.nonzero(mask)
        size = self.sizes[c]
        shift = (self.rng.random(len(r)) * (size - 1)).astype(np.int64) + 1
        out = parents.copy()
        out[r, c] = (parents[r, c] + shift) % size
        return out

    def crossover_rows(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Uniform crossover of paired rows."""
        pick = self.rng.random(a.shape) < 0.5
        return np.where(pick, a, b)

    def neighbour_rows(self, row: np.ndarray) -> np.ndarray:
        """Every row differing from ``row`` in exactly one active dimension
        (:meth:`~nas.space.SearchSpace.neighbour_indices`)."""
        return self.space.neighbour_indices(row)

    def fresh(self, candidates: np.ndarray, n: int, *, top_up: bool = True) -> np.ndarray:
        """The first ``n`` candidates that are neither told, pending nor repeated; topped up
        with random rows (a bounded number of rounds) when too few remain. Marks them pending."""
        width = len(self.sizes)
        told, pending = self.archive.keys, self.pending
        blocks: list[np.ndarray] = []
        key_blocks: list[np.ndarray] = []
        chosen_keys: set[int] = set()
        count = 0
        pools = [np.asarray(candidates, dtype=np.int64).reshape(-1, width)]
        rounds = 0
        while pools and count < n:
            pool = pools.pop(0)
            key_array = self.space.network_ids(pool)
            keys = key_array.tolist()
            # one pass over the told/pending sets (no copy of the archive's keys) ...
            ok = np.fromiter(
                (k not in told and k not in pending and k not in chosen_keys for k in keys),
                dtype=bool,
                count=len(keys),
            )
            cand = np.flatnonzero(ok)
            if len(cand):
                # ... then the first row of each distinct network, in candidate order
                _, first = np.unique(key_array[cand], return_index=True)
                cand = cand[np.sort(first)][: n - count]
                blocks.append(pool[cand])
                key_blocks.append(key_array[cand])
                chosen_keys.update(key_array[cand].tolist())
                count += len(cand)
            if count < n and top_up and rounds < _MAX_FILL_ROUNDS:
                rounds += 1
                pools.append(self.random_rows(max(4 * (n - count), 16)))
        out = np.vstack(blocks) if blocks else np.empty((0, width), dtype=np.int64)
        pending.update(chosen_keys)
        keys_out = np.concatenate(key_blocks).tolist() if key_blocks else []
        self._last_fresh = (out, keys_out)
        return out
