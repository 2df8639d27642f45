"""Flow step 5: one search per device profile over the run (on Ray, or one after another).

:func:`search_run` picks where the task metric comes from (the run's predictor, or measured
on the trained supernet), records the sources in each ``plan.json`` and calls
:func:`nas.devices.search_devices`. :func:`latency_limits` turns a quantile of each
profile's predicted latency into its latency limit.

Example:
    >>> limits = latency_limits("runs/demo", ["nb201_pixel3"], quantile=0.4)
    >>> plan = DevicePlan(budget=100, constraints={p: {"latency_ms": v} for p, v in limits.items()})
    >>> results = search_run("runs/demo", ["nb201_pixel3"], plan)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nas.devices import (
    COUNTED,
    DeviceMetrics,
    DevicePlan,
    MeasuredMetrics,
    MeasureFn,
    ProfileLatency,
    prepare_search,
    search_sequential,
)
from nas.errors import ConfigError, RunDirError
from nas.registry import SpaceRef
from nas.rundir import RunDir
from nas.search import SearchResult

AccuracySource = Literal["auto", "measured", "predicted"]


def search_devices(
    run_dir: str | Path,
    profiles: Sequence[str],
    plan: DevicePlan,
    *,
    supernet: Any = None,
    accuracy: MeasuredMetrics | MeasureFn | None = None,
    device_metrics: DeviceMetrics | None = None,
    resume: bool = False,
    parallel: bool = True,
    address: str | None = None,
    fan_out: int | None = None,
) -> dict[str, SearchResult]:
    """Run one search per device profile (in parallel on Ray unless ``parallel=False``).

    Everything is checked here first (:func:`nas.devices.prepare_search`); both modes run
    the same evaluators.

    Args:
        run_dir: the run directory; searches write ``search/<profile>/``.
        profiles: device profile names (the run's ``profiles/`` first, then the shipped ones).
        plan: the searcher, budget and per-profile constraints.
        supernet: the trained supernet (with ``accuracy`` a :class:`MeasuredMetrics`).
        accuracy: how the task metric is had: measured on ``supernet``, a picklable function
            ``archs -> [{metric: ...}]``, or (``None``) the run's predictor of the metric.
        device_metrics: ``(profile, archs) -> [{"latency_ms": ...}]`` (default: the profiles).
        resume: continue searches logged in the run directory.
        parallel: ``False`` runs the searches one after another in this process (no Ray).
        address: join this Ray cluster instead of starting a local one.
        fan_out: measurement tasks per batch on Ray (default: the cluster's CPU count).

    Example:
        >>> search_devices("runs/demo", ["nb201_pixel3"], DevicePlan(budget=50), parallel=False)
    """
    prepared = prepare_search(run_dir, profiles, plan, supernet=supernet, accuracy=accuracy,
                              device_metrics=device_metrics, resume=resume, fan_out=fan_out)
    if not parallel:
        return search_sequential(prepared, resume=resume)
    from nas.distributed.search import search_on_ray

    return search_on_ray(prepared, address=address, fan_out=fan_out)


def latency_limits(
    run: RunDir | str | Path, profiles: Sequence[str], quantile: float, *, n: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Each profile's latency limit: the ``quantile`` of its predicted latency over ``n``
    random architectures of the run's space."""
    if not 0.0 < quantile < 1.0:
        raise ConfigError(f"quantile must be in (0, 1), got {quantile!r}")
    run = run if isinstance(run, RunDir) else RunDir.open(run)
    latency = ProfileLatency(SpaceRef.of(run.space), {p: run.profile_location(p) for p in profiles})
    archs = run.space.sample_many(n, np.random.default_rng(seed))
    out = {}
    for profile in profiles:
        latency.check(profile)
        values = [m["latency_ms"] for m in latency(profile, archs)]
        out[profile] = float(np.quantile(values, quantile))
    return out


def search_run(
    run: RunDir | str | Path,
    profiles: Sequence[str],
    plan: DevicePlan,
    *,
    accuracy: AccuracySource = "auto",
    images: int = 512,
    bn_batches: int = 5,
    resume: bool = False,
    parallel: bool = True,
    address: str | None = None,
) -> dict[str, SearchResult]:
    """Search every profile of the run; trials go to ``search/<profile>/``.

    Args:
        run: the run (trained, with a predictor of its task metric for ``predicted``).
        profiles: device profiles (the run's ``profiles/`` first, then the shipped ones).
        plan: searcher, budget, constraints and objectives (``size_bytes`` and the other
            :data:`nas.devices.COUNTED` metrics are counted, e.g. ``shared_constraints=
            {"size_bytes": 2e6}`` or ``objectives={..., "size_bytes": "min"}``).
        accuracy: ``predicted`` by the run's predictor, ``measured`` on the supernet (BN
            recalibrated), or ``auto`` (the predictor when the run has one).
        images: validation examples each measurement uses (``measured``).
        bn_batches: BN recalibration batches per subnet (``measured``).
        resume: continue logged searches.
        parallel: on Ray (``False``: one after another in this process, same evaluators).
        address: a Ray cluster to join.
    """
    run = run if isinstance(run, RunDir) else RunDir.open(run)
    metric = run.task.metric
    if accuracy not in ("auto", "measured", "predicted"):
        raise ConfigError(f"accuracy must be 'auto', 'measured' or 'predicted', got {accuracy!r}")
    predicted = accuracy == "predicted" or (accuracy == "auto" and run.has_predictor(metric))
    supernet, measured = None, None
    if not predicted:
        supernet, measured = _measured(run, images, bn_batches)
    named = {*plan.shared_constraints, *(plan.objectives or {}),
             *(m for p in profiles for m in plan.constraints_for(p))}
    shared = {m: "counted" for m in COUNTED if m in named}
    sources = {metric: "predicted" if predicted else "measured", "latency_ms": "predicted",
               **shared}
    plan = replace(plan, info={"sources": sources, **dict(plan.info)})
    started = time.perf_counter()
    results = search_devices(run.path, profiles, plan, supernet=supernet, accuracy=measured,
                             resume=resume, parallel=parallel, address=address)
    run.record_timing(f"search {len(profiles)} device profile(s)", time.perf_counter() - started)
    return results


def _measured(run: RunDir, images: int, bn_batches: int) -> tuple[Any, MeasuredMetrics]:
    from nas.data import SubsetData
    from nas.flow.train import load_supernet

    if not isinstance(images, int) or images < 1:
        raise ConfigError(f"images must be a positive int, got {images!r}")
    if not isinstance(bn_batches, int) or bn_batches < 0:
        raise ConfigError(f"bn_batches must be an int >= 0, got {bn_batches!r}")
    if not run.checkpoint.is_file():
        raise RunDirError(f"{run.path}: no trained supernet to measure on (nas train), and no "
                          f"{run.task.metric} predictor (nas predictors fit)")
    supernet = load_supernet(run)
    train_data, val_data = run.task.load(run.data_spec())
    if len(val_data) > images:
        val_data = SubsetData(val_data, np.arange(images))
    measured = MeasuredMetrics(data=val_data, bn_data=train_data, task=run.task.name,
                               n_bn_batches=bn_batches)
    return supernet, measured
