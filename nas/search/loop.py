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

from nas.errors import ConfigError
from nas.search.base import EvaluateFn, Metrics, Problem, Searcher, row_keys
from nas.search.registry import create_searcher
from nas.search.result import SearchResult
from nas.search.store import SearchStore
from nas.search.trials import TrialLog
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


class _Loop:
    """One run of the loop: the trials so far, what is known, and one batch at a time.

    Two paths: index rows with an array evaluator (no per-architecture objects), or
    ``ArchConfig`` batches with a list evaluator (cached metrics, optional store).
    """

    def __init__(
        self, problem: Problem, searcher: Searcher, store: SearchStore | None, seed: int
    ) -> None:
        self.problem = problem
        self.space = problem.space
        self.searcher = searcher
        self.store = store
        self.trials = TrialLog()
        self.fill_rng = np.random.default_rng([seed, 0x5EED])
        self.cache: dict[str, Metrics] = {}
        self.cache_archs: list[ArchConfig] = []  # the cached networks, in insertion order
        self.cached_rows: set[int] = set()  # their row keys (filled lazily, for stand-ins)
        self.seen: set[int] = set()  # row keys evaluated on the array path
        self.start = time.perf_counter()

    def replay(
        self, replay: tuple[list[ArchConfig], list[Metrics], list[int], list[float]]
    ) -> tuple[int, float]:
        """Tell the searcher a resumed run's trials; the next iteration and the wall time."""
        archs, metrics, iterations, walls = replay
        order = np.argsort(np.asarray(iterations), kind="stable")
        for it in np.unique(np.asarray(iterations)):
            idx = [i for i in order if iterations[i] == it]
            batch = [archs[i] for i in idx]
            batch_metrics = [metrics[i] for i in idx]
            cols = _all_columns(self.problem, batch_metrics)
            rows = self.space.indices(batch, fill_inactive=False)
            self.trials.add(rows, cols, int(it), max(walls[i] for i in idx), batch)
            self.searcher.tell(batch, batch_metrics)
            for a, m in zip(batch, batch_metrics):
                if a.key not in self.cache:
                    self.cache[a.key] = m
                    self.cache_archs.append(a)
        return int(max(iterations)) + 1, max(walls)

    def array_batch(self, evaluate: Any, n: int, it: int) -> bool:
        """Ask rows, evaluate the unseen ones in one call, tell them; ``False``: a stall."""
        space, searcher = self.space, self.searcher
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
            if k not in self.seen:
                self.seen.add(k)
                keep[i] = True
        if not keep.all():  # (kept whole, ``rows`` stays the searcher's own array)
            rows = rows[keep]
        if not len(rows):
            rows, fill_keys = _fill_rows(space, self.fill_rng, n, self.seen)
            self.seen.update(fill_keys)
            if not len(rows):
                return False
            log.info("batch %d repeated known networks; evaluating %d random ones", it, len(rows))
        cols = evaluate.evaluate_indices(rows)
        checked = self.problem.check_columns(cols, len(rows))
        checked.update({k: np.asarray(v, dtype=float) for k, v in cols.items() if k not in checked})
        self.trials.add(rows, checked, it, time.perf_counter() - self.start)
        searcher.tell_indices(rows, checked)  # type: ignore[attr-defined]
        return True

    def arch_batch(self, fn: EvaluateFn, n: int, it: int) -> bool:
        """Ask architectures, evaluate the unseen ones in one call, tell every asked one;
        ``False``: a stall."""
        asked = self.searcher.ask(n)
        new: list[ArchConfig] = []
        fresh_keys: set[str] = set()
        for a in asked:
            if a.key not in self.cache and a.key not in fresh_keys:
                new.append(a)
                fresh_keys.add(a.key)
        if not new:
            # the searcher learns the known metrics of its repeats; no budget is spent
            if asked:
                self.searcher.tell(asked, [self.cache[a.key] for a in asked])
            new = self._stand_ins(n)
            if not new:
                return False
            log.info("batch %d repeated known networks; evaluating %d random ones", it, len(new))
            asked = new  # the searcher is told these (archs it never asked for)
        metrics = fn(new)
        if not isinstance(metrics, list) or len(metrics) != len(new):
            got = len(metrics) if isinstance(metrics, list) else type(metrics).__name__
            raise ConfigError(
                f"evaluate returned {got} results for {len(new)} archs; "
                "it must return a list with one metric dict per arch"
            )
        cols = _all_columns(self.problem, metrics)
        wall = time.perf_counter() - self.start
        self.trials.add(self.space.indices(new, fill_inactive=False), cols, it, wall, new)
        if self.store is not None:
            _, v = self.problem.scores(cols)
            self.store.append(new, cols, v <= 0, it, [wall] * len(new))
        self.cache.update({a.key: m for a, m in zip(new, metrics)})
        self.cache_archs.extend(new)
        # every asked arch is told, repeats included, so no searcher is left waiting
        self.searcher.tell(asked, [self.cache[a.key] for a in asked])
        return True

    def _stand_ins(self, n: int) -> list[ArchConfig]:
        """Up to ``n`` random networks never evaluated (for an all-repeat batch)."""
        if len(self.cached_rows) < len(self.cache_archs):
            todo = self.cache_archs[len(self.cached_rows) :]
            self.cached_rows.update(
                row_keys(self.space, self.space.indices(todo, fill_inactive=False))
            )
        fill, _ = _fill_rows(self.space, self.fill_rng, n, self.cached_rows)
        return self.space.from_index_matrix(fill)


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
    loop = _Loop(problem, searcher, store, seed)
    first_it, wall0 = 0, 0.0
    if replay and replay[0]:
        first_it, wall0 = loop.replay(replay)
        done = loop.trials.count
        log.info("resumed %d trials; %d left of the budget", done, budget - done)
    use_arrays = (
        hasattr(searcher, "ask_indices") and hasattr(evaluate, "evaluate_indices") and store is None
    )
    fn = _evaluate_fn(evaluate)
    if fn is None and not use_arrays:
        raise ConfigError(
            "evaluate must be a callable list[ArchConfig] -> list[dict] or have .evaluate(); "
            f"got {type(evaluate).__name__}"
        )
    loop.start = time.perf_counter() - wall0
    it, stalls = first_it, 0
    while loop.trials.count < budget and stalls < MAX_STALLS:
        n = min(batch_size, budget - loop.trials.count)
        if use_arrays:
            done = loop.array_batch(evaluate, n, it)
        else:
            done = loop.arch_batch(fn, n, it)  # type: ignore[arg-type]
        if not done:
            stalls += 1
            continue
        stalls = 0
        it += 1
        if progress is not None:
            progress(loop.trials.count, budget)
    if loop.trials.count < budget:
        log.warning(
            "search stopped after %d of %d trials: no new architectures", loop.trials.count, budget
        )
    return loop.trials.result(problem, name, with_archs=not use_arrays)


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

    Example:
        >>> result = nas.search(nas.create_space("nb201"), evaluate, searcher="local",
        ...                     objectives={"accuracy": "max"}, constraints={"latency_ms": 10.0})
        >>> result.best(), result.pareto
    """
    problem = _problem(space, objectives, constraints, budget, batch_size)
    opts = dict(options or {})
    store = SearchStore(run_dir, problem) if run_dir is not None else None
    name, engine = _engine(searcher, problem, seed, opts, run_dir)
    replay = None
    if store is not None:
        simple = {k: v for k, v in opts.items() if isinstance(v, (int, float, str, bool))}
        plan = {"searcher": name, "budget": budget, "seed": seed, "batch_size": batch_size}
        replay = _open_store(store, resume, {**plan, "options": simple, **dict(info or {})})
    batch = batch_size or int(getattr(engine, "preferred_batch", 8))
    result = run_search(
        problem, engine, evaluate, budget=budget, batch_size=batch, store=store, replay=replay,
        progress=progress, name=name, seed=seed,
    )
    if store is not None:
        store.write_outputs(result)
    return result


def _problem(
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
        space, objectives or {"accuracy": "max", "latency_ms": "min"}, constraints
    )


def _engine(
    searcher: str | Searcher,
    problem: Problem,
    seed: int,
    opts: dict[str, Any],
    run_dir: str | Path | None,
) -> tuple[str, Searcher]:
    """The searcher's name and the searcher (built from a name; Optuna's study is journalled
    in ``run_dir`` unless ``opts`` names a storage, which it then does)."""
    if not isinstance(searcher, str):
        return type(searcher).__name__, searcher
    if run_dir is not None and searcher in ("tpe", "gp", "optuna-nsga2") and "storage" not in opts:
        opts["storage"] = str(Path(run_dir) / "optuna.journal")
    return searcher, create_searcher(searcher, problem, seed=seed, **opts)


def _open_store(
    store: SearchStore, resume: bool, plan: Mapping[str, Any]
) -> tuple[list[ArchConfig], list[Metrics], list[int], list[float]] | None:
    """Check ``store`` against ``resume``, write ``plan``, return the trials to replay."""
    replay = None
    if resume and store.plan_path.exists():
        store.check_plan()
        replay = store.load_trials()
    elif store.trials_path.exists() and not resume:
        raise ConfigError(f"{store.trials_path} exists; pass resume=True to continue it")
    store.write_plan(plan)
    return replay
