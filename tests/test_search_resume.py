"""Exact resume: a search interrupted at any point and resumed logs the same trials, in the
same order, as an uninterrupted run with the same seed (for every registered searcher)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import _search_toy as toy
import pytest

from nas.search import list_searchers, search

SPACE = toy.tiny()
BUDGET = 24
CONSTRAINTS = {"latency_ms": 10.0}
# small settings so every searcher gets past its random start within the budget
OPTIONS: dict[str, dict[str, object]] = {
    "evolution": {"population": 6},
    "regularized": {"population": 6, "tournament": 3},
    "nsga2": {"population": 6},
    "local": {"n_init": 6, "n_random": 50, "batch_size": 3},
    "linas": {"n_init": 6, "population": 8, "generations": 2, "batch_size": 3},
    "tpe": {"n_startup_trials": 5},
    "gp": {"n_startup_trials": 5},
    "optuna-nsga2": {"population": 6},
    "random": {},
}
COMPARED = ("key", "arch", "iteration", "feasible", "accuracy", "latency_ms")


class Interrupted(Exception):
    """Stands in for the driver being killed while it evaluates."""


class Toy:
    """The toy evaluator; raises :class:`Interrupted` once ``stop_after`` archs were asked."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after, self.keys = stop_after, []

    def __call__(self, archs):
        if self.stop_after is not None and len(self.keys) + len(archs) > self.stop_after:
            raise Interrupted
        self.keys.extend(a.key for a in archs)
        return toy.toy_metrics(SPACE, archs)


def _run(run: Path, name: str, evaluate, *, resume: bool = False, budget: int = BUDGET):
    return search(SPACE, evaluate, objectives={"accuracy": "max", "latency_ms": "min"},
                  constraints=CONSTRAINTS, searcher=name, budget=budget, seed=3, run_dir=run,
                  resume=resume, options=OPTIONS[name])


def _rows(run: Path) -> list[tuple[str, ...]]:
    with open(run / "trials.csv", encoding="utf-8") as handle:
        return [tuple(r[c] for c in COMPARED) for r in csv.DictReader(handle)]


def test_every_searcher_has_settings():
    assert sorted(OPTIONS) == list_searchers()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run of each searcher (computed once per searcher)."""
    cache: dict[str, tuple[Path, list[tuple[str, ...]]]] = {}

    def get(name: str) -> tuple[Path, list[tuple[str, ...]]]:
        if name not in cache:
            run = tmp_path_factory.mktemp(f"ref-{name}") / "search"
            _run(run, name, Toy())
            cache[name] = (run, _rows(run))
        return cache[name]

    return get


SLOW = {"gp"}  # Optuna's GP sampler takes ~25 s for this budget
ALL = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in list_searchers()]


@pytest.mark.parametrize("name", ALL)
def test_killed_while_evaluating_then_resumed_matches(tmp_path, reference, name):
    _, expected = reference(name)
    assert len(expected) == BUDGET
    run = tmp_path / "search"
    first = Toy(stop_after=20 if name == "random" else BUDGET // 2)  # random's batch: 16
    with pytest.raises(Interrupted):
        _run(run, name, first)
    done = len(_rows(run))
    assert 0 < done < BUDGET
    second = Toy()
    result = _run(run, name, second, resume=True)
    assert _rows(run) == expected
    assert len(second.keys) == BUDGET - done  # nothing evaluated twice
    assert list(result.trials["key"]) == [r[0] for r in expected]


@pytest.mark.parametrize("name", ["evolution", "local", "tpe",
                                  *(pytest.param(n, marks=pytest.mark.slow)
                                    for n in ("nsga2", "random", "linas", "optuna-nsga2"))])
@pytest.mark.parametrize("cut", [1, 13, pytest.param(7, marks=pytest.mark.slow)])
def test_log_cut_anywhere_even_mid_line_resumes_exactly(tmp_path, reference, name, cut):
    """A crash between any two lines (or inside one: a torn line) of ``trials.csv``."""
    ref_run, expected = reference(name)
    run = tmp_path / "search"
    run.mkdir()
    shutil.copy(ref_run / "plan.json", run / "plan.json")
    lines = (ref_run / "trials.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    torn = lines[cut + 1][: len(lines[cut + 1]) // 2]
    (run / "trials.csv").write_text("".join(lines[: cut + 1]) + torn, encoding="utf-8")
    second = Toy()
    _run(run, name, second, resume=True)
    assert _rows(run) == expected
    assert len(second.keys) == BUDGET - cut


def test_resume_with_another_seed_still_loses_and_duplicates_nothing(tmp_path):
    run = tmp_path / "search"
    with pytest.raises(Interrupted):
        _run(run, "evolution", Toy(stop_after=12))
    done = len(_rows(run))
    second = Toy()
    search(SPACE, second, objectives={"accuracy": "max", "latency_ms": "min"},
           constraints=CONSTRAINTS, searcher="evolution", budget=BUDGET, seed=99, run_dir=run,
           resume=True, options=OPTIONS["evolution"])
    keys = [r[0] for r in _rows(run)]
    assert len(keys) == BUDGET == len(set(keys))
    assert len(second.keys) == BUDGET - done
