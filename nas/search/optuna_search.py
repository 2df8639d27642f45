"""``tpe``, ``gp``, ``optuna-nsga2``: Optuna's own samplers driven through ask/tell.

The one module that imports optuna. Each dimension is a categorical parameter; constraints
go to the sampler's ``constraints_func`` (values <= 0 are feasible). With ``storage`` (a
``sqlite:///...`` URL or a ``*.journal`` file) the study persists, so ``optuna-dashboard``
can open it and a resumed search continues the same study.

Example:
    >>> result = nas.search(space, evaluate, searcher="tpe", budget=100,
    ...                     options={"storage": "runs/demo/search/cpu/optuna.journal"})
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from nas.search.base import Problem
from nas.space import ArchConfig

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "gp", "nsga2")
_KEY = "arch_key"


def open_storage(storage: str | None) -> Any:
    """An Optuna storage: ``None`` (in memory), an RDB URL, or a journal file path."""
    if storage is None or "://" in storage:
        return storage
    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


def make_sampler(
    sampler: str, *, seed: int, population: int = 50, n_startup_trials: int = 10
) -> optuna.samplers.BaseSampler:
    """Optuna's ``tpe`` (multivariate), ``gp`` or ``nsga2`` sampler."""
    if sampler == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=n_startup_trials, multivariate=True
        )
    if sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)
    if sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")


def distributions(space: Any) -> dict[str, optuna.distributions.BaseDistribution]:
    """One categorical distribution per dimension of ``space``."""
    return {
        c.name: optuna.distributions.CategoricalDistribution(list(c.values)) for c in space.choices
    }


class OptunaSearcher:
    """An Optuna study behind the :class:`~nas.search.base.Searcher` interface.

    Args:
        problem: the space, objectives and constraints.
        seed: the sampler's seed.
        sampler: ``"tpe"``, ``"gp"`` or ``"nsga2"``.
        storage: where the study lives (``None``: memory; ``sqlite:///x.db``; ``x.journal``).
        study_name: the study's name in the storage.
        population: NSGA-II population size (``sampler="nsga2"``).
        n_startup_trials: random trials before TPE/GP model the objective.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int = 0,
        sampler: str = "tpe",
        storage: str | None = None,
        study_name: str = "nas-search",
        population: int = 50,
        n_startup_trials: int = 10,
    ) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.problem = problem
        self.space = problem.space
        self.sampler_name = sampler
        self.distributions = distributions(self.space)
        opt_sampler = make_sampler(
            sampler, seed=seed, population=population, n_startup_trials=n_startup_trials
        )
        directions: list[Any] = [
            "maximize" if d == "max" else "minimize" for d in problem.objectives.directions
        ]
        self.study = optuna.create_study(
            storage=open_storage(storage),
            sampler=opt_sampler,
            study_name=study_name,
            directions=directions,
            load_if_exists=True,
        )
        self.preferred_batch = population if sampler == "nsga2" else 4
        self._pending: dict[str, list[optuna.trial.Trial]] = {}
        self._stored = {t.user_attrs.get(_KEY) for t in self.study.get_trials(deepcopy=False)}

    def ask(self, n: int) -> list[ArchConfig]:
        """``n`` architectures sampled by the study (Optuna may repeat one)."""
        out = []
        for _ in range(n):
            trial = self.study.ask(self.distributions)
            arch = self.space.arch(trial.params)
            trial.set_user_attr(_KEY, arch.key)
            self._pending.setdefault(arch.key, []).append(trial)
            out.append(arch)
        return out

    def _constraint_values(self, metrics: Mapping[str, float]) -> dict[str, float]:
        out = {}
        for c in self.problem.constraints.items:
            v = float(metrics[c.metric])
            out[c.metric] = v - c.limit if c.bound == "upper" else c.limit - v
        return out

    def tell(self, archs: Sequence[ArchConfig], metrics: Sequence[Mapping[str, float]]) -> None:
        """Complete the pending trials of ``archs``; unknown archs are added as finished trials."""
        if len(archs) != len(metrics):
            raise ValueError(f"tell: {len(archs)} archs but {len(metrics)} metric dicts")
        for arch, m in zip(archs, metrics):
            values = [float(m[name]) for name in self.problem.objectives.names]
            cons = self._constraint_values(m)
            pending = self._pending.get(arch.key)
            if pending:
                trial = pending.pop(0)
                for name, value in cons.items():
                    trial.set_constraint(name, value)
                self.study.tell(trial, values)
                self._stored.add(arch.key)
                continue
            if arch.key in self._stored:
                continue  # already in a persistent study (a resumed run)
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=arch.to_dict(),
                    distributions=self.distributions,
                    values=values,
                    user_attrs={_KEY: arch.key},
                    constraints=cons or None,
                )
            )
            self._stored.add(arch.key)
