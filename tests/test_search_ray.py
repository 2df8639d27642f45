"""One search per device profile on Ray: measured accuracy, faults, a 2-node cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import nas
from nas.data import load_data, split
from nas.devices import DevicePlan, MeasuredMetrics
from nas.flow.search import search_devices
from nas.rundir import RunDir

pytestmark = pytest.mark.ray
SPEED = {"fast": 0.5, "mid": 1.0, "slow": 2.0}


def synthetic_latency(profile: str, archs):
    """Device metrics for tiny: resolution- and depth-driven, scaled per device."""
    return [
        {"latency_ms": SPEED[profile] * (a["resolution"] / 8 + a["s1.depth"] + a["s2.depth"])}
        for a in archs
    ]


def _run_dir(tmp_path: Path) -> Path:
    RunDir.create(tmp_path / "run", nas.create_space("tiny"))
    return tmp_path / "run"


def _register_by_value() -> None:
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_three_profiles_with_measured_accuracy(ray_session: Any, tmp_path: Path) -> None:
    _register_by_value()
    run = _run_dir(tmp_path)
    torch.manual_seed(0)
    supernet = nas.create_supernet("tiny", num_classes=10)
    _, val = split(load_data("digits", limit=96, seed=0), 0.5, seed=0)
    plan = DevicePlan(
        searcher="evolution",
        budget=8,  # a random generation of 4, then 4 children
        batch_size=4,
        options={"population": 4},
        constraints={p: {"latency_ms": 8.0} for p in SPEED},
    )
    accuracy = MeasuredMetrics(data=val, n_bn_batches=1, bn_batch_size=16, batch_size=48)
    results = search_devices(
        run,
        list(SPEED),
        plan,
        supernet=supernet,
        accuracy=accuracy,
        device_metrics=synthetic_latency,
    )
    assert set(results) == set(SPEED)
    for profile, result in results.items():
        trials = pd.read_csv(run / "search" / profile / "trials.csv")
        assert len(trials) == 8 and trials["key"].is_unique
        assert trials["accuracy"].between(0, 100).all()
        assert (trials["feasible"] == (trials["latency_ms"] <= 8.0)).all()
        assert (run / "search" / profile / "pareto.png").exists()
        assert result.trials["key"].tolist() == trials["key"].tolist()
    # the same arch measured under two profiles gets the same accuracy (same weights, same data)
    merged = results["fast"].trials.merge(results["slow"].trials, on="key")
    assert np.allclose(merged["accuracy_x"], merged["accuracy_y"])
    # in-process measurement agrees with the Ray tasks
    from nas.devices import measure_on_supernet

    arch = results["fast"].archs[0]
    local = measure_on_supernet(supernet, accuracy, [arch])[0]["accuracy"]
    assert local == pytest.approx(results["fast"].trials["accuracy"].iloc[0])


def toy_accuracy(archs):
    return [{"accuracy": float(a["resolution"]) / 4 + a["s2.depth"]} for a in archs]


class DyingLatency:
    """Kills its Ray worker (the search task) once per profile, after 2 batches were logged."""

    def __init__(self, markers: Path, run: Path) -> None:
        self.markers, self.run = markers, run

    def __call__(self, profile: str, archs):
        marker = self.markers / profile
        logged = self.run / "search" / profile / "trials.csv"
        if not marker.exists() and logged.exists() and len(logged.read_text().splitlines()) >= 9:
            marker.write_text("killed")
            os._exit(1)
        return synthetic_latency(profile, archs)


def test_killed_worker_is_retried_without_losing_or_duplicating(
    ray_session: Any, tmp_path: Path
) -> None:
    _register_by_value()
    run = _run_dir(tmp_path)
    plan = DevicePlan(
        searcher="random",
        budget=20,
        batch_size=4,
        constraints={"fast": {"latency_ms": 8.0}, "slow": {"latency_ms": 16.0}},
    )
    results = search_devices(
        run,
        ["fast", "slow"],
        plan,
        accuracy=toy_accuracy,
        device_metrics=DyingLatency(tmp_path, run),
    )
    for profile in ("fast", "slow"):
        assert (tmp_path / profile).read_text() == "killed"  # the worker did die
        trials = pd.read_csv(run / "search" / profile / "trials.csv")
        assert len(trials) == 20 and trials["key"].is_unique
        assert len(results[profile]) == 20
    with pytest.raises(ValueError, match="resume"):
        search_devices(run, ["fast"], plan, accuracy=toy_accuracy, device_metrics=synthetic_latency)


def test_sequential_mode_matches_parallel(ray_session: Any, tmp_path: Path) -> None:
    _register_by_value()
    plan = DevicePlan(
        searcher="nsga2",
        budget=16,
        batch_size=8,
        options={"population": 8},
        constraints={"fast": {"latency_ms": 8.0}},
    )
    par = search_devices(
        _run_dir(tmp_path / "a"),
        ["fast", "mid"],
        plan,
        accuracy=toy_accuracy,
        device_metrics=synthetic_latency,
    )
    seq = search_devices(
        _run_dir(tmp_path / "b"),
        ["fast", "mid"],
        plan,
        accuracy=toy_accuracy,
        device_metrics=synthetic_latency,
        parallel=False,
    )
    for p in ("fast", "mid"):
        assert par[p].trials["key"].tolist() == seq[p].trials["key"].tolist()


_CLUSTER_SCRIPT = r"""
import sys, pandas as pd
sys.path.insert(0, sys.argv[2])
import ray, ray.cloudpickle
from ray.cluster_utils import Cluster
import nas
from nas.distributed.local import ensure_ray
from nas.devices import DevicePlan
from nas.flow.search import search_devices
from nas.rundir import RunDir
import test_search_ray as t
ray.cloudpickle.register_pickle_by_value(t)
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
cluster.add_node(num_cpus=1)
ensure_ray(address=cluster.address)
assert len([n for n in ray.nodes() if n["Alive"]]) == 2
run = sys.argv[1]
RunDir.create(run, nas.create_space("tiny"))
plan = DevicePlan(searcher="evolution", budget=12, batch_size=4, options={"population": 4},
                  constraints={"fast": {"latency_ms": 8.0}, "slow": {"latency_ms": 16.0}})
res = search_devices(run, ["fast", "slow"], plan, accuracy=t.toy_accuracy,
                     device_metrics=t.synthetic_latency, address=cluster.address)
for p in ("fast", "slow"):
    df = pd.read_csv(f"{run}/search/{p}/trials.csv")
    assert len(df) == 12 and df["key"].is_unique, df
print("nodes", len(ray.nodes()), "ok", sorted(res))
ray.shutdown()
cluster.shutdown()
"""


@pytest.mark.slow
def test_simulated_two_node_cluster(tmp_path: Path) -> None:
    # a separate process: the session's local Ray cannot be re-initialised to join a cluster
    out = subprocess.run(
        [sys.executable, "-c", _CLUSTER_SCRIPT, str(tmp_path / "run"), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "nodes 2 ok ['fast', 'slow']" in out.stdout


@pytest.mark.slow
def test_optuna_sampler_as_ray_tune_search_algorithm(ray_session: Any, tmp_path: Path) -> None:
    from nas.distributed.tune import tune_search

    _register_by_value()
    space = nas.create_space("tiny")

    def evaluate(archs):
        lat = synthetic_latency("mid", archs)
        return [{**toy_accuracy([a])[0], **m} for a, m in zip(archs, lat)]

    grid = tune_search(
        space,
        evaluate,
        {"accuracy": "max", "latency_ms": "min"},
        sampler="nsga2",
        budget=6,
        storage_path=str(tmp_path / "tune"),
    )
    df = grid.get_dataframe()
    assert len(df) == 6 and not grid.errors
    for _, row in df.iterrows():
        arch = space.arch({c.name: row[f"config/{c.name}"] for c in space.choices})
        assert row["accuracy"] == pytest.approx(toy_accuracy([arch])[0]["accuracy"])
        assert row["arch_key"] == arch.key


def test_local_ray_workers_run_at_the_callers_priority(ray_session: Any) -> None:
    @ray_session.remote(num_cpus=0)
    def niceness() -> int:
        return os.nice(0)

    expected = int(os.environ.get("RAY_worker_niceness", os.nice(0)))  # noqa: SIM112 (Ray spells it so)
    assert ray_session.get(niceness.remote()) == expected


def test_worker_builds_the_supernet_once_per_weights(ray_session: Any) -> None:
    from nas.distributed.search import _worker_supernet
    from nas.registry import SpaceRef

    torch.manual_seed(0)
    supernet = nas.create_supernet("tiny", num_classes=10)
    _, val = split(load_data("digits", limit=32, seed=0), 0.5, seed=0)
    accuracy = ray_session.put(MeasuredMetrics(data=val, n_bn_batches=1))
    weights = ray_session.put(supernet.state_dict())
    ref, build = SpaceRef.of(supernet.space), '{"num_classes": 10}'
    built, settings = _worker_supernet(ref, build, weights, accuracy)
    assert _worker_supernet(ref, build, weights, accuracy)[0] is built  # kept, not rebuilt
    for name, value in supernet.state_dict().items():
        assert torch.equal(built.state_dict()[name], value)
    assert settings.n_bn_batches == 1
    other = {k: v + 1 if v.is_floating_point() else v for k, v in supernet.state_dict().items()}
    rebuilt, _ = _worker_supernet(ref, build, ray_session.put(other), accuracy)
    assert rebuilt is not built  # another run's weights replace the entry
    first = next(k for k, v in other.items() if v.is_floating_point())
    assert torch.equal(rebuilt.state_dict()[first], other[first])


@pytest.mark.parametrize("fan_out", [0, -1, 1.5, True])
def test_fan_out_must_be_a_positive_int(tmp_path: Path, fan_out: Any) -> None:
    with pytest.raises(ValueError, match="fan_out must be a positive int"):
        search_devices(_run_dir(tmp_path), ["fast"], DevicePlan(), fan_out=fan_out)
