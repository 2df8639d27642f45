"""The trials of one search as they accumulate, batch by batch, into a :class:`SearchResult`.

Example:
    >>> log = TrialLog()
    >>> log.add(rows, columns, it=0, wall=0.5)
    >>> result = log.result(problem, "evolution", with_archs=False)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nas.search.base import Problem
from nas.search.result import SearchResult
from nas.space import ArchConfig


class TrialLog:
    """Trials batch by batch: index rows, metric columns (missing ones NaN), iteration,
    wall time and, on the architecture path, the architectures."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.archs: list[ArchConfig] = []
        self.columns: dict[str, list[np.ndarray]] = {}
        self.iteration: list[np.ndarray] = []
        self.wall: list[np.ndarray] = []
        self.count = 0

    def add(
        self,
        rows: np.ndarray,
        cols: Mapping[str, np.ndarray],
        it: int,
        wall: float,
        archs: Sequence[ArchConfig] | None = None,
    ) -> None:
        """Append one batch (``it``: its iteration; ``wall``: seconds since the start)."""
        n = len(rows)
        for name in set(self.columns) | set(cols):
            if name not in self.columns:
                self.columns[name] = [np.full(c, np.nan) for c in (len(r) for r in self.rows)]
            self.columns[name].append(np.asarray(cols.get(name, np.full(n, np.nan)), dtype=float))
        self.rows.append(rows)
        if archs is not None:
            self.archs.extend(archs)
        self.iteration.append(np.full(n, it))
        self.wall.append(np.full(n, wall))
        self.count += n

    def result(self, problem: Problem, name: str, with_archs: bool) -> SearchResult:
        """Every trial so far as a :class:`SearchResult` of searcher ``name``."""
        d = len(problem.space.choices)

        def cat(xs: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(xs) if xs else np.empty(0)

        return SearchResult(
            problem,
            rows=np.vstack(self.rows) if self.rows else np.empty((0, d), dtype=np.int64),
            columns={k: cat(v) for k, v in self.columns.items()},
            iteration=cat(self.iteration),
            wall_time=cat(self.wall),
            archs=list(self.archs) if with_archs else None,
            searcher=name,
        )
