"""Three device-profile searches with measured accuracy: Ray (2 workers) vs sequential.

Each search measures the accuracy of every proposed ``tiny`` subnet on the supernet (BN
recalibration on 4 batches, then top-1 on 256 digit images); latency comes from a per-device
model (synthetic for ``tiny``, which ships no hardware profile). Sequential: the three searches
one after another in this process. Ray: ``search_devices`` with a local Ray of 2 CPUs, one
search task per profile, measurements fanned out as tasks with the weights in the object store.
A warm-up search starts the Ray workers (and imports torch in them) before the clock starts.

Usage:
    python bench/bench_ray_devices.py [--budget 32] [--batch 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEED = {"edge_cpu": 2.0, "phone": 1.0, "gpu": 0.25}


def device_latency(profile: str, archs: list) -> list[dict[str, float]]:
    """A per-device latency model for tiny: resolution, depth and expand driven."""
    return [
        {
            "latency_ms": SPEED[profile]
            * (
                float(a["resolution"]) / 8
                + float(a["s1.depth"])
                + float(a["s2.depth"])
                + float(a["s2.b0.expand"]) / 2
            )
        }
        for a in archs
    ]


def main() -> None:
    import ray.cloudpickle

    import nas
    from nas.data import load_data, split
    from nas.distributed.local import ensure_ray
    from nas.distributed.search import DevicePlan, MeasuredAccuracy, search_devices
    from nas.rundir import RunDir

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=32, help="subnets measured per profile")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--searcher", default="evolution")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    torch.manual_seed(0)
    supernet = nas.create_supernet("tiny", num_classes=10)
    bn, val = split(load_data("digits", limit=512, seed=0), 0.5, seed=0)
    accuracy = MeasuredAccuracy(
        data=val, bn_data=bn, n_bn_batches=4, bn_batch_size=32, batch_size=128
    )
    plan = DevicePlan(
        searcher=args.searcher,
        budget=args.budget,
        batch_size=args.batch,
        options={"population": args.batch},
        constraints={p: {"latency_ms": 8.0 * s} for p, s in SPEED.items()},
    )
    profiles = list(SPEED)
    space = nas.create_space("tiny")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {k: Path(tmp) / k for k in ("seq", "ray", "warm")}
        for path in runs.values():
            RunDir.create(path, space)
        t = time.perf_counter()
        seq = search_devices(
            runs["seq"],
            profiles,
            plan,
            supernet=supernet,
            accuracy=accuracy,
            device_metrics=device_latency,
            parallel=False,
        )
        t_seq = time.perf_counter() - t
        ensure_ray(num_cpus=2)
        warm = DevicePlan(
            searcher="random",
            budget=4,
            batch_size=2,
            constraints={p: {"latency_ms": 100.0} for p in profiles},
        )
        search_devices(
            runs["warm"],
            profiles,
            warm,
            supernet=supernet,
            accuracy=accuracy,
            device_metrics=device_latency,
        )
        t = time.perf_counter()
        par = search_devices(
            runs["ray"],
            profiles,
            plan,
            supernet=supernet,
            accuracy=accuracy,
            device_metrics=device_latency,
        )
        t_ray = time.perf_counter() - t
    same = all(seq[p].trials["key"].tolist() == par[p].trials["key"].tolist() for p in profiles)
    acc_diff = max(
        float(
            np.max(
                np.abs(seq[p].trials["accuracy"].to_numpy() - par[p].trials["accuracy"].to_numpy())
            )
        )
        for p in profiles
    )
    n = sum(len(r) for r in seq.values())
    print(
        f"3 profiles x {args.budget} measured subnets (batch {args.batch}, {args.searcher}); "
        "machine shared with other jobs"
    )
    print(f"{'mode':<22}{'seconds':>9}{'subnets/s':>11}{'speedup':>9}")
    print(f"{'sequential (1 proc)':<22}{t_seq:>9.2f}{n / t_seq:>11.2f}{1.0:>9.2f}")
    print(f"{'Ray, 2 workers':<22}{t_ray:>9.2f}{n / t_ray:>11.2f}{t_seq / t_ray:>9.2f}")
    print(f"same trials in both modes: {same}; max accuracy difference {acc_diff:.2e}")
    for p in profiles:
        print(
            f"  {p:<10} best {par[p].best_metrics()['accuracy']:.2f}% at "
            f"{par[p].best_metrics()['latency_ms']:.2f} ms (limit {8.0 * SPEED[p]:.1f})"
        )


if __name__ == "__main__":
    main()
