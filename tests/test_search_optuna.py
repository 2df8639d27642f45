"""Optuna searchers: repeated proposals are told their known result and replaced, never re-run."""

from __future__ import annotations

import _search_toy as toy
import optuna
import pytest

from nas.search import Problem, search
from nas.search.optuna_search import OptunaSearcher

SPACE = toy.tiny()


class _StuckSampler(optuna.samplers.BaseSampler):
    """Always proposes the first value of every dimension (a sampler stuck on one network)."""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):
        return param_distribution.choices[0]


def _stuck_searcher(**kw) -> OptunaSearcher:
    problem = Problem.create(SPACE, {"accuracy": "max", "latency_ms": "min"}, {"latency_ms": 10.0})
    searcher = OptunaSearcher(problem, seed=0, sampler="tpe", **kw)
    searcher.study.sampler = _StuckSampler()
    return searcher


def _evaluate(calls):
    def ev(archs):
        calls.extend(a.key for a in archs)
        return toy.toy_metrics(SPACE, archs)

    return ev


@pytest.mark.parametrize("batch_size", [1, 4])
def test_repeated_proposals_are_replaced_and_the_budget_is_spent(batch_size):
    searcher = _stuck_searcher()
    calls: list[str] = []
    result = search(
        SPACE,
        _evaluate(calls),
        constraints={"latency_ms": 10.0},
        searcher=searcher,
        budget=25,
        batch_size=batch_size,
    )
    assert len(result) == 25
    assert len(calls) == len(set(calls)) == 25
    assert searcher.repeats >= 24  # every proposal after the first repeated a network
    trials = searcher.study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == len(trials)  # the repeats were told, none left running or failed
    # the stuck network was told its known result each time it was proposed again
    stuck = [t for t in done if t.user_attrs["arch_key"] == calls[0]]
    assert len(stuck) == 1 + searcher.repeats
    assert len(trials) == 25 + searcher.repeats
    assert len({tuple(t.values) for t in stuck}) == 1
    assert len({t.system_attrs["constraints:latency_ms"] for t in stuck}) == 1


def test_repeats_within_one_batch_wait_for_the_pending_result():
    searcher = _stuck_searcher()
    asked = searcher.ask(3)
    assert len({a.key for a in asked}) == 3  # the 2nd and 3rd proposals were substituted
    running = searcher.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    assert len(running) == 5  # 3 handed out + 2 repeats of the pending first network
    searcher.tell(asked, toy.toy_metrics(SPACE, asked))
    states = {t.state for t in searcher.study.get_trials(deepcopy=False)}
    assert states == {optuna.trial.TrialState.COMPLETE}


def test_exhausted_space_asks_for_fewer():
    space = toy.micro_space()
    problem = Problem.create(space, {"accuracy": "max"})
    searcher = OptunaSearcher(problem, seed=0, sampler="tpe")
    searcher.study.sampler = _StuckSampler()
    calls: list[str] = []

    def ev(archs):
        calls.extend(a.key for a in archs)
        return [{"accuracy": float(a["a"])} for a in archs]

    result = search(space, ev, objectives={"accuracy": "max"}, searcher=searcher, budget=50)
    assert len(calls) == len(set(calls)) == 6 == len(result)


@pytest.mark.parametrize("sampler", ["tpe", "gp", "nsga2"])
def test_samplers_pickle_and_keep_sampling(sampler):
    """Ray Tune pickles its search algorithm; Optuna 5.1's NSGA-II holds a thread lock."""
    import pickle

    from nas.search.optuna_search import distributions, make_sampler

    restored = pickle.loads(pickle.dumps(make_sampler(sampler, seed=0, population=4)))
    study = optuna.create_study(sampler=restored, directions=["maximize", "minimize"])
    dists = distributions(SPACE)
    for _ in range(6):
        trial = study.ask(dists)
        study.tell(trial, [float(len(trial.params)), 1.0])
    assert len(study.trials) == 6
