"""Three device-profile searches with measured accuracy: Ray (2 workers) vs sequential.

Each search measures the accuracy of every proposed ``tiny`` subnet on the supernet (BN
recalibration on 4 batches of 32, then top-1 on half of ``--images`` digit images); latency
comes from a per-device model (synthetic for ``tiny``, which ships no hardware profile).

The comparison is kept fair:

- the same torch thread count per evaluation in both arms (``--threads``, default 1: the
  sequential arm sets it in this process, every Ray measurement task sets it in its worker);
- sequential: the three searches one after another in this process;
- Ray: ``search_devices`` on a fresh local Ray of 2 CPUs per workload, one search task per
  profile, measurements sent as Ray tasks of one CPU (each worker process builds the supernet
  once from the weights in the object store). Its time includes starting Ray and its workers
  (no warm-up run is excluded); the table also shows the time without ``ray.init``;
- Ray's startup is a fixed cost (~3 s for ``ray.init``, ~4 s until both measuring workers have
  imported torch and built the supernet, on 2 cores), so the speedup depends on the job's
  length: the bench runs two workloads (defaults: 160 and 480 subnets per profile, ~50 s and ~150 s
  sequential on 2 quiet cores) and prints one row each. ``--images`` defaults to all 1,797
  digits (half recalibrate BN, half are measured).

Usage:
    python bench/bench_ray_devices.py [--budgets 160,480] [--batch 8] [--images 2400] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def run_pair(
    budget: int, args: argparse.Namespace, supernet: Any, accuracy: Any
) -> dict[str, Any]:
    """One workload (``budget`` subnets per profile): sequential, then Ray on a fresh local Ray."""
    import ray

    from nas.distributed.local import ensure_ray
    from nas.distributed.search import DevicePlan, search_devices
    from nas.registry import create_space
    from nas.rundir import RunDir

    plan = DevicePlan(
        searcher=args.searcher,
        budget=budget,
        batch_size=args.batch,
        options={"population": args.batch} if args.searcher in ("evolution", "nsga2") else {},
        constraints={p: {"latency_ms": 8.0 * s} for p, s in SPEED.items()},
    )
    profiles = list(SPEED)
    space = create_space("tiny")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {k: Path(tmp) / k for k in ("seq", "ray")}
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
        t = time.perf_counter()
        ensure_ray(num_cpus=2)  # a fresh local Ray per workload, counted in the Ray arm
        t_start = time.perf_counter() - t
        par = search_devices(
            runs["ray"],
            profiles,
            plan,
            supernet=supernet,
            accuracy=accuracy,
            device_metrics=device_latency,
        )
        t_ray = time.perf_counter() - t
        ray.shutdown()
    same = all(seq[p].trials["key"].tolist() == par[p].trials["key"].tolist() for p in profiles)
    acc_diff = max(
        float(
            np.max(
                np.abs(seq[p].trials["accuracy"].to_numpy() - par[p].trials["accuracy"].to_numpy())
            )
        )
        for p in profiles
    )
    return {
        "budget": budget,
        "n": sum(len(r) for r in seq.values()),
        "seq": t_seq,
        "ray": t_ray,
        "init": t_start,
        "same": same,
        "acc_diff": acc_diff,
    }


def main() -> None:
    import ray.cloudpickle

    import nas
    from nas.data import load_data, split
    from nas.distributed.search import MeasuredAccuracy

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--budgets",
        default="160,480",
        help="comma-separated subnets measured per profile, one workload each",
    )
    parser.add_argument("--batch", type=int, default=8, help="subnets per search batch")
    parser.add_argument("--images", type=int, default=2400, help="digits images (half for BN)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per evaluation")
    parser.add_argument("--searcher", default="evolution")
    args = parser.parse_args()
    try:
        budgets = [int(b) for b in args.budgets.split(",")]
    except ValueError:
        parser.error(f"--budgets must be comma-separated ints, got {args.budgets!r}")
    for name, value in [("batch", args.batch), ("images", args.images), ("threads", args.threads)]:
        if value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    if not budgets or min(budgets) < 1:
        parser.error(f"--budgets must be positive, got {args.budgets!r}")
    torch.set_num_threads(args.threads)  # the sequential arm's evaluations
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    torch.manual_seed(0)
    supernet = nas.create_supernet("tiny", num_classes=10)
    bn, val = split(load_data("digits", limit=args.images, seed=0), 0.5, seed=0)
    accuracy = MeasuredAccuracy(
        data=val,
        bn_data=bn,
        n_bn_batches=4,
        bn_batch_size=32,
        batch_size=128,
        threads=args.threads,  # the Ray arm's evaluations (set in each task's worker)
    )
    load_before = os.getloadavg()[0]
    results = [run_pair(b, args, supernet, accuracy) for b in budgets]
    print(
        f"\n3 profiles, batch {args.batch}, {args.searcher}, {len(val)} validation images, "
        f"{args.threads} torch thread(s) per evaluation in both arms; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(
        f"{'subnets/profile':>15}{'sequential s':>14}{'Ray s':>8}{'ray.init s':>12}"
        f"{'speedup':>9}{'excl. init':>12}{'same trials':>13}"
    )
    for r in results:
        print(
            f"{r['budget']:>15}{r['seq']:>14.2f}{r['ray']:>8.2f}{r['init']:>12.2f}"
            f"{r['seq'] / r['ray']:>9.2f}{r['seq'] / (r['ray'] - r['init']):>12.2f}"
            f"{r['same']!s:>13}"
        )
    print(
        "goal: speedup >= 1.6 (Ray, 2 workers, startup included); max accuracy difference "
        f"between arms {max(r['acc_diff'] for r in results):.2e}"
    )


if __name__ == "__main__":
    main()
