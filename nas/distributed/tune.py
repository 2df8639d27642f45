"""Optuna's samplers as a Ray Tune search algorithm over a search space.

For users who already run Ray Tune: :func:`tune_search_algorithm` wraps the same samplers as
the ``tpe``/``gp``/``optuna-nsga2`` searchers (``nas.search.optuna_search.make_sampler``) in
``ray.tune.search.optuna.OptunaSearch``; :func:`tune_search` runs a whole search as Tune
trials, each evaluating one architecture. Constraints are not passed to Tune (it has no notion
of them); filter ``results`` afterwards or use :func:`nas.search.search`.

Example:
    >>> grid = tune_search(space, evaluate, {"accuracy": "max", "latency_ms": "min"},
    ...                    sampler="nsga2", budget=50)
    >>> grid.get_dataframe()[["config/resolution", "accuracy", "latency_ms"]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nas.distributed.local import ensure_ray
from nas.space import ArchConfig, SearchSpace

EvaluateOne = Callable[[list[ArchConfig]], list[dict[str, float]]]


def tune_search_algorithm(
    space: SearchSpace,
    objectives: Mapping[str, str],
    *,
    sampler: str = "tpe",
    seed: int = 0,
    population: int = 50,
) -> Any:
    """``OptunaSearch`` over every dimension of ``space`` with an Optuna ``sampler``.

    Args:
        space: the search space (one categorical parameter per dimension).
        objectives: ``{metric: "max" | "min"}``, reported by each Tune trial.
        sampler: ``"tpe"``, ``"gp"`` or ``"nsga2"``.
        seed: sampler seed.
        population: NSGA-II population.
    """
    from ray.tune.search.optuna import OptunaSearch

    from nas.search.base import Objectives
    from nas.search.optuna_search import distributions, make_sampler

    parsed = Objectives.parse(objectives)
    metric = list(parsed.names)
    mode: list[str] = list(parsed.directions)
    return OptunaSearch(
        space=distributions(space),
        metric=metric if len(metric) > 1 else metric[0],
        mode=mode if len(mode) > 1 else mode[0],
        sampler=make_sampler(sampler, seed=seed, population=population),
    )


def tune_search(
    space: SearchSpace,
    evaluate: EvaluateOne,
    objectives: Mapping[str, str],
    *,
    sampler: str = "tpe",
    budget: int = 50,
    seed: int = 0,
    concurrency: int = 2,
    address: str | None = None,
    storage_path: str | None = None,
) -> Any:
    """Run ``budget`` Tune trials proposed by Optuna; each evaluates one architecture.

    Returns the Tune ``ResultGrid``.
    """
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    ensure_ray(address)
    algo = ConcurrencyLimiter(
        tune_search_algorithm(space, objectives, sampler=sampler, seed=seed),
        max_concurrent=concurrency,
    )
    names = list(objectives)

    def trainable(config: dict[str, Any]) -> dict[str, float]:
        arch = space.arch(config)
        metrics = evaluate([arch])[0]
        return {**{k: float(metrics[k]) for k in names}, "arch_key": arch.key}  # type: ignore[dict-item]

    run_config = tune.RunConfig(storage_path=storage_path, verbose=0)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=algo, num_samples=budget),
        run_config=run_config,
    )
    return tuner.fit()
