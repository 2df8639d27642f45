"""A search's directory: ``plan.json``, ``trials.csv`` (appended as trials finish),
``pareto.csv`` and ``pareto.png``.

``trials.csv`` is an append-only log: each batch is written as whole lines and fsynced, and
a reader drops a truncated last line, so a crash never corrupts earlier trials. Every other
file is written atomically (:func:`nas.rundir.atomic_write`).

Example:
    >>> store = SearchStore("runs/demo/search/pixel3", problem)
    >>> store.write_plan({"searcher": "evolution", "budget": 100, "seed": 0})
    >>> archs, metrics, iterations, wall = store.load_trials()
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import ConfigError
from nas.rundir import (
    HYPERVOLUME_FILE,
    PARETO_FILE,
    PARETO_PLOT,
    PLAN_FILE,
    TRIALS_FILE,
    atomic_write_json,
    atomic_write_text,
    read_json,
)
from nas.search.base import Problem
from nas.search.result import SearchResult
from nas.space import ArchConfig, SearchSpace

log = logging.getLogger(__name__)


class SearchStore:
    """The files of one search (one device profile) under ``directory``."""

    def __init__(self, directory: str | Path, problem: Problem) -> None:
        self.directory = Path(directory)
        self.problem = problem
        self._header: list[str] | None = None

    @property
    def trials_path(self) -> Path:
        return self.directory / TRIALS_FILE

    @property
    def plan_path(self) -> Path:
        return self.directory / PLAN_FILE

    def problem_spec(self) -> dict[str, Any]:
        """The part of the plan a resumed search must share."""
        return {
            "space": self.problem.space.name,
            "fingerprint": self.problem.space.fingerprint(),
            "objectives": self.problem.objectives.to_dict(),
            "constraints": self.problem.constraints.to_dict(),
        }

    def write_plan(self, plan: Mapping[str, Any]) -> None:
        """Write ``plan.json`` (the problem plus ``plan``'s searcher settings)."""
        atomic_write_json(self.plan_path, {**self.problem_spec(), **plan})

    def check_plan(self) -> dict[str, Any]:
        """Read ``plan.json``; ``ValueError`` if it was written for another problem."""
        plan = dict(read_json(self.plan_path))
        mine = json.loads(json.dumps(self.problem_spec()))
        for field, value in mine.items():
            if plan.get(field) != value:
                raise ConfigError(
                    f"{self.plan_path}: cannot resume, {field} was {plan.get(field)!r}, "
                    f"now {value!r}"
                )
        return plan

    # ------------------------------------------------------------------ trials
    def append(
        self,
        archs: Sequence[ArchConfig],
        metrics: Mapping[str, Sequence[float] | np.ndarray],
        feasible: Sequence[bool] | np.ndarray,
        iteration: int,
        wall_time: Sequence[float],
    ) -> None:
        """Append one batch of trials as whole lines, then fsync."""
        if not archs:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._header is None:
            self._drop_torn_tail()
            self._header = self._existing_header() or [
                "key",
                "arch",
                "iteration",
                "wall_time_s",
                "feasible",
                *sorted(metrics),
            ]
        missing = [m for m in metrics if m not in self._header]
        if missing:
            log.warning("trials.csv has no column for metrics %s; they are not logged", missing)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if not self.trials_path.exists() or self.trials_path.stat().st_size == 0:
            writer.writerow(self._header)
        for i, arch in enumerate(archs):
            row: dict[str, Any] = {
                "key": arch.key,
                "arch": json.dumps(arch.to_dict()),
                "iteration": iteration,
                "wall_time_s": f"{wall_time[i]:.4f}",
                "feasible": int(bool(feasible[i])),
            }
            for m, values in metrics.items():
                row[m] = repr(float(values[i]))
            writer.writerow([row.get(col, "") for col in self._header])
        with open(self.trials_path, "a", encoding="utf-8") as handle:
            handle.write(buf.getvalue())
            handle.flush()
            os.fsync(handle.fileno())

    def _drop_torn_tail(self) -> None:
        """Cut a last line torn by a crash off ``trials.csv`` so new lines start clean."""
        path = self.trials_path
        if not path.exists() or path.stat().st_size == 0:
            return
        with open(path, "rb+") as handle:
            data = handle.read()
            if not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)
                handle.flush()
                os.fsync(handle.fileno())

    def _existing_header(self) -> list[str] | None:
        if not self.trials_path.exists() or self.trials_path.stat().st_size == 0:
            return None
        with open(self.trials_path, encoding="utf-8") as handle:
            return next(csv.reader(handle), None)

    def load_trials(
        self,
    ) -> tuple[list[ArchConfig], list[dict[str, float]], list[int], list[float]]:
        """Trials logged so far: archs, metric dicts, iterations, wall times (a torn last line
        is dropped)."""
        if not self.trials_path.exists():
            return [], [], [], []
        text = self.trials_path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # drop a line torn by a crash
        reader = csv.DictReader(io.StringIO(text))
        fixed = {"key", "arch", "iteration", "wall_time_s", "feasible"}
        archs, metrics, iterations, walls = [], [], [], []
        for record in reader:
            arch = self.problem.space.arch(json.loads(record["arch"]))
            archs.append(arch)
            metrics.append(
                {
                    k: float(v) if v not in ("", None) else math.nan
                    for k, v in record.items()
                    if k not in fixed and k is not None
                }
            )
            iterations.append(int(record["iteration"]))
            walls.append(float(record["wall_time_s"]))
        return archs, metrics, iterations, walls

    # ------------------------------------------------------------------ outputs
    def write_outputs(self, result: SearchResult, *, plot: bool = True) -> None:
        """Write ``pareto.csv``, ``hypervolume.csv`` and (``plot``) ``pareto.png``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.directory / PARETO_FILE, result.pareto.to_csv(index=False))
        atomic_write_text(
            self.directory / HYPERVOLUME_FILE, result.hypervolume_history().to_csv(index=False)
        )
        if plot and len(result):
            from nas.search.plot import plot_pareto

            plot_pareto(result, self.directory / PARETO_PLOT)


def load_result(directory: str | Path, space: SearchSpace) -> SearchResult:
    """The search logged in ``directory`` (``plan.json`` and ``trials.csv``) as a result.

    Example:
        >>> result = load_result("runs/demo/search/nb201_pixel3", space)
        >>> result.chosen(2)
    """
    directory = Path(directory)
    plan = dict(read_json(directory / PLAN_FILE))
    problem = Problem.create(space, plan["objectives"], plan.get("constraints") or None)
    archs, metrics, iterations, walls = SearchStore(directory, problem).load_trials()
    columns = {
        name: np.array([m.get(name, np.nan) for m in metrics], dtype=float)
        for name in dict.fromkeys(k for m in metrics for k in m)
    }
    return SearchResult(
        problem, rows=space.indices(archs, fill_inactive=False) if archs else np.empty(
            (0, len(space.choices)), dtype=np.int64),
        columns=columns, iteration=np.asarray(iterations), wall_time=np.asarray(walls),
        archs=archs, searcher=str(plan.get("searcher", "")),
    )
