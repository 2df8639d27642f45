"""Per-device searches on Ray: one task per profile, measurements fanned out as tasks.

Only what needs Ray is here; the evaluators and the single search are
:mod:`nas.devices`'s, the same code the sequential mode runs. Each profile's search loop runs
as a Ray task (``num_cpus=0``: it mostly waits). Its evaluator splits every batch into
``fan_out`` chunks (default: one per CPU of the cluster), each a Ray task of one CPU, so Ray
hands every chunk of every search to whichever CPU is free next. With a supernet, the
weights and the measurement settings go to the object store once; a worker process builds
the supernet from them on its first chunk and keeps it for its next ones
(:func:`_worker_supernet`, a cache of one entry keyed by those object references).

Faults: measurement and search tasks are retried (``plan.max_retries``). A retried search
resumes from its ``trials.csv``, so a killed worker loses no logged trial and duplicates none.

Example:
    >>> results = search_on_ray(prepare_search("runs/demo", ["cpu_a", "cpu_b"], plan))
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Any

from nas.devices import (
    DeviceEvaluator,
    DeviceMetrics,
    DevicePlan,
    MeasuredMetrics,
    MeasureFn,
    Metrics,
    PreparedSearch,
    measure_on_supernet,
    search_profile,
)
from nas.distributed.local import ensure_ray, set_worker_threads
from nas.registry import SpaceRef
from nas.search import SearchResult
from nas.space import ArchConfig


def _chunks(items: list[ArchConfig], n: int) -> list[list[ArchConfig]]:
    size = max(1, math.ceil(len(items) / max(1, n)))
    return [items[i : i + size] for i in range(0, len(items), size)]


@functools.lru_cache(maxsize=1)
def _worker_supernet(
    space: SpaceRef, build: str, weights: Any, settings: Any
) -> tuple[Any, MeasuredMetrics]:
    """The supernet and measurement settings of these object-store references, fetched and
    built once per worker process (Ray reuses workers; another run's objects replace it)."""
    import ray

    from nas.registry import create_supernet

    state, measured = ray.get([weights, settings])
    supernet = create_supernet(space.resolve().name, **json.loads(build))
    supernet.load_state_dict(state)
    return supernet, measured


def _supernet_task(space: SpaceRef, build: str, shared: list[Any],
                   archs: list[ArchConfig]) -> Metrics:
    """Ray task: the task metrics of ``archs`` on the shared supernet. ``shared`` holds the
    references of the weights and settings, nested so Ray does not fetch them per task."""
    supernet, measured = _worker_supernet(space, build, *shared)
    set_worker_threads(measured.threads)  # reused workers keep the last task's setting
    return measure_on_supernet(supernet, measured, archs)


def _function_task(fn: MeasureFn, archs: list[ArchConfig]) -> Metrics:
    """Ray task: a measurement function on ``archs``."""
    return fn(archs)


class _FannedOut:
    """A measurement that splits each batch into Ray tasks of one CPU each."""

    def __init__(self, body: Any, args: tuple[Any, ...], fan_out: int, retries: int) -> None:
        self.body, self.args, self.fan_out, self.retries = body, args, fan_out, retries
        self._task: Any = None

    def __call__(self, archs: list[ArchConfig]) -> Metrics:
        import ray

        if self._task is None:
            self._task = ray.remote(num_cpus=1, max_retries=self.retries)(self.body)
        futures = [self._task.remote(*self.args, c) for c in _chunks(archs, self.fan_out)]
        return [row for part in ray.get(futures) for row in part]


def _search_task(run_dir: str, space: SpaceRef, profile: str, plan: DevicePlan,
                 objectives: Mapping[str, str], measure: _FannedOut,
                 device: DeviceMetrics) -> SearchResult:
    """Ray task: one profile's search; always resumes (a retry continues its own log)."""
    evaluator = DeviceEvaluator(profile, measure, device)
    return search_profile(run_dir, space, profile, plan, objectives, evaluator, resume=True)


def search_on_ray(
    prepared: PreparedSearch, *, address: str | None = None, fan_out: int | None = None
) -> dict[str, SearchResult]:
    """One search per prepared profile as Ray tasks (checked by
    :func:`nas.devices.prepare_search`); a killed search task resumes its own log."""
    p = prepared
    ray = ensure_ray(address)
    fan_out = fan_out or max(1, int(ray.cluster_resources().get("CPU", 1)))
    retries = p.plan.max_retries
    if isinstance(p.accuracy, MeasuredMetrics):
        state = {k: v.detach().cpu() for k, v in p.supernet.state_dict().items()}
        shared = [ray.put(state), ray.put(p.accuracy)]
        build = json.dumps(p.supernet.build_kwargs(), sort_keys=True)
        measure = _FannedOut(_supernet_task, (p.space, build, shared), fan_out, retries)
    else:
        measure = _FannedOut(_function_task, (p.accuracy,), fan_out, retries)
    task = ray.remote(num_cpus=0, max_retries=retries)(_search_task)
    futures = {
        name: task.remote(str(p.run_dir), p.space, name, p.plan, dict(p.objectives), measure,
                          p.device)
        for name in p.profiles
    }
    return {name: ray.get(f) for name, f in futures.items()}
