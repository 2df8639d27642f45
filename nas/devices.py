"""Per-device searches without Ray: what each search evaluates, and one search per profile.

A device search evaluates every architecture on the run's task metric (measured on the
supernet, :class:`MeasuredMetrics`; predicted by the run's predictor, :class:`PredictedMetric`;
or any picklable function ``archs -> [{metric: ...}]``), on the device's latency (the profile's
latency model, :class:`ProfileLatency`), and on counted params/MACs/``size_bytes`` where a
constraint or an objective needs them (:class:`CountedMetrics`). :func:`prepare_search`
checks everything in the calling process; :func:`search_sequential` then runs one search per
profile here, and :func:`nas.distributed.search.search_on_ray` the same evaluators in
parallel on Ray (:func:`nas.flow.search.search_devices` picks one).

Example:
    >>> plan = DevicePlan(searcher="evolution", budget=200,
    ...                   constraints={"nb201_pixel3": {"latency_ms": 10.0}})
    >>> results = search_sequential(prepare_search("runs/demo", ["nb201_pixel3"], plan),
    ...                             resume=False)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import ConfigError, ProfileError, RunDirError
from nas.registry import SpaceRef
from nas.rundir import RunDir
from nas.search import SearchResult, search
from nas.space import ArchConfig

log = logging.getLogger(__name__)

Metrics = list[dict[str, float]]
DeviceMetrics = Callable[[str, list[ArchConfig]], Metrics]
MeasureFn = Callable[[list[ArchConfig]], Metrics]
# metrics counted from the layer descriptions (raw counts, not millions); ``size_bytes``: the
# weights at their bits (4 bytes per parameter in a space without a quantization policy)
COUNTED = ("params", "macs", "size_bytes")
DIRECTIONS = ("max", "min")


@dataclass(frozen=True, kw_only=True)
class DevicePlan:
    """What every per-profile search does.

    Args:
        searcher: a searcher name (``nas.search.list_searchers()``).
        budget: architectures measured per profile.
        seed: searcher seed (the same for every profile).
        batch_size: architectures per evaluate call (default: the searcher's preference).
        objectives: ``{metric: "max" | "min"}`` (default: the run's task metric and latency);
            metrics are the task's, ``latency_ms`` and the counted ones (:data:`COUNTED`),
            e.g. ``{"accuracy": "max", "latency_ms": "min", "size_bytes": "min"}``.
        constraints: per profile, ``{metric: limit}`` (e.g. its latency budget).
        shared_constraints: constraints every profile has (e.g. ``{"params": 5e6}``).
        options: the searcher's keyword options.
        max_retries: retries of a killed measurement or search task (Ray).
        info: extra fields for each ``plan.json`` (e.g. where each metric comes from).
    """

    searcher: str = "evolution"
    budget: int = 100
    seed: int = 0
    batch_size: int | None = None
    objectives: Mapping[str, str] | None = None
    constraints: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    shared_constraints: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    max_retries: int = 3
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.budget, int) or isinstance(self.budget, bool) or self.budget < 1:
            raise ConfigError(f"budget must be a positive int, got {self.budget!r}")
        if self.batch_size is not None and (
            not isinstance(self.batch_size, int) or self.batch_size < 1
        ):
            raise ConfigError(f"batch_size must be a positive int or None, got {self.batch_size!r}")
        if self.objectives is not None:
            if not self.objectives:
                raise ConfigError("objectives must name at least one metric, got {}")
            for metric, direction in self.objectives.items():
                if direction not in DIRECTIONS:
                    raise ConfigError(f"objective {metric!r}: direction must be 'max' or 'min', "
                                      f"got {direction!r}")

    def constraints_for(self, profile: str) -> dict[str, Any]:
        """The constraints of ``profile``'s search: its own merged over the shared ones."""
        return {**self.shared_constraints, **self.constraints.get(profile, {})}


@dataclass(frozen=True, kw_only=True)
class MeasuredMetrics:
    """Measure the task's metrics on the supernet: BN recalibration, then the metric on
    ``data`` (:func:`nas.evaluation.evaluate`).

    Args:
        data: validation data.
        bn_data: data for BN recalibration (default ``data``).
        task: the task's name (default: the space's).
        n_bn_batches: recalibration batches per subnet.
        bn_batch_size: recalibration batch size.
        batch_size: measuring batch size.
        max_batches: measure on at most this many batches.
        threads: torch threads per measurement (Ray tasks).
    """

    data: Any
    bn_data: Any = None
    task: str | None = None
    n_bn_batches: int = 10
    bn_batch_size: int = 64
    batch_size: int = 256
    max_batches: int | None = None
    threads: int = 1


def measure_on_supernet(
    supernet: Any, measured: MeasuredMetrics, archs: list[ArchConfig]
) -> Metrics:
    """The task's metrics of each arch (e.g. ``accuracy``, ``loss``), measured on ``supernet``."""
    from nas.evaluation import evaluate
    from nas.tasks import create_task, task_for_space

    task = create_task(measured.task) if measured.task else task_for_space(supernet.space)
    rows = evaluate(
        supernet, archs, measured.data, bn_data=measured.bn_data,
        n_bn_batches=measured.n_bn_batches, batch_size=measured.batch_size,
        bn_batch_size=measured.bn_batch_size, max_batches=measured.max_batches, task=task,
    )
    return [{m: r[m] for m in task.metrics} for r in rows]


class PredictedMetric:
    """A metric from a saved predictor (picklable: it loads on first use, in each process).

    Args:
        path: the predictor's path without suffix (``runs/<run>/predictors/<metric>``).
        metric: the metric's name in the trials.
        space: where the predictor's space is registered (for another process).
    """

    def __init__(self, path: str | Path, metric: str, space: SpaceRef) -> None:
        self.path, self.metric, self.space = Path(path), metric, space
        self._predictor: Any = None

    def __call__(self, archs: list[ArchConfig]) -> Metrics:
        if self._predictor is None:
            from nas.predictor import load_predictor

            self._predictor = load_predictor(self.path, self.space.resolve())
        return [{self.metric: float(v)} for v in self._predictor.predict(archs)]


@dataclass(frozen=True)
class ProfileLatency:
    """``latency_ms`` of each arch from the latency model of the profile at ``locations``
    (a name searched in the profile folders, or a JSON path; picklable)."""

    space: SpaceRef
    locations: Mapping[str, str]

    def __call__(self, profile: str, archs: list[ArchConfig]) -> Metrics:
        import numpy as np

        location = self.locations.get(profile, profile)
        predictor = _latency_model(location, self.space, _profile_stamp(location))
        values = np.asarray(predictor.predict_indices(predictor.space.indices(archs)), dtype=float)
        return [{"latency_ms": float(v)} for v in values.reshape(-1)]

    def check(self, profile: str) -> None:
        """Load the profile's model for the space now; :class:`ProfileError` if it can't."""
        location = self.locations.get(profile, profile)
        try:
            _latency_model(location, self.space, _profile_stamp(location))
        except (FileNotFoundError, ValueError) as exc:
            raise ProfileError(f"profile {profile!r}: {exc}") from None


def _profile_stamp(location: str) -> int:
    """The modification time (ns) of the file ``location`` names (0 when none is found)."""
    from nas.hardware.profile import profile_dirs

    path = Path(location)
    candidates = [path] if path.suffix == ".json" or path.is_file() else []
    candidates += [folder / f"{location}.json" for folder in profile_dirs()]
    return next((c.stat().st_mtime_ns for c in candidates if c.is_file()), 0)


@functools.lru_cache(maxsize=32)
def _latency_model(location: str, space: SpaceRef, stamp: int) -> Any:
    """The latency predictor of the profile at ``location`` for ``space``; one per process
    and file version (``stamp``), since a search asks for it every batch."""
    from nas.hardware import load_profile
    from nas.predictor import latency_predictor

    return latency_predictor(load_profile(location), space.resolve())


class CountedMetrics:
    """Device metrics plus ``params``, ``macs`` and ``size_bytes`` (:func:`nas.counting.count_many`;
    ``size_bytes`` is ``4 * params`` in a space without a quantization policy); picklable.

    Args:
        inner: the device metrics to extend (e.g. :class:`ProfileLatency`).
        space: the space the archs belong to.
        num_classes: the classifier width the counts assume (the supernet's).
    """

    def __init__(self, inner: DeviceMetrics, space: SpaceRef, num_classes: int) -> None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ConfigError(f"num_classes must be a positive int, got {num_classes!r}")
        self.inner, self.space, self.num_classes = inner, space, num_classes

    def __call__(self, profile: str, archs: list[ArchConfig]) -> Metrics:
        from nas.counting import count_many

        counts = count_many(self.space.resolve(), archs, self.num_classes)
        device = self.inner(profile, archs)
        return [{**d, **{k: float(v) for k, v in _sized(c).items()}}
                for d, c in zip(device, counts)]


def _sized(counts: Mapping[str, int]) -> dict[str, int]:
    """``counts`` with ``size_bytes`` (float32 weights where the space has no policy)."""
    return {**counts, "size_bytes": int(counts.get("size_bytes", 4 * counts["params"]))}


@dataclass(frozen=True)
class DeviceEvaluator:
    """One profile's evaluator: measured (or predicted) metrics merged with device metrics."""

    profile: str
    measure: MeasureFn
    device_metrics: DeviceMetrics

    def evaluate(self, archs: list[ArchConfig]) -> Metrics:
        measured = self.measure(archs)
        device = self.device_metrics(self.profile, archs)
        return [{**a, **d} for a, d in zip(measured, device)]


def search_profile(
    run_dir: str | Path, space: SpaceRef, profile: str, plan: DevicePlan,
    objectives: Mapping[str, str], evaluator: Any, *, resume: bool,
) -> SearchResult:
    """One profile's search, logged to ``search/<profile>/`` of the run (any process)."""
    return search(
        space.resolve(), evaluator, objectives=dict(objectives),
        constraints=plan.constraints_for(profile) or None, searcher=plan.searcher,
        budget=plan.budget, seed=plan.seed, batch_size=plan.batch_size,
        run_dir=RunDir(run_dir, space.resolve()).search_dir(profile), resume=resume,
        options=dict(plan.options), info={"profile": profile, **dict(plan.info)},
    )


@dataclass(frozen=True)
class PreparedSearch:
    """Everything the per-profile searches need, checked (see :func:`prepare_search`)."""

    run_dir: Path
    space: SpaceRef
    profiles: tuple[str, ...]
    plan: DevicePlan
    objectives: Mapping[str, str]
    accuracy: MeasuredMetrics | MeasureFn
    device: DeviceMetrics
    supernet: Any = None


def prepare_search(
    run_dir: str | Path,
    profiles: Sequence[str],
    plan: DevicePlan,
    *,
    supernet: Any = None,
    accuracy: MeasuredMetrics | MeasureFn | None = None,
    device_metrics: DeviceMetrics | None = None,
    resume: bool = False,
    fan_out: int | None = None,
) -> PreparedSearch:
    """Check everything before any search starts or anything is written: the profiles (known,
    with a model for the run's space), the run's predictor or supernet, existing logs.

    Args: as :func:`nas.flow.search.search_devices`.
    """
    run = RunDir.open(run_dir)
    ref = SpaceRef.of(run.space)
    _check_profiles(run, profiles, resume, fan_out)
    objectives = dict(plan.objectives or run.task.objectives())
    if device_metrics is None and (accuracy is None or isinstance(accuracy, MeasuredMetrics)):
        _check_objectives(run, objectives)
    device = device_metrics or _default_latency(run, ref, profiles)
    if needs_counts(plan, profiles):
        device = CountedMetrics(device, ref, _num_classes(run, supernet))
    return PreparedSearch(
        run_dir=run.path, space=ref, profiles=tuple(profiles), plan=plan,
        objectives=objectives,
        accuracy=_accuracy(run, ref, accuracy, supernet), device=device, supernet=supernet,
    )


def needs_counts(plan: DevicePlan, profiles: Sequence[str]) -> bool:
    """Whether a constraint or an objective of ``plan`` is a counted metric."""
    named = {m for p in profiles for m in plan.constraints_for(p)} | set(plan.objectives or {})
    return any(m in COUNTED for m in named)


def _check_objectives(run: RunDir, objectives: Mapping[str, str]) -> None:
    """With the default evaluators, every objective is a metric they produce."""
    known = (*run.task.metrics, "latency_ms", *COUNTED)
    for metric in objectives:
        if metric not in known:
            raise ConfigError(f"objective {metric!r} is not a metric of the search; "
                              f"allowed: {list(known)}")


def search_sequential(prepared: PreparedSearch, *, resume: bool) -> dict[str, SearchResult]:
    """The prepared searches one after another in this process."""
    p = prepared
    measure = (functools.partial(measure_on_supernet, p.supernet, p.accuracy)
               if isinstance(p.accuracy, MeasuredMetrics) else p.accuracy)
    return {
        name: search_profile(p.run_dir, p.space, name, p.plan, p.objectives,
                             DeviceEvaluator(name, measure, p.device), resume=resume)
        for name in p.profiles
    }


def _check_profiles(run: RunDir, profiles: Sequence[str], resume: bool, fan_out: Any) -> None:
    if not profiles:
        raise ConfigError("profiles must name at least one device profile")
    if len(set(profiles)) != len(profiles):
        raise ConfigError(f"profiles repeat a name: {list(profiles)}")
    if fan_out is not None and (
        not isinstance(fan_out, int) or isinstance(fan_out, bool) or fan_out < 1
    ):
        raise ConfigError(f"fan_out must be a positive int or None, got {fan_out!r}")
    for profile in profiles:
        trials = run.trials_csv(profile)
        if trials.exists() and not resume:
            raise RunDirError(f"{trials} exists; pass resume=True (--resume) to continue it")


def _default_latency(run: RunDir, ref: SpaceRef, profiles: Sequence[str]) -> ProfileLatency:
    latency = ProfileLatency(ref, {p: run.profile_location(p) for p in profiles})
    for profile in profiles:
        latency.check(profile)
    return latency


def _num_classes(run: RunDir, supernet: Any) -> int:
    if supernet is not None and hasattr(supernet, "num_classes"):
        return int(supernet.num_classes)
    if run.supernet_config.is_file():
        return int(run.supernet_build()["num_classes"])
    raise RunDirError(
        f"constraints or objectives on {list(COUNTED)} need the classifier width: pass "
        f"supernet=..., or train the run first ({run.supernet_config})"
    )


def _accuracy(run: RunDir, ref: SpaceRef, accuracy: MeasuredMetrics | MeasureFn | None,
              supernet: Any) -> MeasuredMetrics | MeasureFn:
    """The task-metric source: as given, else the run's predictor of the task metric."""
    if isinstance(accuracy, MeasuredMetrics) and supernet is None:
        raise ConfigError("a MeasuredMetrics accuracy needs the trained supernet (supernet=...)")
    if accuracy is not None:
        return accuracy
    metric = run.task.metric
    if not run.has_predictor(metric):
        raise RunDirError(
            f"{run.predictor_stem(metric)}.json: no {metric} predictor in the run; fit one "
            "(nas predictors fit) or measure on the supernet"
        )
    return PredictedMetric(run.predictor_stem(metric), metric, ref)
