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
from nas.search.replay import MISMATCH, Recorded
from nas.search.result import SearchResult
from nas.search.setup import check_store, make_engine, make_problem
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


def _checked(metrics: Any, n: int) -> list[Metrics]:
    """``metrics`` if it is a list of ``n`` results, else a :class:`ConfigError`."""
    if not isinstance(metrics, list) or len(metrics) != n:
        got = len(metrics) if isinstance(metrics, list) else type(metrics).__name__
        raise ConfigError(
            f"evaluate returned {got} results for {n} archs; "
            "it must return a list with one metric dict per arch"
        )
    return metrics


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
        self.recorded: Recorded | None = None  # a resumed run's log, while it is replayed
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
        """Ask architectures, evaluate the unseen ones in one call (answered from the log
        while a resumed run replays it), tell every asked one; ``False``: a stall."""
        asked = self.searcher.ask(n)
        new = self._unseen(asked)
        if not new:
            # the searcher learns the known metrics of its repeats; no budget is spent
            if asked:
                self.searcher.tell(asked, [self.cache[a.key] for a in asked])
            new = self._stand_ins(n)
            if not new:
                return False
            log.info("batch %d repeated known networks; evaluating %d random ones", it, len(new))
            asked = new  # the searcher is told these (archs it never asked for)
        k = self.recorded.match(new, it) if self.recorded is not None else 0
        if k == MISMATCH:
            self.abandon_replay()
            new, k = self._unseen(new), 0
        if k:
            metrics, wall = self.recorded.take(k)  # type: ignore[union-attr]
            self._record(new[:k], metrics, it, wall, logged=True)
        if k < len(new):
            self._record(new[k:], _checked(fn(new[k:]), len(new) - k), it,
                         time.perf_counter() - self.start, logged=False)
        # every asked arch is told, repeats included, so no searcher is left waiting
        self.searcher.tell(asked, [self.cache[a.key] for a in asked])
        return True

    def _unseen(self, archs: Sequence[ArchConfig]) -> list[ArchConfig]:
        """``archs`` not evaluated yet, each network once, in order."""
        out: list[ArchConfig] = []
        keys: set[str] = set()
        for a in archs:
            if a.key not in self.cache and a.key not in keys:
                out.append(a)
                keys.add(a.key)
        return out

    def _record(
        self, archs: list[ArchConfig], metrics: list[Metrics], it: int, wall: float, *,
        logged: bool,
    ) -> None:
        """Add one evaluated (or ``logged``: replayed) part of a batch to the trials, the
        cache and, unless ``logged``, the store."""
        cols = _all_columns(self.problem, metrics)
        self.trials.add(self.space.indices(archs, fill_inactive=False), cols, it, wall, archs)
        if self.store is not None and not logged:
            _, v = self.problem.scores(cols)
            self.store.append(archs, cols, v <= 0, it, [wall] * len(archs))
        self.cache.update({a.key: m for a, m in zip(archs, metrics)})
        self.cache_archs.extend(archs)

    def abandon_replay(self) -> None:
        """The log stopped matching the re-run: tell its remaining trials as plain trials."""
        if self.recorded is None or not self.recorded.active:
            return
        rest = self.recorded.rest()
        log.warning("resume: the log no longer matches the re-run search (another seed, "
                    "searcher or budget?); %d trials replayed as told trials", len(rest[0]))
        self.replay(rest)

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
    replay_budget: int | None = None,
) -> SearchResult:
    """Run the ask/evaluate/tell loop until ``budget`` trials are done (see module docs).

    ``seed`` seeds the random networks that stand in for all-repeat batches. ``replay`` (a
    resumed run's logged trials) is replayed exactly (:mod:`nas.search.replay`);
    ``replay_budget`` is the budget of the run that logged it (default ``budget``).
    """
    loop = _Loop(problem, searcher, store, seed)
    if replay and replay[0]:
        loop.recorded = Recorded(*replay, budget=replay_budget or budget)
        log.info("resuming: replaying %d logged trials", len(replay[0]))
    use_arrays = (
        hasattr(searcher, "ask_indices") and hasattr(evaluate, "evaluate_indices") and store is None
    )
    fn = _evaluate_fn(evaluate)
    if fn is None and not use_arrays:
        raise ConfigError(
            "evaluate must be a callable list[ArchConfig] -> list[dict] or have .evaluate(); "
            f"got {type(evaluate).__name__}"
        )
    loop.start = time.perf_counter() - (loop.recorded.last_wall if loop.recorded else 0.0)
    it, stalls = 0, 0
    while loop.trials.count < budget and stalls < MAX_STALLS:
        rec = loop.recorded
        limit = rec.budget if rec is not None and rec.active else budget
        n = min(batch_size, limit - loop.trials.count)
        if n < 1:  # the logged run had a smaller budget than what it logged
            loop.abandon_replay()
            continue
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
    loop.abandon_replay()  # logged trials beyond a smaller budget still count
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
    problem = make_problem(space, objectives, constraints, budget, batch_size)
    opts = dict(options or {})
    store = SearchStore(run_dir, problem) if run_dir is not None else None
    replay, logged_budget = check_store(store, resume) if store is not None else (None, None)
    name, engine = make_engine(searcher, problem, seed, opts, run_dir, fresh_study=bool(replay))
    if store is not None:
        simple = {k: v for k, v in opts.items() if isinstance(v, (int, float, str, bool))}
        plan = {"searcher": name, "budget": budget, "seed": seed, "batch_size": batch_size}
        store.write_plan({**plan, "options": simple, **dict(info or {})})
    batch = batch_size or int(getattr(engine, "preferred_batch", 8))
    result = run_search(
        problem, engine, evaluate, budget=budget, batch_size=batch, store=store, replay=replay,
        progress=progress, name=name, seed=seed, replay_budget=logged_budget,
    )
    if store is not None:
        store.write_outputs(result)
    return result
