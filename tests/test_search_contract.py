"""The contract every searcher inherits, on toy problems with optima known by enumeration."""

from __future__ import annotations

import subprocess
import sys

import _search_toy as toy
import numpy as np
import pytest

import nas
from nas.search import Problem, SearchResult, create_searcher, list_searchers, search

FAST = [s for s in list_searchers() if s != "gp"]
# Optuna's GP sampler costs seconds per trial on 2 cores: one run of 30 trials (8 random, 22
# modelled), shared by its tests
SEARCHERS = [*FAST, pytest.param("gp", marks=pytest.mark.slow)]
OPTIONS = {
    "evolution": {"population": 20},
    "nsga2": {"population": 20},
    "optuna-nsga2": {"population": 20},
    "linas": {"n_init": 10, "generations": 5},
    "gp": {"n_startup_trials": 8},
}
BUDGET = {"gp": 30}
SPACE = toy.tiny()
LIMIT = 10.0
OPTIMUM = toy.optimum(SPACE, LIMIT)


def evaluate(archs):
    return toy.toy_metrics(SPACE, archs)


def _run(name: str, budget: int | None = None, seed: int = 0, **kw) -> SearchResult:
    return search(
        SPACE,
        evaluate,
        objectives={"accuracy": "max", "latency_ms": "min"},
        constraints={"latency_ms": LIMIT},
        searcher=name,
        budget=budget or BUDGET.get(name, 80),
        seed=seed,
        options=OPTIONS.get(name),
        **kw,
    )


@pytest.fixture(scope="module")
def results() -> dict[str, SearchResult]:
    return {name: _run(name) for name in FAST}


def _get(results, name):
    if name not in results:  # gp: run once, on first use, for all its tests
        results[name] = _run(name)
    return results[name]


@pytest.mark.parametrize("name", SEARCHERS)
def test_budget_spent_on_distinct_valid_networks(results, name):
    result = _get(results, name)
    trials = result.trials
    assert len(trials) == BUDGET.get(name, 80)
    assert trials["key"].is_unique
    for text in trials["arch"].head(5):
        SPACE.validate(SPACE.from_json(text))
    assert list(trials.columns[:2]) == ["key", "arch"]
    assert {"accuracy", "latency_ms", "feasible", "iteration", "wall_time_s"} <= set(trials.columns)
    assert (trials["feasible"] == (trials["latency_ms"] <= LIMIT)).all()
    assert trials["iteration"].is_monotonic_increasing


@pytest.mark.parametrize("name", SEARCHERS)
def test_finds_a_near_optimal_feasible_network(results, name):
    result = _get(results, name)
    best = result.best()
    metrics = toy.toy_metrics(SPACE, [best])[0]
    assert metrics["latency_ms"] <= LIMIT
    assert metrics == pytest.approx({k: result.best_metrics()[k] for k in metrics})
    # 80 (gp: 30) of 1,200 networks: every searcher gets within 15% of the optimum's accuracy
    assert metrics["accuracy"] >= 0.85 * OPTIMUM


@pytest.mark.parametrize("name", SEARCHERS)
def test_pareto_front_is_feasible_and_non_dominated(results, name):
    front = _get(results, name).pareto
    assert len(front) >= 1
    assert front["feasible"].all()
    acc, lat = front["accuracy"].to_numpy(), front["latency_ms"].to_numpy()
    for i in range(len(front)):
        dominated = (acc >= acc[i]) & (lat <= lat[i]) & ((acc > acc[i]) | (lat < lat[i]))
        assert not dominated.any()
    assert (np.diff(acc) <= 0).all()  # best first on the first objective


@pytest.mark.parametrize("name", SEARCHERS)
def test_hypervolume_history_is_monotone(results, name):
    hv = _get(results, name).hypervolume_history()
    assert hv["trials"].iloc[-1] == BUDGET.get(name, 80)
    assert (np.diff(hv["hypervolume"].to_numpy()) >= -1e-9).all()
    assert hv["hypervolume"].iloc[-1] > 0


@pytest.mark.parametrize("name", [s for s in FAST if s not in ("tpe", "optuna-nsga2")])
def test_same_seed_same_trials(results, name):
    again = _run(name)
    assert again.trials["key"].tolist() == _get(results, name).trials["key"].tolist()


@pytest.mark.parametrize("name", FAST)
def test_tell_accepts_archs_never_asked(name):
    problem = Problem.create(SPACE, {"accuracy": "max"}, {"latency_ms": LIMIT})
    searcher = create_searcher(name, problem, seed=1, **OPTIONS.get(name, {}))
    archs = SPACE.sample_many(12, np.random.default_rng(0))
    searcher.tell(archs, evaluate(archs))
    asked = searcher.ask(4)
    assert 1 <= len(asked) <= 4
    for a in asked:
        SPACE.validate(a)


@pytest.mark.parametrize("name", ["random", "evolution", "regularized", "nsga2", "local", "tpe"])
def test_exhausted_space_stops_without_repeats(name):
    space = toy.micro_space()
    calls: list[str] = []

    def ev(archs):
        calls.extend(a.key for a in archs)
        return [{"accuracy": float(a["a"]) + (a["b"] == "y")} for a in archs]

    opts = {"population": 2} if name in ("evolution", "nsga2", "regularized") else None
    if name == "regularized":
        opts = {"population": 2, "tournament": 2}
    result = search(
        space, ev, objectives={"accuracy": "max"}, searcher=name, budget=50, options=opts
    )
    assert len(calls) == len(set(calls)) <= 6
    assert len(result) == len(calls)
    if len(calls) == 6:
        assert result.best_metrics()["accuracy"] == 4.0


def test_unknown_searcher_and_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match=r"unknown searcher 'nope'.*random"):
        search(SPACE, evaluate, searcher="nope")
    with pytest.raises(ValueError, match=r"objectives\['accuracy'\].*'min' and 'max'"):
        search(SPACE, evaluate, objectives={"accuracy": "up"})
    with pytest.raises(ValueError, match=r"constraints\['latency_ms'\]"):
        search(SPACE, evaluate, constraints={"latency_ms": "fast"})
    with pytest.raises(ValueError, match="budget"):
        search(SPACE, evaluate, budget=0)
    with pytest.raises(ValueError, match="no 'params' metric"):
        search(SPACE, evaluate, constraints={"params": 5.0}, searcher="random", budget=4)
    with pytest.raises(ValueError, match="population"):
        search(SPACE, evaluate, searcher="evolution", options={"population": 0})
    with pytest.raises(ValueError, match=r"searcher 'random'.*unexpected keyword"):
        search(SPACE, evaluate, searcher="random", options={"population": 5})


def test_lower_bound_constraints():
    result = search(
        SPACE,
        evaluate,
        objectives={"latency_ms": "min"},
        constraints={"accuracy": ("min", 15.0)},
        searcher="evolution",
        budget=60,
        options={"population": 20},
    )
    best = result.best_metrics()
    assert best["accuracy"] >= 15.0
    assert (result.trials["feasible"] == (result.trials["accuracy"] >= 15.0)).all()


def test_no_feasible_trial_raises_naming_the_constraint():
    result = search(SPACE, evaluate, constraints={"latency_ms": 0.5}, searcher="random", budget=10)
    with pytest.raises(ValueError, match="latency_ms"):
        result.best()
    assert len(result.pareto) == 0


class _ArrayToy:
    """The toy metrics on index rows (the predictor fast path)."""

    def evaluate(self, archs):
        return evaluate(archs)

    def evaluate_indices(self, rows):
        metrics = evaluate([SPACE.from_indices(r) for r in rows])
        return {k: np.array([m[k] for m in metrics]) for k in metrics[0]}


@pytest.mark.parametrize("name", ["nsga2", "evolution"])
def test_array_path_matches_object_path(name):
    fast = search(
        SPACE,
        _ArrayToy(),
        constraints={"latency_ms": LIMIT},
        searcher=name,
        budget=60,
        options={"population": 20},
    )
    slow = search(
        SPACE,
        evaluate,
        constraints={"latency_ms": LIMIT},
        searcher=name,
        budget=60,
        options={"population": 20},
    )
    assert fast.trials["key"].tolist() == slow.trials["key"].tolist()
    assert np.allclose(fast.trials["accuracy"], slow.trials["accuracy"])


def test_search_package_imports_neither_torch_nor_ray():
    code = (
        "import sys; from nas.search import search, SearchResult, create_searcher; "
        "import nas.search.local, nas.search.linas, nas.search.optuna_search; "
        "print('torch' in sys.modules, 'ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


class _StuckSearcher:
    """Proposes the same network forever (a searcher that cannot leave one point)."""

    def __init__(self) -> None:
        self.arch = SPACE.smallest()
        self.told: list[str] = []

    def ask(self, n):
        return [self.arch] * n

    def tell(self, archs, metrics):
        self.told.extend(a.key for a in archs)


class _StuckArraySearcher(_StuckSearcher):
    def ask_indices(self, n):
        return np.repeat(SPACE.indices([self.arch], fill_inactive=False), n, axis=0)

    def tell_indices(self, rows, metrics):
        self.told.extend(SPACE.from_indices(r).key for r in rows)


@pytest.mark.parametrize("array", [False, True])
def test_a_stuck_searcher_still_spends_its_budget(array):
    searcher = _StuckArraySearcher() if array else _StuckSearcher()
    calls: list[str] = []

    def ev(archs):
        calls.extend(a.key for a in archs)
        return evaluate(archs)

    evaluator = _ArrayToy() if array else ev
    result = search(SPACE, evaluator, searcher=searcher, budget=30, batch_size=5, seed=3)
    assert len(result) == 30
    assert result.trials["key"].is_unique
    if not array:
        assert len(calls) == len(set(calls)) == 30
    # the searcher was told every stand-in network it never asked for
    assert set(result.trials["key"]) <= set(searcher.told)


@pytest.mark.parametrize("searcher", ["evolution", "nsga2", "random"])
def test_non_finite_metrics_mark_the_trial_failed(searcher: str) -> None:
    """A NaN or infinite metric fails its trial: logged, counted, never best or on the front."""
    space = nas.create_space("tiny")

    def evaluate(archs: list[nas.ArchConfig]) -> list[dict[str, float]]:
        out = []
        for a in archs:
            bad = a["resolution"] == max(c.values for c in space.choices
                                         if c.name == "resolution")[-1]
            out.append({"accuracy": float("nan") if bad else float(a["s1.depth"]),
                        "latency_ms": float(a["resolution"])})
        return out

    result = nas.search(space, evaluate, objectives={"accuracy": "max", "latency_ms": "min"},
                        searcher=searcher, budget=24, seed=0)
    failed = result.failed
    assert failed.any() and not failed.all()
    assert not (failed & result.feasible).any()
    assert not np.isnan(result.pareto["accuracy"]).any()
    assert not np.isnan(result.best_metrics()["accuracy"])
    assert "failed" in repr(result)
