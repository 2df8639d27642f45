"""The search loop and :func:`search`, the local (no Ray) entry point.

The loop asks the searcher for a batch, evaluates it in one call, records and logs the trials,
and tells the searcher. It never evaluates a network twice: a repeated proposal is told its
cached metrics without spending budget. When a whole batch repeats known networks, the loop
draws unseen random networks in its place (a bounded number of draws) and tells the searcher
their metrics, so every searcher spends its full budget; only when those draws find nothing
new either (the space is nearly exhausted) does the batch count as a stall, and
``MAX_STALLS`` stalls in a row end the search early. With ``run_dir`` the trials are appended to
``trials.csv`` as they finish and ``resume=True`` replays them into a fresh searcher instead of
evaluating them again.

Example:
    >>> result = nas.search(space, evaluate, objectives={"accuracy": "max", "latency_ms": "min"},
    ...                     constraints={"latency_ms": 10.0}, searcher="evolution", budget=100)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.search.base import EvaluateFn, Metrics, Problem, Searcher, row_keys
from nas.search.registry import create_searcher
from nas.search.result import SearchResult
from nas.search.store import SearchStore
from nas.space import ArchConfig, SearchSpace

log = logging.getLogger(__name__)

MAX_STALLS = 20  # consecutive batches with nothing new before the loop gives up
FILL_DRAWS = 8  # rounds of random draws (4 x batch each) that stand in for an all-repeat batch
Progress = Callable[[int, int], None]


def _evaluate_fn(evaluate: Any) -> EvaluateFn | None:
    if hasattr(evaluate, "evaluate"):
        return evaluate.evaluate  # type: ignore[no-any-return]
    if callable(evaluate):
        return evaluate  # type: ignore[no-any-return]
    return None


class _Trials:
    """Accumulates trials batch by batch."""

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
        d = len(problem.space.choices)

        def cat(xs):
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


def _all_columns(problem: Problem, metrics: Sequence[Mapping[str, float]]) -> dict[str, np.ndarray]:
    cols = problem.columns(metrics)
    extra = sorted({k for m in metrics for k in m} - set(cols))
    for k in extra:
        cols[k] = np.array([float(m.get(k, np.nan)) for m in metrics])
    return cols


def _fill_rows(
    space: SearchSpace, rng: np.random.Generator, n: int, seen: set[int]
) -> tuple[np.ndarray, list[int]]:
    """Up to ``n`` random index rows of networks not in ``seen`` (bounded draws)."""
    sizes = np.array([len(c.values) for c in space.choices], dtype=np.int64)
    rows: list[np.ndarray] = []
    keys: list[int] = []
    taken: set[int] = set()
    for _ in range(FILL_DRAWS):
        pool = (rng.random((4 * n, len(sizes))) * sizes).astype(np.int64)
        for row, key in zip(pool, row_keys(space, pool)):
            if key not in seen and key not in taken:
                taken.add(key)
                rows.append(row)
                keys.append(key)
                if len(rows) == n:
                    return np.array(rows), keys
    return np.array(rows, dtype=np.int64).reshape(-1, len(sizes)), keys


def run_search(
    problem: Problem,
    searcher: Searcher,
    evaluate: Any,
    *,
    budget: int,
    batch_size: int,
    store: SearchStore | None = None,
    replay: tuple[list[ArchConfig], list[Metrics], list[int], list[float]] | None = None,
    progress: Progress | None = None,
    name: str = "",
    seed: int = 0,
) -> SearchResult:
    """Run the ask/evaluate/tell loop until ``budget`` trials are done (see module docs).

    ``seed`` seeds the random networks that stand in for all-repeat batches.
    """
    trials = _Trials()
    fill_rng = np.random.default_rng([seed, 0x5EED])
    space = problem.space
    cache: dict[str, Metrics] = {}
    cache_archs: list[ArchConfig] = []  # the cached networks, in insertion order
    cached_rows: set[int] = set()  # their row keys (filled lazily, for random stand-ins)
    first_it = 0
    wall0 = 0.0
    if replay and replay[0]:
        archs, metrics, iterations, walls = replay
        order = np.argsort(np.asarray(iterations), kind="stable")
        for it in np.unique(np.asarray(iterations)):
            idx = [i for i in order if iterations[i] == it]
            batch = [archs[i] for i in idx]
            batch_metrics = [metrics[i] for i in idx]
            cols = _all_columns(problem, batch_metrics)
            rows = space.indices(batch, fill_inactive=False)
            trials.add(rows, cols, int(it), max(walls[i] for i in idx), batch)
            searcher.tell(batch, batch_metrics)
            for a, m in zip(batch, batch_metrics):
                if a.key not in cache:
                    cache[a.key] = m
                    cache_archs.append(a)
        first_it = int(max(iterations)) + 1
        wall0 = max(walls)
        log.info("resumed %d trials; %d left of the budget", trials.count, budget - trials.count)
    use_arrays = (
        hasattr(searcher, "ask_indices") and hasattr(evaluate, "evaluate_indices") and store is None
    )
    fn = _evaluate_fn(evaluate)
    if fn is None and not use_arrays:
        raise ValueError(
            "evaluate must be a callable list[ArchConfig] -> list[dict] or have .evaluate(); "
            f"got {type(evaluate).__name__}"
        )
    start = time.perf_counter() - wall0
    seen: set[int] = set()
    it, stalls = first_it, 0
    while trials.count < budget and stalls < MAX_STALLS:
        n = min(batch_size, budget - trials.count)
        if use_arrays:
            rows = np.asarray(searcher.ask_indices(n), dtype=np.int64)  # type: ignore[attr-defined]
            if rows.ndim != 2:
                rows = rows.reshape(-1, len(space.choices))
            # an IndexSearcher knows the keys of the batch it just made
            keys_of = getattr(searcher, "keys_of", None)
            if not len(rows):
                keys = []
            elif keys_of is not None:
                keys = keys_of(rows)
            else:
                keys = row_keys(space, rows)
            keep = np.zeros(len(keys), dtype=bool)
            for i, k in enumerate(keys):  # repeats of known networks and within the batch
                if k not in seen:
                    seen.add(k)
                    keep[i] = True
            if not keep.all():  # (kept whole, ``rows`` stays the searcher's own array)
                rows = rows[keep]
            if not len(rows):
                rows, fill_keys = _fill_rows(space, fill_rng, n, seen)
                seen.update(fill_keys)
                if not len(rows):
                    stalls += 1
                    continue
                log.info(
                    "batch %d repeated known networks; evaluating %d random ones", it, len(rows)
                )
            cols = evaluate.evaluate_indices(rows)
            checked = problem.check_columns(cols, len(rows))
            checked.update(
                {k: np.asarray(v, dtype=float) for k, v in cols.items() if k not in checked}
            )
            trials.add(rows, checked, it, time.perf_counter() - start)
            searcher.tell_indices(rows, checked)  # type: ignore[attr-defined]
        else:
            asked = searcher.ask(n)
            new: list[ArchConfig] = []
            fresh_keys: set[str] = set()
            for a in asked:
                if a.key not in cache and a.key not in fresh_keys:
                    new.append(a)
                    fresh_keys.add(a.key)
            if not new:
                # the searcher learns the known metrics of its repeats; no budget is spent
                if asked:
                    searcher.tell(asked, [cache[a.key] for a in asked])
                if len(cached_rows) < len(cache_archs):
                    todo = cache_archs[len(cached_rows) :]
                    cached_rows.update(row_keys(space, space.indices(todo, fill_inactive=False)))
                fill, _ = _fill_rows(space, fill_rng, n, cached_rows)
                new = [space.from_indices(r) for r in fill]
                if not new:
                    stalls += 1
                    continue
                log.info(
                    "batch %d repeated known networks; evaluating %d random ones", it, len(new)
                )
                asked = new  # the searcher is told these (archs it never asked for)
            metrics = fn(new)  # type: ignore[misc]
            if not isinstance(metrics, list) or len(metrics) != len(new):
                got = len(metrics) if isinstance(metrics, list) else type(metrics).__name__
                raise ValueError(
                    f"evaluate returned {got} results for {len(new)} archs; "
                    "it must return a list with one metric dict per arch"
                )
            cols = _all_columns(problem, metrics)
            wall = time.perf_counter() - start
            trials.add(space.indices(new, fill_inactive=False), cols, it, wall, new)
            if store is not None:
                _, v = problem.scores(cols)
                store.append(new, cols, v <= 0, it, [wall] * len(new))
            cache.update({a.key: m for a, m in zip(new, metrics)})
            cache_archs.extend(new)
            # every asked arch is told, repeats included, so no searcher is left waiting
            searcher.tell(asked, [cache[a.key] for a in asked])
        stalls = 0
        it += 1
        if progress is not None:
            progress(trials.count, budget)
    if trials.count < budget:
        log.warning(
            "search stopped after %d of %d trials: no new architectures", trials.count, budget
        )
    return trials.result(problem, name, with_archs=not use_arrays)


def search(
    space: SearchSpace | str,
    evaluate: Any,
    objectives: Mapping[str, str] | None = None,
    constraints: Mapping[str, float | Sequence[float | str]] | None = None,
    searcher: str | Searcher = "evolution",
    budget: int = 100,
    seed: int = 0,
    batch_size: int | None = None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    info: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Search ``space`` for architectures that optimise ``objectives`` under ``constraints``.

    Args:
        space: a :class:`~nas.space.SearchSpace` or a registered space name.
        evaluate: ``list[ArchConfig] -> list[dict[str, float]]`` (a function or an object with
            ``.evaluate``); an object with ``evaluate_indices`` (predictors) is used on index
            rows directly when the searcher supports it and nothing is logged to disk.
        objectives: ``{metric: "max" | "min"}``; the first ranks :meth:`SearchResult.best`.
            Default ``{"accuracy": "max", "latency_ms": "min"}``.
        constraints: ``{metric: upper_limit}`` or ``{metric: ("min", lower_limit)}``.
        searcher: a name from :func:`nas.search.list_searchers` or a :class:`Searcher`.
        budget: how many distinct architectures to evaluate.
        seed: seeds the searcher.
        batch_size: architectures per evaluate call (default: the searcher's preference).
        run_dir: a directory for ``plan.json``, ``trials.csv``, ``pareto.csv``, ``pareto.png``.
        resume: continue the search logged in ``run_dir`` without re-evaluating its trials.
        options: keyword options of the searcher (e.g. ``{"population": 50}``).
        progress: called with ``(trials_done, budget)`` after each batch.
        info: extra JSON-able fields for ``plan.json`` (e.g. which metrics are measured).

    Returns:
        The :class:`SearchResult`.

    Example:
        >>> import nas
        >>> space = nas.create_space("nb201")
        >>> result = nas.search(space, lambda archs: [table[a.key] for a in archs],
        ...                     objectives={"accuracy": "max", "latency_ms": "min"},
        ...                     constraints={"latency_ms": 10.0}, searcher="local", budget=100)
        >>> result.best(), result.pareto
    """
    if isinstance(space, str):
        from nas.registry import create_space

        space = create_space(space)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ValueError(f"budget must be a positive int, got {budget!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    problem = Problem.create(
        space, objectives or {"accuracy": "max", "latency_ms": "min"}, constraints
    )
    opts = dict(options or {})
    store = SearchStore(run_dir, problem) if run_dir is not None else None
    if isinstance(searcher, str):
        name = searcher
        if store is not None and name in ("tpe", "gp", "optuna-nsga2") and "storage" not in opts:
            opts["storage"] = str(Path(run_dir) / "optuna.journal")  # type: ignore[arg-type]
        engine = create_searcher(name, problem, seed=seed, **opts)
    else:
        name = type(searcher).__name__
        engine = searcher
    replay = None
    if store is not None:
        if resume and store.plan_path.exists():
            store.check_plan()
            replay = store.load_trials()
        elif store.trials_path.exists() and not resume:
            raise ValueError(f"{store.trials_path} exists; pass resume=True to continue it")
        store.write_plan(
            {
                "searcher": name,
                "budget": budget,
                "seed": seed,
                "batch_size": batch_size,
                "options": {
                    k: v for k, v in opts.items() if isinstance(v, (int, float, str, bool))
                },
                **dict(info or {}),
            }
        )
    batch = batch_size or int(getattr(engine, "preferred_batch", 8))
    result = run_search(
        problem,
        engine,
        evaluate,
        budget=budget,
        batch_size=batch,
        store=store,
        replay=replay,
        progress=progress,
        name=name,
        seed=seed,
    )
    if store is not None:
        store.write_outputs(result)
    return result
