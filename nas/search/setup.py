"""Checks and builders that :func:`nas.search.search` runs before its loop: the problem, the
searcher (with its Optuna journal) and the run directory's state.

Example:
    >>> replay, logged_budget = check_store(SearchStore(run_dir, problem), resume=True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from nas.search.base import Metrics, Problem, Searcher
from nas.search.registry import create_searcher
from nas.search.store import SearchStore
from nas.space import ArchConfig, SearchSpace


def make_problem(
    space: SearchSpace | str,
    objectives: Mapping[str, str] | None,
    constraints: Mapping[str, float | Sequence[float | str]] | None,
    budget: int,
    batch_size: int | None,
) -> Problem:
    """Validate the arguments of :func:`search` and build its problem."""
    if isinstance(space, str):
        from nas.registry import create_space

        space = create_space(space)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ConfigError(f"budget must be a positive int, got {budget!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
    return Problem.create(
        space, {"accuracy": "max", "latency_ms": "min"} if objectives is None else objectives,
        constraints,
    )


def make_engine(
    searcher: str | Searcher,
    problem: Problem,
    seed: int,
    opts: dict[str, Any],
    run_dir: str | Path | None,
    *,
    fresh_study: bool = False,
) -> tuple[str, Searcher]:
    """The searcher's name and the searcher (built from a name; Optuna's study is journalled
    in ``run_dir`` unless ``opts`` names a storage, which it then does). ``fresh_study``: a
    resumed run replays its log, so the journal it rebuilds starts empty (``trials.csv``, not
    the journal, is the record)."""
    if not isinstance(searcher, str):
        return type(searcher).__name__, searcher
    if run_dir is not None and searcher in ("tpe", "gp", "optuna-nsga2") and "storage" not in opts:
        journal = Path(run_dir) / "optuna.journal"
        if fresh_study:
            for stale in (journal, journal.with_name(journal.name + ".lock")):
                stale.unlink(missing_ok=True)
        opts["storage"] = str(journal)
    return searcher, create_searcher(searcher, problem, seed=seed, **opts)


def check_store(
    store: SearchStore, resume: bool
) -> tuple[tuple[list[ArchConfig], list[Metrics], list[int], list[float]] | None, int | None]:
    """Check ``store`` against ``resume``; the trials to replay and the logged run's budget."""
    if resume and store.plan_path.exists():
        plan = store.check_plan()
        budget = plan.get("budget")
        return store.load_trials(), budget if isinstance(budget, int) else None
    if store.trials_path.exists() and not resume:
        raise ConfigError(f"{store.trials_path} exists; pass resume=True to continue it")
    return None, None
