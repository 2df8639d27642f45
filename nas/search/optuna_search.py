"""``tpe``, ``gp``, ``optuna-nsga2``: Optuna's own samplers driven through ask/tell.

The one module that imports optuna. Each dimension is a categorical parameter; constraints
go to the sampler's ``constraints_func`` (values <= 0 are feasible). With ``storage`` (a
``sqlite:///...`` URL or a ``*.journal`` file) the study persists, so ``optuna-dashboard``
can open it and a resumed search continues the same study.

Optuna's samplers (GP above all, on small categorical spaces) often propose a network already
evaluated. :meth:`OptunaSearcher.ask` never hands such a repeat to the loop: the repeated trial
is told the known result at once (the sampler learns it again, no budget is spent) and an
unseen network takes its place, taken from the proposal's one-dimension neighbours, else from a
bounded number of random draws. So every Optuna searcher spends its whole budget unless the
space is (nearly) exhausted.

Example:
    >>> result = nas.search(space, evaluate, searcher="tpe", budget=100,
    ...                     options={"storage": "runs/demo/search/cpu/optuna.journal"})
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from nas.errors import ConfigError
from nas.search.base import Problem
from nas.space import ArchConfig

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "gp", "nsga2")
_KEY = "arch_key"
_CONSTRAINT_PREFIX = "constraints:"  # how Optuna stores Trial.set_constraint values
RANDOM_DRAWS = 256  # random candidates tried per substitute before giving up (bounded)


def open_storage(storage: str | None) -> Any:
    """An Optuna storage: ``None`` (in memory), an RDB URL, or a journal file path."""
    if storage is None or "://" in storage:
        return storage
    path = Path(storage)
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


_LOCK_TYPE = type(threading.Lock())


class PicklableNSGAIISampler(optuna.samplers.NSGAIISampler):
    """NSGA-II that pickles: Ray Tune pickles its search algorithm, and Optuna 5.1's sampler
    holds a ``threading.Lock``. The locks are left out of the state and made afresh on load."""

    def __getstate__(self) -> dict[str, Any]:
        locks = [k for k, v in self.__dict__.items() if isinstance(v, _LOCK_TYPE)]
        state = {k: v for k, v in self.__dict__.items() if k not in locks}
        return {**state, "_lock_names": locks}

    def __setstate__(self, state: dict[str, Any]) -> None:
        locks = state.pop("_lock_names", [])
        self.__dict__.update(state)
        for name in locks:
            setattr(self, name, threading.Lock())


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
        return PicklableNSGAIISampler(seed=seed, population_size=population)
    raise ConfigError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")


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
            raise ConfigError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
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
        # GP: one trial per batch; every pending trial makes its acquisition several times dearer
        self.preferred_batch = {"nsga2": population, "gp": 1}.get(sampler, 4)
        self._rng = np.random.default_rng(seed)
        self._pending: dict[str, list[optuna.trial.Trial]] = {}
        # trials that repeat a pending network: told when that network's metrics arrive
        self._shadows: dict[str, list[optuna.trial.Trial]] = {}
        # key -> (objective values, constraint values) of every network told so far
        self._known: dict[str, tuple[list[float], dict[str, float]]] = {}
        self._stored: set[str] = set()
        for t in self.study.get_trials(deepcopy=False):
            key = t.user_attrs.get(_KEY)
            if key is None:
                continue
            self._stored.add(key)
            if t.state == optuna.trial.TrialState.COMPLETE and t.values is not None:
                cons = {
                    k[len(_CONSTRAINT_PREFIX) :]: float(v)
                    for k, v in t.system_attrs.items()
                    if k.startswith(_CONSTRAINT_PREFIX)
                }
                self._known[key] = (list(t.values), cons)
        self.repeats = 0  # proposals that repeated a known or pending network (substituted)

    def _taken(self, key: str) -> bool:
        return key in self._known or key in self._pending or key in self._stored

    def _substitute(self, proposal: ArchConfig) -> ArchConfig | None:
        """An unseen network near ``proposal`` (a neighbour), else a random one, else None."""
        neighbours = self.space.neighbours(proposal)
        for i in self._rng.permutation(len(neighbours)):
            if not self._taken(neighbours[int(i)].key):
                return neighbours[int(i)]
        for arch in self.space.sample_many(RANDOM_DRAWS, self._rng):
            if not self._taken(arch.key):
                return arch
        return None

    def _finish(
        self, trial: optuna.trial.Trial, values: list[float], cons: Mapping[str, float]
    ) -> None:
        for name, value in cons.items():
            trial.set_constraint(name, value)
        self.study.tell(trial, values)

    def ask(self, n: int) -> list[ArchConfig]:
        """Up to ``n`` distinct networks not evaluated or pending (fewer only near exhaustion).

        A proposal that repeats a known network is told its known result and replaced by an
        unseen one (see the module docs); no proposal is ever resampled.
        """
        out = []
        for _ in range(n):
            trial = self.study.ask(self.distributions)
            arch = self.space.arch(trial.params)
            trial.set_user_attr(_KEY, arch.key)
            if not self._taken(arch.key):
                self._pending.setdefault(arch.key, []).append(trial)
                out.append(arch)
                continue
            self.repeats += 1
            if arch.key in self._known:
                self._finish(trial, *self._known[arch.key])
            elif arch.key in self._pending:
                self._shadows.setdefault(arch.key, []).append(trial)
            else:  # in a persistent study without a result (e.g. a crashed run): drop it
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            sub = self._substitute(arch)
            if sub is None:
                log.info("no unseen network left near %s; asking for fewer", arch.key)
                continue
            self.study.enqueue_trial(sub.to_dict(), user_attrs={_KEY: sub.key})
            sub_trial = self.study.ask(self.distributions)
            if self.space.arch(sub_trial.params).key != sub.key:  # another process took it
                self.study.tell(sub_trial, state=optuna.trial.TrialState.FAIL)
                continue
            self._pending.setdefault(sub.key, []).append(sub_trial)
            out.append(sub)
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
            raise ConfigError(f"tell: {len(archs)} archs but {len(metrics)} metric dicts")
        for arch, m in zip(archs, metrics):
            values = [float(m[name]) for name in self.problem.objectives.names]
            cons = self._constraint_values(m)
            self._known[arch.key] = (values, cons)
            pending = self._pending.get(arch.key)
            if pending:
                self._finish(pending.pop(0), values, cons)
                if not pending:
                    del self._pending[arch.key]
                    for shadow in self._shadows.pop(arch.key, []):
                        self._finish(shadow, values, cons)
                self._stored.add(arch.key)
                continue
            if arch.key in self._stored:
                continue  # already in a persistent study (a resumed run) or told before
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
