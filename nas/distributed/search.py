"""One search per device profile, in parallel on Ray, with measured accuracy fanned out as tasks.

Each profile's search loop runs as a Ray task (``num_cpus=0``: it mostly waits) that calls
:func:`nas.search.search` with ``run_dir=runs/<run>/search/<profile>``. Its evaluator splits
every batch into ``fan_out`` chunks (default: one per CPU of the Ray cluster), each a Ray task
of one CPU, so Ray's scheduler hands every chunk of every profile's search to whichever CPU is
free next (no CPU waits for a slower one). With a supernet, the weights and the validation
data are put in the object store once, by the driver; a worker process builds the supernet
from them on its first chunk and keeps it for the next ones (:class:`WorkerSupernet`), then
BN-recalibrates and measures each subnet (:func:`nas.evaluation.evaluate`). A measurement
function runs as the same kind of task.
Device metrics (latency) come from the profile's latency model, or from ``device_metrics``.
Constraints on ``params`` or ``macs`` (raw counts, as :func:`nas.count` gives them) add those
counts to every trial (:class:`CountedMetrics`; no torch, no measurement).

Faults: measurement tasks and search tasks are retried (``max_retries``). A retried search
resumes from its ``trials.csv``, so a worker killed mid-search loses no logged trial and
duplicates none (the batch in flight is measured again, never logged twice).

Example:
    >>> from nas.distributed.search import DevicePlan, MeasuredAccuracy, search_devices
    >>> plan = DevicePlan(searcher="evolution", budget=200,
    ...                   constraints={"pixel3": {"latency_ms": 10.0}, "s7": {"latency_ms": 30.0}})
    >>> results = search_devices("runs/demo", ["pixel3", "s7"], plan,
    ...                          accuracy=MeasuredAccuracy(data=val, bn_data=train))
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.distributed.local import ensure_ray
from nas.rundir import RunDir
from nas.search import SearchResult, search
from nas.space import ArchConfig

log = logging.getLogger(__name__)

Metrics = list[dict[str, float]]
DeviceMetrics = Callable[[str, list[ArchConfig]], Metrics]
MeasureFn = Callable[[list[ArchConfig]], Metrics]
COUNTED = ("params", "macs")  # metrics nas.counting computes (raw counts, not millions)


@dataclass(frozen=True, kw_only=True)
class DevicePlan:
    """What every per-profile search does.

    Args:
        searcher: a searcher name (``nas.search.list_searchers()``).
        budget: architectures measured per profile.
        seed: searcher seed (the same for every profile).
        batch_size: architectures per evaluate call (default: the searcher's preference).
        objectives: ``{metric: "max" | "min"}``.
        constraints: per profile, ``{metric: limit}`` (e.g. its latency budget).
        shared_constraints: constraints every profile has (e.g. ``{"params": 5e6}``;
            ``params``/``macs`` are counted per trial, see :class:`CountedMetrics`).
        options: the searcher's keyword options.
        max_retries: retries of a killed measurement or search task.
        info: extra fields for each ``plan.json`` (e.g. ``{"sources": {"accuracy": "measured"}}``).
    """

    searcher: str = "evolution"
    budget: int = 100
    seed: int = 0
    batch_size: int | None = None
    objectives: Mapping[str, str] = field(
        default_factory=lambda: {"accuracy": "max", "latency_ms": "min"}
    )
    constraints: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    shared_constraints: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    max_retries: int = 3
    info: Mapping[str, Any] = field(default_factory=dict)

    def constraints_for(self, profile: str) -> dict[str, Any]:
        """The profile's constraints merged over the shared ones."""
        return {**self.shared_constraints, **self.constraints.get(profile, {})}


@dataclass(frozen=True, kw_only=True)
class MeasuredAccuracy:
    """Measure accuracy on the supernet: BN recalibration, then top-1 on ``data``.

    Args:
        data: validation images.
        bn_data: images for BN recalibration (default ``data``).
        n_bn_batches: recalibration batches per subnet.
        bn_batch_size: recalibration batch size.
        batch_size: measuring batch size.
        max_batches: measure on at most this many batches.
        threads: torch threads per measurement task.
    """

    data: Any
    bn_data: Any = None
    n_bn_batches: int = 10
    bn_batch_size: int = 64
    batch_size: int = 256
    max_batches: int | None = None
    threads: int = 1


def measure_on_supernet(
    supernet: Any, accuracy: MeasuredAccuracy, archs: list[ArchConfig]
) -> Metrics:
    """``accuracy`` (top-1 %) and ``loss`` of each arch, measured on ``supernet`` (in process)."""
    from nas.evaluation import evaluate

    rows = evaluate(
        supernet,
        archs,
        accuracy.data,
        bn_data=accuracy.bn_data,
        n_bn_batches=accuracy.n_bn_batches,
        batch_size=accuracy.batch_size,
        bn_batch_size=accuracy.bn_batch_size,
        max_batches=accuracy.max_batches,
    )
    return [{"accuracy": r["top1"], "loss": r["loss"]} for r in rows]


def profile_latency(profile: str, archs: list[ArchConfig]) -> Metrics:
    """``latency_ms`` from the hardware profile's latency model for the archs' space.

    The model is loaded once per process and profile file version (a search calls this per
    batch) and predicts on index rows (``predict_indices``: a lookup table's vectorised sums).
    """
    import numpy as np

    predictor = _latency_model(profile, archs[0].space, _profile_stamp(profile))
    values = np.asarray(predictor.predict_indices(predictor.space.indices(archs)), dtype=float)
    return [{"latency_ms": float(v)} for v in values.reshape(-1)]


def _profile_stamp(profile: str) -> int:
    """The modification time (ns) of the file ``profile`` names (0 when none is found)."""
    from nas.hardware.profile import profile_dirs

    path = Path(profile)
    candidates = [path] if path.suffix == ".json" or path.is_file() else []
    candidates += [folder / f"{profile}.json" for folder in profile_dirs()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.stat().st_mtime_ns
    return 0


@functools.lru_cache(maxsize=32)
def _latency_model(profile: str, space_name: str, stamp: int) -> Any:
    """The latency predictor of ``profile`` for ``space_name`` (``stamp``: the file's version)."""
    from nas.hardware import load_profile
    from nas.registry import create_space
    from predictors.io import latency_predictor

    return latency_predictor(load_profile(profile), create_space(space_name))


class CountedMetrics:
    """Device metrics plus ``params`` and ``macs`` (:func:`nas.counting.count_many`); picklable.

    Args:
        inner: the device metrics to extend (e.g. :func:`profile_latency`).
        num_classes: the classifier width the counts assume (the supernet's).
    """

    def __init__(self, inner: DeviceMetrics, num_classes: int) -> None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        self.inner = inner
        self.num_classes = num_classes

    def __call__(self, profile: str, archs: list[ArchConfig]) -> Metrics:
        from nas.counting import count_many
        from nas.registry import create_space

        counts = count_many(create_space(archs[0].space), archs, self.num_classes)
        device = self.inner(profile, archs)
        return [{**d, **{k: float(v) for k, v in c.items()}} for d, c in zip(device, counts)]


def _num_classes(run_path: Path, supernet: Any) -> int:
    if supernet is not None and hasattr(supernet, "num_classes"):
        return int(supernet.num_classes)
    config = run_path / "supernet" / "config.json"
    if config.is_file():
        from nas.rundir import read_json

        value = read_json(config).get("num_classes")
        if isinstance(value, int):
            return value
    raise ValueError(
        f"constraints on {list(COUNTED)} need the classifier width: pass supernet=..., or train "
        f"the run first ({config} with num_classes)"
    )


class PredictedAccuracy:
    """Accuracy from a saved ``predictors`` model (picklable: it loads on first use).

    Args:
        path: the predictor's path without suffix (``runs/<run>/predictors/accuracy``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._predictor: Any = None

    def __call__(self, archs: list[ArchConfig]) -> Metrics:
        if self._predictor is None:
            from predictors.io import load_predictor

            self._predictor = load_predictor(self.path)
        return [{"accuracy": float(v)} for v in self._predictor.predict(archs)]


def _chunks(items: list[ArchConfig], n: int) -> list[list[ArchConfig]]:
    size = max(1, math.ceil(len(items) / max(1, n)))
    return [items[i : i + size] for i in range(0, len(items), size)]


class WorkerSupernet:
    """What a Ray worker process built from the shared objects, kept for its next tasks.

    Ray reuses worker processes, so a measurement task finds the supernet (and the
    validation data) its process fetched and built for an earlier chunk and skips that work.
    One entry per process: another run's objects replace it.
    """

    _key: tuple[str, str] | None = None
    _built: tuple[Any, MeasuredAccuracy] | None = None

    @classmethod
    def get(cls, space: str, num_classes: int, shared: list[Any]) -> tuple[Any, MeasuredAccuracy]:
        """The supernet and the measurement settings for ``shared`` (object-store references
        of the weights and of the :class:`MeasuredAccuracy`), fetched and built on first use."""
        import ray

        from nas.registry import create_supernet

        weights, accuracy = shared
        key = (weights.hex(), accuracy.hex())
        if cls._key != key or cls._built is None:
            state, settings = ray.get([weights, accuracy])
            supernet = create_supernet(space, num_classes=num_classes)
            supernet.load_state_dict(state)
            cls._key, cls._built = key, (supernet, settings)
        return cls._built


def _supernet_task(
    space: str, num_classes: int, shared: list[Any], archs: list[ArchConfig]
) -> Metrics:
    """Ray task: ``accuracy`` and ``loss`` of ``archs`` on the shared supernet.

    ``shared`` holds the object-store references of the weights and the
    :class:`MeasuredAccuracy`, nested in a list so Ray does not fetch them for every task
    (:class:`WorkerSupernet` fetches them once per process).
    """
    from nas.distributed.local import set_worker_threads

    supernet, accuracy = WorkerSupernet.get(space, num_classes, shared)
    set_worker_threads(accuracy.threads)  # reused workers keep the last task's setting
    return measure_on_supernet(supernet, accuracy, archs)


def _function_task(fn: MeasureFn, archs: list[ArchConfig]) -> Metrics:
    """Ray task: a user measurement function on ``archs``."""
    return fn(archs)


class _RayEvaluator:
    """Evaluator used inside a search task: accuracy fans out as Ray tasks, device metrics local."""

    def __init__(
        self,
        profile: str,
        measure: dict[str, Any],
        device_metrics: DeviceMetrics,
        fan_out: int,
        max_retries: int,
    ) -> None:
        self.profile = profile
        self.measure = measure
        self.device_metrics = device_metrics
        self.fan_out = fan_out
        self.max_retries = max_retries
        self._task: Any = None

    def evaluate(self, archs: list[ArchConfig]) -> Metrics:
        import ray

        m = self.measure
        if self._task is None:
            body = _supernet_task if m["kind"] == "supernet" else _function_task
            self._task = ray.remote(num_cpus=1, max_retries=self.max_retries)(body)
        futures = [self._task.remote(*m["args"], chunk) for chunk in _chunks(archs, self.fan_out)]
        measured = [row for part in ray.get(futures) for row in part]
        device = self.device_metrics(self.profile, archs)
        return [{**a, **d} for a, d in zip(measured, device)]


class _LocalEvaluator:
    """The same metrics measured in this process (the sequential baseline)."""

    def __init__(self, profile: str, measure: MeasureFn, device_metrics: DeviceMetrics) -> None:
        self.profile = profile
        self.measure = measure
        self.device_metrics = device_metrics

    def evaluate(self, archs: list[ArchConfig]) -> Metrics:
        measured = self.measure(archs)
        device = self.device_metrics(self.profile, archs)
        return [{**a, **d} for a, d in zip(measured, device)]


def _run_one(
    run_dir: str, space_name: str, profile: str, plan: DevicePlan, evaluator: Any, resume: bool
) -> SearchResult:
    from nas.registry import create_space

    space = create_space(space_name)
    return search(
        space,
        evaluator,
        objectives=dict(plan.objectives),
        constraints=plan.constraints_for(profile) or None,
        searcher=plan.searcher,
        budget=plan.budget,
        seed=plan.seed,
        batch_size=plan.batch_size,
        run_dir=Path(run_dir) / "search" / profile,
        resume=resume,
        options=dict(plan.options),
        info={"profile": profile, **dict(plan.info)},
    )


def _search_task(
    run_dir: str,
    space_name: str,
    profile: str,
    plan: DevicePlan,
    measure: dict[str, Any],
    device_metrics: DeviceMetrics,
    fan_out: int,
) -> SearchResult:
    """Ray task: one profile's search; always resumes (a retry continues its own log)."""
    evaluator = _RayEvaluator(profile, measure, device_metrics, fan_out, plan.max_retries)
    return _run_one(run_dir, space_name, profile, plan, evaluator, resume=True)


def search_devices(
    run_dir: str | Path,
    profiles: Sequence[str],
    plan: DevicePlan,
    *,
    supernet: Any = None,
    accuracy: MeasuredAccuracy | MeasureFn | None = None,
    device_metrics: DeviceMetrics | None = None,
    resume: bool = False,
    parallel: bool = True,
    address: str | None = None,
    fan_out: int | None = None,
) -> dict[str, SearchResult]:
    """Run one search per device profile (in parallel on Ray unless ``parallel=False``).

    Args:
        run_dir: the run directory (``runs/<name>``, created by training); searches write
            ``search/<profile>/``.
        profiles: device profile names (one search each).
        plan: the searcher, budget and per-profile constraints.
        supernet: the trained supernet (``accuracy`` a :class:`MeasuredAccuracy`).
        accuracy: how accuracy is measured: on ``supernet`` (:class:`MeasuredAccuracy`), by a
            picklable function ``archs -> [{"accuracy": ...}, ...]``, or (``None``) predicted
            by the run's ``predictors/accuracy`` model.
        device_metrics: ``(profile, archs) -> [{"latency_ms": ...}, ...]``; default: the
            profile's latency model (:func:`profile_latency`).
        resume: continue searches logged in the run directory.
        parallel: ``False`` runs the searches one after another in this process (no Ray).
        address: join this Ray cluster instead of starting a local one.
        fan_out: measurement tasks (one CPU each) per batch (default: the Ray cluster's CPU
            count, so one search can keep every CPU busy).

    Returns:
        ``{profile: SearchResult}``.

    Example:
        >>> results = search_devices("runs/demo", ["cpu_a", "cpu_b"], DevicePlan(budget=50),
        ...                          supernet=supernet, accuracy=MeasuredAccuracy(data=val))
    """
    if not profiles:
        raise ValueError("profiles must name at least one device profile")
    if fan_out is not None and (
        not isinstance(fan_out, int) or isinstance(fan_out, bool) or fan_out < 1
    ):
        raise ValueError(f"fan_out must be a positive int or None, got {fan_out!r}")
    if len(set(profiles)) != len(profiles):
        raise ValueError(f"profiles repeat a name: {list(profiles)}")
    run_path = Path(run_dir)
    space_name = RunDir.space_name(run_path)
    for profile in profiles:
        trials = run_path / "search" / profile / "trials.csv"
        if trials.exists() and not resume:
            raise ValueError(f"{trials} exists; pass resume=True (--resume) to continue it")
    device = device_metrics or profile_latency
    if any(m in COUNTED for p in profiles for m in plan.constraints_for(p)):
        device = CountedMetrics(device, _num_classes(run_path, supernet))
    if accuracy is None:
        saved = run_path / "predictors" / "accuracy"
        if not saved.with_suffix(".json").is_file():
            raise ValueError(
                f"{saved}.json: no accuracy predictor in the run; pass accuracy=MeasuredAccuracy"
                "(data=...) with supernet=..., or a measurement function"
            )
        accuracy = PredictedAccuracy(saved)
    if isinstance(accuracy, MeasuredAccuracy) and supernet is None:
        raise ValueError("accuracy=MeasuredAccuracy(...) needs the trained supernet (supernet=...)")
    if not parallel:
        measure_fn: MeasureFn
        if isinstance(accuracy, MeasuredAccuracy):
            acc = accuracy

            def measure_fn(archs: list[ArchConfig]) -> Metrics:  # type: ignore[misc]
                return measure_on_supernet(supernet, acc, archs)
        else:
            measure_fn = accuracy
        return {
            p: _run_one(
                str(run_path), space_name, p, plan, _LocalEvaluator(p, measure_fn, device), resume
            )
            for p in profiles
        }
    ray = ensure_ray(address)
    if fan_out is None:
        fan_out = max(1, int(ray.cluster_resources().get("CPU", 1)))
    if isinstance(accuracy, MeasuredAccuracy):
        state = {k: v.detach().cpu() for k, v in supernet.state_dict().items()}
        # weights and data go to the object store once; each worker process builds the
        # supernet from them once (WorkerSupernet) and measures chunks of every search
        shared = [ray.put(state), ray.put(accuracy)]
        measure: dict[str, Any] = {
            "kind": "supernet",
            "args": (space_name, supernet.num_classes, shared),
        }
    else:
        measure = {"kind": "function", "args": (accuracy,)}
    task = ray.remote(num_cpus=0, max_retries=plan.max_retries)(_search_task)
    futures = {
        p: task.remote(str(run_path), space_name, p, plan, measure, device, fan_out)
        for p in profiles
    }
    return {p: ray.get(f) for p, f in futures.items()}
