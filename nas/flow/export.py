"""Flow step 6: export the chosen subnets of each profile's search.

For every profile the chosen subnets (:meth:`nas.SearchResult.chosen`: the best feasible
trial, then the top of the feasible Pareto front) are cut out of the trained supernet, BN
recalibrated on the run's training data, and written to ``exports/<profile>/<arch_key>/``
with ``metrics.json``. Its keys are one schema whichever path made the run: ``profile``,
``role``, ``arch_key``, ``arch``, ``<metric>_<source>`` for every metric of the search
(source ``predicted``, ``measured`` or ``counted``, as the search's ``plan.json`` says), and
with ``measure`` the task metric measured now (``<metric>_measured``), with ``onnx_check``
the same measured on the ONNX model in ONNX Runtime (``<metric>_onnx``); ``latency_limit_ms``,
``params``, ``macs`` and ``size_bytes``; ``latency_ms_measured`` where the profile was measured
here.

A run on a space with a quantization policy (``tiny+q8-32b``) exports each subnet with its
policy (:func:`nas.quantization.export_quantized`, calibrated on the run's training data):
``model.onnx`` is the quantized model (``model_float.onnx`` the float one), ``arch.json``
carries the policy, ``metrics.json`` adds ``policy`` (bits of the active blocks in order,
``"8,8,32,8"``); ``measure`` measures the task metric fake-quantized by the policy, and
``measure``/``onnx_check`` time the quantized ONNX model in ONNX Runtime
(``latency_ms_onnx``, batch 1, 1 thread); ``latency_ms_measured`` (a profile made here) is
the quantized ONNX model timed in ONNX Runtime at the profile's batch size and threads.

Example:
    >>> paths = export_chosen("runs/demo", top_k=2, measure=True)
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.devices import COUNTED
from nas.errors import ConfigError, RunDirError
from nas.quantization.space import is_quantized, policy_of
from nas.rundir import RunDir, read_json
from nas.search import SearchResult
from nas.space import ArchConfig

FORMATS = ("torch", "export", "onnx")
ONNX_TOLERANCE = 0.5  # metric points between torch and ONNX Runtime (float rounding)
BN_BATCHES = 8  # BN recalibration batches before each export


def load_search(run: RunDir | str | Path, profile: str) -> SearchResult:
    """The search logged for ``profile`` in the run, as a :class:`nas.SearchResult`."""
    from nas.search.store import load_result

    run = run if isinstance(run, RunDir) else RunDir.open(run)
    if not run.trials_csv(profile).is_file():
        raise RunDirError(f"{run.trials_csv(profile)}: no search for profile {profile!r}; "
                          f"searched: {run.searched_profiles()}")
    return load_result(run.search_dir(profile), run.space)


def export_chosen(
    run: RunDir | str | Path,
    *,
    results: Mapping[str, SearchResult] | None = None,
    archs: Mapping[str, Sequence[ArchConfig]] | None = None,
    top_k: int = 2,
    formats: Collection[str] = FORMATS,
    measure: bool = False,
    onnx_check: bool = False,
) -> list[Path]:
    """Export each profile's chosen subnets (or ``archs[profile]``) from the trained supernet.

    Args:
        run: the trained and searched run.
        results: ``{profile: SearchResult}`` (default: every search logged in the run).
        archs: export these archs of a profile's search instead of its chosen ones.
        top_k: how many of the Pareto front beside the best.
        formats: of :func:`nas.export_subnet` (a quantized run writes ``torch`` and the
            quantized ``onnx``, see the module doc).
        measure: measure the task metric of each export now (BN recalibrated).
        onnx_check: measure it on the ONNX model in ONNX Runtime too; a gap over
            :data:`ONNX_TOLERANCE` is a bug and raises ``RuntimeError``.
    """
    from nas.flow.train import load_supernet

    run = run if isinstance(run, RunDir) else RunDir.open(run)
    if onnx_check and "onnx" not in formats:
        raise ConfigError("onnx_check needs the 'onnx' export format")
    profiles = list(results or archs or run.searched_profiles())
    results = {p: (results or {}).get(p) or load_search(run, p) for p in profiles}
    supernet = load_supernet(run)
    data = _data(run, needed=measure or onnx_check or is_quantized(run.space))
    started, paths = time.perf_counter(), []
    for profile, result in results.items():
        picked = list((archs or {}).get(profile) or result.chosen(top_k))
        for i, arch in enumerate(picked):
            role = "best" if archs is None and i == 0 else "chosen" if archs else "front"
            paths.append(_export_one(run, supernet, result, profile, arch, role, data,
                                     formats=formats, measure=measure, onnx_check=onnx_check))
    run.record_timing("export the chosen subnets", time.perf_counter() - started)
    return paths


def _data(run: RunDir, *, needed: bool) -> tuple[Any, Any] | None:
    """The run's training and validation data (None when the run records none)."""
    if "data" not in run.info():
        if needed:
            raise RunDirError(f"{run.path}/run.json: no 'data' to measure or calibrate on "
                              "(train with nas)")
        return None
    return run.task.load(run.data_spec())


def _export_one(run: RunDir, supernet: Any, result: SearchResult, profile: str,
                arch: ArchConfig, role: str, data: tuple[Any, Any] | None, *,
                formats: Collection[str], measure: bool, onnx_check: bool) -> Path:
    import nas

    metrics = _search_metrics(run, result, profile, arch, role)
    supernet.set_active(arch)
    resolution = supernet.input_resolution(arch)
    if data is not None:
        nas.recalibrate_bn(supernet, data[0], BN_BATCHES, resolution=resolution, task=run.task)
    if measure and data is not None:
        metrics[f"{run.task.metric}_measured"] = _measured_metric(run, supernet, arch, data,
                                                                  resolution)
    if is_quantized(run.space) and data is not None:
        return _export_quantized(run, supernet, arch, data, metrics, resolution,
                                 measure=measure, onnx_check=onnx_check)
    metrics.update(_measured_latency(run, profile, arch))
    out = nas.export_subnet(supernet, arch, run.export_dir(profile, arch.key),
                            metrics=metrics, formats=formats)
    if onnx_check and data is not None:
        from nas.export import write_export_metrics

        metrics[f"{run.task.metric}_onnx"] = _onnx_metric(run, out, data[1], resolution)
        write_export_metrics(out, metrics)
        _check_onnx(metrics, run.task.metric, arch.key)
    return out


def _measured_metric(run: RunDir, supernet: Any, arch: ArchConfig, data: tuple[Any, Any],
                     resolution: int | None) -> float:
    """The task metric of ``arch`` now: of the extracted subnet, or fake-quantized by its
    policy in the supernet (BN recalibrated as for the export)."""
    if not is_quantized(run.space):
        return float(run.task.measure(supernet.extract(arch), data[1],
                                      resolution=resolution)[run.task.metric])
    import nas

    row = nas.evaluate(supernet, [arch], data[1], bn_data=data[0], n_bn_batches=BN_BATCHES,
                       task=run.task)[0]
    return float(row[run.task.metric])


def _export_quantized(run: RunDir, supernet: Any, arch: ArchConfig, data: tuple[Any, Any],
                      metrics: dict[str, Any], resolution: int | None, *, measure: bool,
                      onnx_check: bool) -> Path:
    """Export ``arch`` with its policy (QDQ ONNX calibrated on the training data); with
    ``measure``/``onnx_check`` time the quantized model in ONNX Runtime, and with
    ``onnx_check`` measure the task metric on it."""
    from nas.export import write_export_metrics
    from nas.hardware import measure_onnx
    from nas.quantization import export_quantized
    from nas.rundir import ONNX_FILE

    profile = str(metrics["profile"])
    out = export_quantized(supernet, arch, run.export_dir(profile, arch.key), data[0],
                           task=run.task, metrics=metrics)
    metrics.update(read_json(out / "metrics.json"))
    if run.profile_json(profile).is_file():  # the profile was made here: time what deploys
        from nas.hardware import load_profile

        loaded = load_profile(run.profile_json(profile))
        x = supernet.example_input(arch, batch=loaded.batch_size)
        metrics["latency_ms_measured"] = measure_onnx(out / ONNX_FILE, x,
                                                      threads=loaded.threads or 1).median_ms
    if measure or onnx_check:
        x = supernet.example_input(arch, batch=1)
        metrics["latency_ms_onnx"] = measure_onnx(out / ONNX_FILE, x, threads=1,
                                                  repeats=20).median_ms
    if onnx_check:
        metrics[f"{run.task.metric}_onnx"] = _onnx_metric(run, out, data[1], resolution)
    write_export_metrics(out, metrics)
    if onnx_check:
        # int8 rounding may flip one example of a small validation set
        one = 100.0 / max(1, len(data[1])) if run.task.metric == "accuracy" else 0.0
        _check_onnx(metrics, run.task.metric, arch.key, tolerance=max(ONNX_TOLERANCE, one))
    return out


def _search_metrics(run: RunDir, result: SearchResult, profile: str, arch: ArchConfig,
                    role: str) -> dict[str, Any]:
    import nas

    plan = read_json(run.plan_json(profile))
    sources = dict(plan.get("sources", {}))
    logged = result.metrics_of(arch)
    constraints = plan.get("constraints") or {}
    metrics: dict[str, Any] = {
        "profile": profile, "role": role, "arch_key": arch.key, "arch": _arch_text(run.space, arch),
        **{f"{k}_{sources.get(k, 'predicted')}": v for k, v in logged.items()
           if k not in COUNTED},
        "feasible": bool(result.feasible[[a.key for a in result.archs].index(arch.key)]),
        "constraints": constraints,
    }
    if "latency_ms" in constraints:
        limit = constraints["latency_ms"]
        metrics["latency_limit_ms"] = float(limit[-1] if isinstance(limit, list) else limit)
    counts = nas.count(run.space, arch, num_classes=run.supernet_build()["num_classes"])
    metrics.update({**counts, "size_bytes": counts.get("size_bytes", 4 * counts["params"])})
    if is_quantized(run.space):
        metrics["policy"] = compact_policy(run.space, arch)
    return metrics


def compact_policy(space: Any, arch: ArchConfig) -> str:
    """The bits of ``arch``'s active blocks in order, e.g. ``"8,8,32,8"``."""
    return ",".join(str(b) for b in policy_of(space, arch).values())


def _arch_text(space: Any, arch: ArchConfig) -> str:
    """The arch as its space writes it (NAS-Bench-201's cell string), else as JSON."""
    formatted = getattr(space, "format", None)
    return str(formatted(arch)) if callable(formatted) else arch.to_json()


def _measured_latency(run: RunDir, profile: str, arch: ArchConfig) -> dict[str, float]:
    """``latency_ms_measured`` when the profile was measured here for this run."""
    from nas.hardware import load_profile
    from nas.hardware.build import measure_subnets

    path = run.profile_json(profile)
    if not path.is_file():
        return {}
    loaded = load_profile(path)
    model = loaded.model_for(run.space)
    rows = measure_subnets(run.space, [arch], num_classes=model.num_classes,
                           batch_size=loaded.batch_size, threads=loaded.threads or 1,
                           warmup=2, repeats=10)
    return {"latency_ms_measured": float(rows[0]["median_ms"])}


def _onnx_metric(run: RunDir, export_dir: Path, data: Any, resolution: int | None) -> float:
    """The task metric of the exported ONNX model, run in ONNX Runtime."""
    import nas

    session = nas.load_subnet(export_dir, format="onnx")
    model: Any = _OnnxModule(session)
    return float(run.task.measure(model, data, resolution=resolution)[run.task.metric])


def _check_onnx(metrics: Mapping[str, Any], metric: str, key: str, *,
                tolerance: float = ONNX_TOLERANCE) -> None:
    measured, onnx = metrics.get(f"{metric}_measured"), metrics[f"{metric}_onnx"]
    if measured is not None and abs(onnx - measured) > tolerance:
        raise RuntimeError(f"exported ONNX model of {key} scores {onnx:.3f} {metric}, the "
                           f"supernet {measured:.3f}: the export is not faithful")


class _OnnxModule:
    """An ONNX Runtime session behind the ``nn.Module`` calls a task's ``measure`` makes."""

    training = False

    def __init__(self, session: Any) -> None:
        self.session = session
        self.name = session.get_inputs()[0].name

    def eval(self) -> _OnnxModule:
        return self

    def train(self, mode: bool = True) -> _OnnxModule:
        return self

    def __call__(self, x: Any) -> Any:
        import torch

        out = self.session.run(None, {self.name: np.ascontiguousarray(x.cpu().numpy())})[0]
        return torch.from_numpy(out)
