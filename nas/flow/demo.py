"""The end-to-end demo: presets plus the flow's own steps, on the embedded digits dataset.

The demo searches the NAS-Bench-201 cell space because it is the space with real-device
latency profiles shipped here (measured by others on phones, CPUs and GPUs). Accuracy comes
from a *proxy* supernet: the NAS-Bench-201 skeleton made narrower and shallower
(``channels``, ``cells_per_stage``) so it trains on two CPU cores in minutes, on 8x8 digits
resized to 16x16. Latency is that of the benchmark's CIFAR network with the same cell on each
device; on this machine it is measured here, on the shipped profiles it was measured by the
source named in the profile. Every step is a :mod:`nas.flow` function, so every ``nas`` verb
continues from the run directory the demo leaves.

Example:
    >>> run_demo(QUICK, Path("runs/demo-quick"), print)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from nas.devices import DevicePlan
from nas.flow.export import export_chosen
from nas.flow.predictors import fit_predictor
from nas.flow.profiles import Timing, measure_profile
from nas.flow.samples import collect_samples
from nas.flow.search import latency_limits, search_run
from nas.flow.train import train
from nas.rundir import RunDir, atomic_write_json
from nas.tasks import DataSpec
from nas.train import TrainConfig

SPACE = "nb201"
SHIPPED_DEVICES = ("nb201_pixel3", "nb201_silver_4210r")
THIS_MACHINE = "this_machine"
PROXY_RESOLUTION = 16  # digits are 8x8: the proxy supernet trains and exports at 16x16
BENCHMARK_RESOLUTION = 32  # the NAS-Bench-201 CIFAR input size (latency profiles)

Say = Callable[[str], None]


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


def run_demo(settings: DemoSettings, run_path: Path, say: Say) -> Path:
    """Run every step into ``run_path``; returns the path of ``report.html``."""
    from nas.report import write_report

    started, s = time.perf_counter(), settings
    profiles = [THIS_MACHINE, *SHIPPED_DEVICES]
    say("[1] train the supernet (sandwich rule, in-place distillation) ...")
    train(run_path, SPACE, data=DataSpec(data="digits", val_fraction=0.2, seed=s.seed),
          config=TrainConfig(schedule="sandwich", epochs=s.epochs, batch_size=64, lr=0.1,
                             seed=s.seed, eval_bn_batches=5),
          supernet_options={"channels": s.channels, "cells_per_stage": s.cells_per_stage,
                            "resolution": PROXY_RESOLUTION})
    run = RunDir.open(run_path)
    run.update_info(made_by="nas demo", settings=asdict(s))
    say(f"[2] collect {s.samples} accuracy samples through the supernet ...")
    collect_samples(run, s.samples, seed=s.seed + 1, bn_batches=4)
    say(f"[3] measure this machine's latency profile ({s.profile_subnets} nets) ...")
    measure_profile(run, THIS_MACHINE, n=s.profile_subnets, seed=s.seed + 2,
                    timing=Timing(num_classes=10, warmup=2, repeats=5))
    say("[4] fit the accuracy predictor ...")
    fit_predictor(run)
    limits = latency_limits(run, profiles, s.latency_quantile, seed=s.seed + 3)
    say(f"[5] search {len(profiles)} device profiles in parallel on Ray ...")
    plan = DevicePlan(searcher="evolution", budget=s.budget, seed=s.seed, batch_size=10,
                      constraints={p: {"latency_ms": v} for p, v in limits.items()})
    results = search_run(run, profiles, plan, accuracy="predicted")
    say("[6] export each chosen subnet and check it in ONNX Runtime ...")
    for path in export_chosen(run, results=results, top_k=0, measure=True, onnx_check=True):
        say(f"    {path.parent.name}: {path.name}")
    run.record_timing("total", time.perf_counter() - started)
    atomic_write_json(run.notes_json, _notes(s))
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
