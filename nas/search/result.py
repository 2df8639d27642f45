"""``SearchResult``: every trial of a search, its Pareto front, best arch and hypervolume curve.

Example:
    >>> result = nas.search(space, evaluate, objectives={"accuracy": "max", "latency_ms": "min"},
    ...                     constraints={"latency_ms": 10.0}, budget=100)
    >>> result.trials.head()            # key, arch, metrics..., feasible, iteration, wall_time_s
    >>> result.pareto                   # the feasible non-dominated trials, best first
    >>> result.best()                   # ArchConfig: best feasible on the first objective
    >>> result.hypervolume_history()    # DataFrame: iteration, trials, hypervolume
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from nas.errors import ConfigError
from nas.search.base import Problem
from nas.search.pareto import _nondominated_mask, hypervolume, pareto_mask
from nas.space import ArchConfig

TRIAL_COLUMNS = ("key", "arch", "iteration", "wall_time_s", "feasible")


class SearchResult:
    """The outcome of :func:`nas.search`.

    Args:
        problem: the space, objectives and constraints searched.
        rows: index rows of the trials (``space.indices(..., fill_inactive=False)``).
        columns: one array per metric (objectives, constrained and any extra metrics).
        iteration: the batch number of each trial (0-based).
        wall_time: seconds since the search started when each trial finished.
        archs: the trials' architectures, if already built (else built on first use).
        searcher: the searcher's name, for reports.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        rows: np.ndarray,
        columns: Mapping[str, np.ndarray],
        iteration: np.ndarray,
        wall_time: np.ndarray,
        archs: list[ArchConfig] | None = None,
        searcher: str = "",
    ) -> None:
        self.problem = problem
        self.space = problem.space
        self.rows = np.asarray(rows, dtype=np.int64).reshape(-1, len(problem.space.choices))
        self.columns = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
        self.iteration = np.asarray(iteration, dtype=np.int64)
        self.wall_time = np.asarray(wall_time, dtype=np.float64)
        self._archs = archs
        self.searcher = searcher
        self.F: np.ndarray
        self.violation: np.ndarray
        if len(self.rows):
            self.F, self.violation = problem.scores(self.columns)
        else:
            self.F = np.empty((0, len(problem.objectives.names)))
            self.violation = np.empty(0)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        failed = int(self.failed.sum())
        return (
            f"SearchResult({self.searcher or 'search'}: {len(self)} trials, "
            f"{int(self.feasible.sum())} feasible, {len(self.pareto)} on the front"
            + (f", {failed} failed)" if failed else ")")
        )

    @property
    def archs(self) -> list[ArchConfig]:
        """The trials' architectures, in trial order."""
        if self._archs is None:
            self._archs = self.space.from_index_matrix(self.rows)
        return self._archs

    @property
    def failed(self) -> np.ndarray:
        """Mask of trials whose evaluation gave a non-finite metric (never best or on the
        front); ``failed.sum()`` counts them."""
        return self.problem.failed(self.columns, len(self.rows))

    @property
    def feasible(self) -> np.ndarray:
        """Mask of trials that meet every constraint."""
        return self.violation <= 0

    def _frame(self, idx: np.ndarray | None = None) -> pd.DataFrame:
        """The trials table, of every trial or of the trial indices ``idx``."""
        if idx is None:
            archs = self.archs
            sel = slice(None)
        else:
            sel = idx  # type: ignore[assignment]
            archs = (
                [self._archs[i] for i in idx]
                if self._archs is not None
                else self.space.from_index_matrix(self.rows[idx])
            )
        data: dict[str, Any] = {
            "key": [a.key for a in archs],
            "arch": [a.to_json() for a in archs],
        }
        data.update({k: v[sel] for k, v in self.columns.items()})
        data["feasible"] = self.feasible[sel]
        data["iteration"] = self.iteration[sel]
        data["wall_time_s"] = self.wall_time[sel]
        frame = pd.DataFrame(data)
        if idx is not None:
            frame.index = pd.Index(np.asarray(idx))
        return frame

    @cached_property
    def trials(self) -> pd.DataFrame:
        """One row per trial: key, arch (JSON), every metric, feasible, iteration, wall time."""
        return self._frame()

    @cached_property
    def pareto(self) -> pd.DataFrame:
        """The feasible non-dominated trials, sorted best first on the first objective (the
        index is the trial number; built without materialising every trial)."""
        mask = pareto_mask(self.F, self.violation)
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(self.F[idx, 0], kind="stable")]
        if "trials" in self.__dict__:
            return self.trials.iloc[idx]
        return self._frame(idx)

    def best_index(self) -> int:
        """Trial index of the best feasible trial on the first objective."""
        feasible = np.flatnonzero(self.feasible)
        if not len(feasible):
            limits = self.problem.constraints.to_dict()
            raise ConfigError(f"no trial of {len(self)} meets the constraints {limits}")
        return int(feasible[np.argmin(self.F[feasible, 0])])

    def best(self) -> ArchConfig:
        """The best feasible architecture on the first objective.

        Raises:
            ValueError: no trial meets the constraints.
        """
        return self.archs[self.best_index()]

    def chosen(self, top_k: int = 0) -> list[ArchConfig]:
        """The subnets to export: the best feasible trial on the first objective, then up to
        ``top_k`` more of the feasible Pareto front, best first (empty when none is feasible).

        Example:
            >>> for arch in result.chosen(2): nas.export_subnet(supernet, arch, out / arch.key)
        """
        if not isinstance(top_k, int) or top_k < 0:
            raise ConfigError(f"top_k must be an int >= 0, got {top_k!r}")
        if not self.feasible.any():
            return []
        best = self.best_index()
        front = [int(i) for i in self.pareto.index if int(i) != best][:top_k]
        return [self.archs[i] for i in (best, *front)]

    def metrics_of(self, arch: ArchConfig) -> dict[str, float]:
        """The metrics logged for ``arch`` (its first trial); ``KeyError`` if it is none."""
        keys = [a.key for a in self.archs]
        if arch.key not in keys:
            raise KeyError(f"arch {arch.key!r} is not a trial of this search")
        i = keys.index(arch.key)
        return {k: float(v[i]) for k, v in self.columns.items()}

    def best_metrics(self) -> dict[str, float]:
        """The metrics of :meth:`best`."""
        i = self.best_index()
        return {k: float(v[i]) for k, v in self.columns.items()}

    def reference_point(self) -> np.ndarray:
        """Default hypervolume reference (minimisation form): the worst value of each objective
        over every trial, so the curve of a finished search is comparable across iterations."""
        if not len(self):
            return np.zeros(len(self.problem.objectives.names))
        return self.F.max(axis=0)

    def to_minimisation(self, point: Mapping[str, float]) -> np.ndarray:
        """A ``{objective: value}`` point in minimisation form (maximised ones negated)."""
        return self.problem.objectives.matrix({k: np.array([point[k]]) for k in point})[0]

    def hypervolume(self, reference: Mapping[str, float] | None = None) -> float:
        """Hypervolume of the feasible trials (``reference`` in natural units, per objective)."""
        ref = self.reference_point() if reference is None else self.to_minimisation(reference)
        return hypervolume(self.F[self.feasible], ref)

    def hypervolume_history(self, reference: Mapping[str, float] | None = None) -> pd.DataFrame:
        """Hypervolume of the feasible trials after each iteration."""
        ref = self.reference_point() if reference is None else self.to_minimisation(reference)
        out = []
        front = np.empty((0, self.F.shape[1]))
        for it in np.unique(self.iteration):
            upto = self.iteration == it
            new = self.F[upto & self.feasible]
            if len(new):
                front = np.vstack([front, new])
                front = front[_nondominated_mask(front)]
            out.append(
                {
                    "iteration": int(it),
                    "trials": int(np.sum(self.iteration <= it)),
                    "hypervolume": hypervolume(front, ref) if len(front) else 0.0,
                }
            )
        return pd.DataFrame(out, columns=["iteration", "trials", "hypervolume"])
