"""Persistence: trials appended as they finish, resume without re-evaluation, outputs."""

from __future__ import annotations

import json

import _search_toy as toy
import pytest

from nas.search import search

SPACE = toy.tiny()


class Counting:
    def __init__(self):
        self.keys: list[str] = []

    def __call__(self, archs):
        self.keys.extend(a.key for a in archs)
        return toy.toy_metrics(SPACE, archs)


@pytest.mark.parametrize("name", ["evolution", "tpe", "local"])
def test_resume_continues_without_re_evaluating(tmp_path, name):
    run = tmp_path / "search" / "cpu"
    first = Counting()
    opts = {"population": 10} if name == "evolution" else None
    search(
        SPACE,
        first,
        constraints={"latency_ms": 10.0},
        searcher=name,
        budget=20,
        run_dir=run,
        options=opts,
    )
    lines = (run / "trials.csv").read_text().splitlines()
    assert len(lines) == 21 and lines[0].startswith("key,arch,iteration,wall_time_s,feasible")
    plan = json.loads((run / "plan.json").read_text())
    assert plan["searcher"] == name and plan["constraints"] == {"latency_ms": 10.0}
    with pytest.raises(ValueError, match="resume=True"):
        search(
            SPACE, first, constraints={"latency_ms": 10.0}, searcher=name, budget=30, run_dir=run
        )
    second = Counting()
    result = search(
        SPACE,
        second,
        constraints={"latency_ms": 10.0},
        searcher=name,
        budget=35,
        run_dir=run,
        resume=True,
        options=opts,
    )
    assert len(second.keys) == 15
    assert not set(second.keys) & set(first.keys)
    assert len(result) == 35 and result.trials["key"].is_unique
    assert len((run / "trials.csv").read_text().splitlines()) == 36
    for out in ("pareto.csv", "pareto.png", "hypervolume.csv"):
        assert (run / out).stat().st_size > 0
    if name == "tpe":
        assert (run / "optuna.journal").exists()


def test_resume_drops_a_torn_last_line_and_refuses_another_problem(tmp_path):
    run = tmp_path / "s"
    search(
        SPACE,
        Counting(),
        constraints={"latency_ms": 10.0},
        searcher="random",
        budget=8,
        run_dir=run,
    )
    path = run / "trials.csv"
    path.write_text(path.read_text() + '"abc,{"s1.depth": 1')  # a crash mid-line
    again = Counting()
    result = search(
        SPACE,
        again,
        constraints={"latency_ms": 10.0},
        searcher="random",
        budget=10,
        run_dir=run,
        resume=True,
    )
    assert len(again.keys) == 2 and len(result) == 10
    with pytest.raises(ValueError, match="constraints"):
        search(
            SPACE,
            Counting(),
            constraints={"latency_ms": 5.0},
            searcher="random",
            budget=12,
            run_dir=run,
            resume=True,
        )
