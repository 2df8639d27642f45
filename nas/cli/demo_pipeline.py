"""The end-to-end demo: every step of the flow on the embedded digits dataset.

The demo searches the NAS-Bench-201 cell space because it is the space with real-device
latency profiles shipped here (measured by others on phones, CPUs and GPUs). Accuracy comes
from a *proxy* supernet: the NAS-Bench-201 skeleton made narrower and shallower
(``channels``, ``cells_per_stage``) so it trains on two CPU cores in minutes, on 8x8 digits
resized to 16x16. Latency is that of the benchmark's CIFAR network with the same cell on each
device; on this machine it is measured here, on the shipped profiles it was measured by the
source named in the profile.

Steps (each timed in ``timings.json``): train the supernet, collect accuracy samples through
it (BN recalibrated), measure this machine's latency profile, fit the accuracy predictor,
search three device profiles in parallel on Ray, export each profile's best subnet (BN
recalibrated) and check it in ONNX Runtime, write the report.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.rundir import RunDir, atomic_write_json, atomic_write_text
from nas.space import ArchConfig

log = logging.getLogger(__name__)

SPACE = "nb201"
SHIPPED_DEVICES = ("nb201_pixel3", "nb201_silver_4210r")
THIS_MACHINE = "this_machine"
PROXY_RESOLUTION = 16  # digits are 8x8: the proxy supernet trains and exports at 16x16
BENCHMARK_RESOLUTION = 32  # the NAS-Bench-201 CIFAR input size (latency profiles)
ONNX_TOLERANCE = 0.5  # points of top-1 between torch and ONNX Runtime (float rounding)


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    """Sizes of every step; :data:`QUICK` and :data:`FULL` are the two presets."""

    epochs: int
    channels: int
    cells_per_stage: int
    samples: int
    profile_subnets: int
    budget: int
    seed: int = 0
    latency_quantile: float = 0.4


QUICK = DemoSettings(epochs=2, channels=8, cells_per_stage=1, samples=40, profile_subnets=24,
                     budget=60)
FULL = DemoSettings(epochs=20, channels=16, cells_per_stage=2, samples=150, profile_subnets=60,
                    budget=300)

Say = Callable[[str], None]


class StepTimer:
    """Times named steps; ``timings`` maps step name to seconds."""

    def __init__(self, say: Say) -> None:
        self.timings: dict[str, float] = {}
        self._say = say

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._say(f"[{len(self.timings) + 1}] {name} ...")
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 2)
        self._say(f"    done in {self.timings[name]:.1f} s")


@dataclass(frozen=True)
class PredictedAccuracy:
    """Accuracy from the fitted predictor (picklable: it travels to Ray workers)."""

    predictor: Any

    def __call__(self, archs: list[ArchConfig]) -> list[dict[str, float]]:
        values = np.asarray(self.predictor.predict(archs), dtype=float).reshape(-1)
        return [{"accuracy": float(v)} for v in values]


@dataclass(frozen=True)
class ProfileLatency:
    """``latency_ms`` from the latency model of profiles given by path or shipped name."""

    locations: dict[str, str]

    def __call__(self, profile: str, archs: list[ArchConfig]) -> list[dict[str, float]]:
        from nas.distributed.search import profile_latency  # cached model, index rows

        return profile_latency(self.locations[profile], archs)


def _latency_predictor(location: str, space_name: str) -> Any:
    from nas.hardware import load_profile
    from nas.registry import create_space
    from predictors.io import latency_predictor

    return latency_predictor(load_profile(location), create_space(space_name))


def run_demo(settings: DemoSettings, run_path: Path, say: Say) -> Path:
    """Run every step into ``run_path``; returns the path of ``report.html``."""
    import torch

    import nas
    from nas.data import load_data, split
    from nas.report import write_report

    torch.manual_seed(settings.seed)
    timer = StepTimer(say)
    space = nas.create_space(SPACE)
    run = RunDir.create(run_path, space, made_by="nas demo", settings=settings.__dict__)
    train, val = split(load_data("digits"), val_fraction=0.2, seed=settings.seed)
    options = {"channels": settings.channels, "cells_per_stage": settings.cells_per_stage,
               "resolution": PROXY_RESOLUTION}
    supernet = nas.create_supernet(SPACE, num_classes=10, **options)

    with timer.step("train the supernet (sandwich rule, in-place distillation)"):
        config = nas.TrainConfig(schedule="sandwich", epochs=settings.epochs, batch_size=64,
                                 lr=0.1, seed=settings.seed, eval_bn_batches=5)
        nas.train_supernet(supernet, train, val, config, run.path)
    with timer.step(f"collect {settings.samples} accuracy samples through the supernet"):
        samples = _collect_accuracy(supernet, space, train, val, settings, run)
    with timer.step(f"measure this machine's latency profile ({settings.profile_subnets} nets)"):
        this_machine = _profile_this_machine(space, settings, run)
    with timer.step("fit the accuracy predictor"):
        predictor = _fit_accuracy(space, samples, run)
    locations = {THIS_MACHINE: str(this_machine), **{d: d for d in SHIPPED_DEVICES}}
    limits = {p: _latency_limit(loc, space, settings) for p, loc in locations.items()}
    with timer.step(f"search {len(locations)} device profiles in parallel on Ray"):
        results = _search(run, space, locations, limits, predictor, settings)
    with timer.step("export each chosen subnet and check it in ONNX Runtime"):
        _export_chosen(supernet, space, results, limits, locations, train, val, run, say)
    timer.timings["total"] = round(sum(timer.timings.values()), 2)
    atomic_write_json(run.path / "timings.json", timer.timings)
    atomic_write_json(run.path / "report_notes.json", _notes(settings))
    html_path, _ = write_report(run.path, title="nas demo: NAS-Bench-201 cells on digits")
    return html_path


def _notes(settings: DemoSettings) -> list[str]:
    return [
        f"Accuracy: top-1 on held-out digits of a proxy NAS-Bench-201 supernet "
        f"({settings.channels} channels, {settings.cells_per_stage} cell(s) per stage, "
        f"{PROXY_RESOLUTION}x{PROXY_RESOLUTION} input, {settings.epochs} epochs, sandwich rule); "
        "'predicted' is the accuracy predictor the search used, 'measured' the subnet cut out "
        "of the supernet (BN recalibrated), 'ONNX Runtime' its exported ONNX model.",
        f"Latency, params and MACs: the NAS-Bench-201 CIFAR network (16 channels, 5 cells per "
        f"stage, {BENCHMARK_RESOLUTION}x{BENCHMARK_RESOLUTION}, 10 classes) with the chosen "
        "cell; 'predicted' by each device profile's latency model, 'measured' on this machine "
        "(batch 1, 1 thread). The shipped profiles name their sources.",
        f"Each device's latency limit is the {settings.latency_quantile:.0%} quantile of its "
        "predicted latency over 2,000 random cells.",
    ]


def _collect_accuracy(supernet: Any, space: Any, train: Any, val: Any,
                      settings: DemoSettings, run: RunDir) -> pd.DataFrame:
    import nas

    rng = np.random.default_rng(settings.seed + 1)
    archs = list({a.key: a for a in space.sample_many(settings.samples, rng)}.values())
    rows = nas.evaluate(supernet, archs, val, bn_data=train, n_bn_batches=4)
    frame = pd.DataFrame({
        "arch_key": [a.key for a in archs],
        "arch": [space.format(a) for a in archs],
        "accuracy": [r["top1"] for r in rows],
    })
    atomic_write_text(run.subdir("samples") / "accuracy.csv", frame.to_csv(index=False))
    return frame


def _profile_this_machine(space: Any, settings: DemoSettings, run: RunDir) -> Path:
    from nas.hardware.build import measure_subnets
    from nas.hardware.profile import HardwareProfile, Provenance, save_profile
    from predictors.table_import import fit_latency_model

    archs = space.sample_many(settings.profile_subnets, np.random.default_rng(settings.seed + 2))
    rows = measure_subnets(space, archs, num_classes=10, runtime="torch", batch_size=1,
                           threads=1, warmup=2, repeats=5)
    measured = np.array([r["median_ms"] for r in rows])
    frame = pd.DataFrame({"arch": [space.format(a) for a in archs], "latency_ms": measured})
    atomic_write_text(run.subdir("samples") / f"latency_{THIS_MACHINE}.csv",
                      frame.to_csv(index=False))
    model = fit_latency_model(space, archs, measured, predictor="ridge")
    profile = HardwareProfile(
        name=THIS_MACHINE, kind="cpu", device=platform.processor() or platform.machine(),
        runtime="torch", batch_size=1, threads=1, dtype="float32",
        provenance=Provenance(source="measured here by nas demo", licence="CC0-1.0",
                              notes=f"{len(archs)} whole subnets, median of 5 runs"),
        latency={space.name: model},
    )
    return save_profile(profile, run.subdir("profiles"))


def _fit_accuracy(space: Any, samples: pd.DataFrame, run: RunDir) -> Any:
    from predictors import create_predictor
    from predictors.io import save_predictor

    archs = [space.parse(a) for a in samples["arch"]]
    y = samples["accuracy"].to_numpy(dtype=float)
    half = len(archs) * 4 // 5
    held_out = create_predictor("rf", space=space).fit(archs[:half], y[:half])
    report = held_out.score(archs[half:], y[half:])
    predictor = create_predictor("rf", space=space).fit(archs, y)
    save_predictor(predictor, run.subdir("predictors") / "accuracy")
    atomic_write_json(run.path / "predictors" / "accuracy_fit.json",
                      {"predictor": "rf", "n_train": half, "held_out": report})
    return predictor


def _latency_limit(location: str, space: Any, settings: DemoSettings) -> float:
    """The device's latency budget: a quantile of its predicted latency over random cells."""
    archs = space.sample_many(2000, np.random.default_rng(settings.seed + 3))
    values = _latency_predictor(location, space.name).predict(archs)
    return float(np.quantile(np.asarray(values, dtype=float), settings.latency_quantile))


def _search(run: RunDir, space: Any, locations: dict[str, str], limits: dict[str, float],
            predictor: Any, settings: DemoSettings) -> dict[str, Any]:
    from nas.distributed.search import DevicePlan, search_devices

    plan = DevicePlan(
        searcher="evolution", budget=settings.budget, seed=settings.seed, batch_size=10,
        constraints={p: {"latency_ms": limit} for p, limit in limits.items()},
        info={"sources": {"accuracy": "predictor (rf) fitted on supernet samples",
                          "latency_ms": "device profile latency model"}},
    )
    return search_devices(run.path, list(locations), plan, accuracy=PredictedAccuracy(predictor),
                          device_metrics=ProfileLatency(locations))


def _export_chosen(supernet: Any, space: Any, results: dict[str, Any], limits: dict[str, float],
                   locations: dict[str, str], train: Any, val: Any, run: RunDir,
                   say: Say) -> None:
    import nas
    from nas.evaluation import measure
    from nas.hardware import measure_latency

    reference = nas.create_supernet(SPACE, num_classes=10)  # the benchmark's CIFAR skeleton
    for profile, result in results.items():
        arch = result.best()
        trial = result.trials.set_index("key").loc[arch.key]
        supernet.set_active(arch)
        nas.recalibrate_bn(supernet, train, 8, resolution=PROXY_RESOLUTION)
        measured = measure(supernet.extract(arch), val, resolution=PROXY_RESOLUTION)["top1"]
        counts = nas.count(space, arch, num_classes=10)
        metrics: dict[str, Any] = {
            "profile": profile, "role": "best", "arch_key": arch.key, "arch": space.format(arch),
            "accuracy_predicted": float(trial["accuracy"]), "accuracy_measured": measured,
            "latency_ms_predicted": float(trial["latency_ms"]),
            "latency_limit_ms": limits[profile], **counts,
        }
        if profile == THIS_MACHINE:
            shape = (1, 3, BENCHMARK_RESOLUTION, BENCHMARK_RESOLUTION)
            stats = measure_latency(reference.extract(arch), shape, threads=1)
            metrics["latency_ms_measured"] = stats.median_ms
        out = run.subdir("exports", profile, arch.key)
        nas.export_subnet(supernet, arch, out, metrics=metrics)
        metrics["accuracy_onnx"] = _onnx_accuracy(out, val)
        atomic_write_json(out / "metrics.json", metrics)
        say(f"    {profile}: {metrics['arch']}  acc {measured:.2f}% (ONNX "
            f"{metrics['accuracy_onnx']:.2f}%), latency {metrics['latency_ms_predicted']:.2f} ms "
            f"<= {limits[profile]:.2f} ms")
        if abs(metrics["accuracy_onnx"] - measured) > ONNX_TOLERANCE:
            raise RuntimeError(
                f"exported ONNX model of {arch.key} scores {metrics['accuracy_onnx']:.2f}%, "
                f"the supernet {measured:.2f}%: the export is not faithful"
            )


def _onnx_accuracy(export_dir: Path, val: Any) -> float:
    import nas
    from nas.data import resize

    session = nas.load_subnet(export_dir, format="onnx")
    name = session.get_inputs()[0].name
    correct = 0
    for start in range(0, len(val), 128):
        images, labels = val.batch(np.arange(start, min(start + 128, len(val))))
        logits = session.run(None, {name: resize(images, PROXY_RESOLUTION).numpy()})[0]
        correct += int((logits.argmax(1) == labels.numpy()).sum())
    return 100.0 * correct / len(val)
