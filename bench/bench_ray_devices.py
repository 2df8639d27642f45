"""Three device-profile searches with measured accuracy: Ray (2 workers) vs sequential.

Each search measures the accuracy of every proposed ``tiny`` subnet on the supernet (BN
recalibration on 4 batches of 32, then top-1 on half of ``--images`` digit images); latency
comes from a per-device model (synthetic for ``tiny``, which ships no hardware profile).

The comparison is kept fair:

- the same torch thread count per evaluation in both arms (``--threads``, default 1: the
  sequential arm sets it in this process, every Ray measurement task sets it in its worker);
- sequential: the three searches one after another in this process;
- Ray: ``search_devices`` on a local Ray of 2 CPUs, one search task per profile, measurements
  sent to 2 meter actors that each rebuild the supernet once from the weights in the object
  store. Its time includes starting Ray
  and its workers, once (no warm-up run is excluded); the table also shows that startup;
- the workload is sized so the sequential arm takes ~50 s on 2 quiet cores (defaults:
  160 subnets per profile, 2,400 images), so Ray's fixed startup (~4 s for ``ray.init``,
  a few more for its worker processes) does not dominate.

Usage:
    python bench/bench_ray_devices.py [--budget 160] [--batch 8] [--images 2400] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
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

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=int, default=160, help="subnets measured per profile")
    parser.add_argument("--batch", type=int, default=8, help="subnets per search batch")
    parser.add_argument("--images", type=int, default=2400, help="digits images (half for BN)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per evaluation")
    parser.add_argument("--searcher", default="evolution")
    args = parser.parse_args()
    for name in ("budget", "batch", "images", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
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
    plan = DevicePlan(
        searcher=args.searcher,
        budget=args.budget,
        batch_size=args.batch,
        options={"population": args.batch} if args.searcher in ("evolution", "nsga2") else {},
        constraints={p: {"latency_ms": 8.0 * s} for p, s in SPEED.items()},
    )
    profiles = list(SPEED)
    space = nas.create_space("tiny")
    load_before = os.getloadavg()[0]
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
        ensure_ray(num_cpus=2)  # counted once, in the Ray arm
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
        f"\n3 profiles x {args.budget} measured subnets (batch {args.batch}, {args.searcher}), "
        f"{len(val)} validation images, {args.threads} torch thread(s) per evaluation in both "
        f"arms; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    rows = [
        ("sequential (1 process)", t_seq),
        ("Ray, 2 workers (incl. startup)", t_ray),
        ("Ray, 2 workers (excl. ray.init)", t_ray - t_start),
    ]
    print(f"{'mode':<34}{'seconds':>9}{'subnets/s':>11}{'speedup':>9}")
    for label, sec in rows:
        print(f"{label:<34}{sec:>9.2f}{n / sec:>11.2f}{t_seq / sec:>9.2f}")
    print(f"ray.init took {t_start:.2f} s (counted once in the Ray arm); goal: speedup >= 1.6")
    print(f"same trials in both modes: {same}; max accuracy difference {acc_diff:.2e}")
    for p in profiles:
        print(
            f"  {p:<10} best {par[p].best_metrics()['accuracy']:.2f}% at "
            f"{par[p].best_metrics()['latency_ms']:.2f} ms (limit {8.0 * SPEED[p]:.1f})"
        )


if __name__ == "__main__":
    main()
