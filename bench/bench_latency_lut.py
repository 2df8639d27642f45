"""Latency lookup table built on this machine vs end-to-end measurement of whole subnets.

Builds (or reuses, ``--profile``) a lookup-table profile of ``ofa_mbv3_w1.0`` (torch, batch
1, 1 thread), fits its correction on 20 random subnets measured end to end, and scores it on
50 *other* random subnets measured end to end. Prints, side by side, Kendall τ and MAPE of the
plain table sum, the corrected table (linear and scale-only corrections) and a MACs-linear
baseline fitted on the same 20 subnets. Goal: τ >= 0.9 and MAPE <= 10 %.

The protocol is made for a CPU shared with other jobs:

* every distinct layer is timed in ``--layer-rounds`` sweeps, each sweep in a new random
  order, and tiny layers are re-run until ``--min-time-ms`` of timing per sweep;
* the 70 whole subnets stay built and are timed round-robin, ``--subnet-rounds`` rounds of
  one run each, each round in a new random order, so calibration and test subnets see the
  same conditions;
* ``--clock thread_cpu`` times the CPU of the timing thread (preemption does not count) and
  ``--statistic min_ms`` keeps the minimum over all runs and rounds.

It also prints the machine load and the measurement noise (how far each subnet's median run
is above its minimum): above a load of ~1 on 2 cores, or a noise of more than a few percent,
read τ as a lower bound. About 3 minutes with a build (2 cores, busy), 1.5 with ``--profile``.

Run: python bench/bench_latency_lut.py [--profile hardware_profiles/ofa_mbv3_local_cpu_t1.json]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import nas
from nas.counting import count_many
from nas.hardware import (
    HardwareProfile,
    LatencyModel,
    Provenance,
    build_lookup_table,
    load_profile,
    measure_subnets,
    save_profile,
)
from predictors import kendall_tau, mape
from predictors.lookup_table import LookupTablePredictor


def build(space: nas.SearchSpace, out: Path, args: argparse.Namespace) -> tuple[Path, float]:
    """Time every layer (see the module doc); the profile's path and the build's seconds."""
    start = time.perf_counter()
    stat = args.statistic
    table = build_lookup_table(space, threads=1, warmup=1, repeats=args.repeats,
                               partial_path=out / ".partial.json", clock=args.clock,
                               rounds=args.layer_rounds, min_time_s=args.min_time_ms / 1e3)
    profile = HardwareProfile(
        name="bench_local_cpu", kind="cpu", device="this machine (1 thread)", runtime="torch",
        threads=1, provenance=Provenance(source="bench/bench_latency_lut.py", licence="CC0-1.0"),
        latency={space.name: LatencyModel(space=space.name, fingerprint=space.fingerprint(),
                                          lut={k: v[stat] for k, v in table.items()})},
    )
    return save_profile(profile, out), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="", help="reuse this lookup-table profile")
    parser.add_argument("--out", default="", help="folder for the built profile (default: temp)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per layer and round")
    parser.add_argument("--layer-rounds", type=int, default=8, help="sweeps over all layers")
    parser.add_argument("--min-time-ms", type=float, default=2.0,
                        help="per layer and round, re-run tiny layers until this much is timed")
    parser.add_argument("--subnet-rounds", type=int, default=15,
                        help="round-robin rounds over the 70 subnets (one run each)")
    parser.add_argument("--statistic", default="min_ms", choices=["min_ms", "median_ms"],
                        help="per layer and per subnet: the minimum resists a busy machine")
    parser.add_argument("--clock", default="thread_cpu", choices=["thread_cpu", "wall"],
                        help="thread_cpu: CPU time of the timing thread (robust to other jobs)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = nas.create_space("ofa_mbv3_w1.0")
    load_start = os.getloadavg()[0]
    if args.profile:
        path, build_s = Path(args.profile), float("nan")
    else:
        out = Path(args.out or tempfile.mkdtemp(prefix="lut_"))
        path, build_s = build(space, out, args)
    profile = load_profile(path)
    table = profile.model_for(space).lut
    calib = space.sample_many(20, np.random.default_rng(1))
    test = space.sample_many(50, np.random.default_rng(0))
    start = time.perf_counter()
    stat = args.statistic
    # all 70 in one interleaved measurement: calibration and test see the same conditions
    timed = measure_subnets(space, calib + test, warmup=2, repeats=1, clock=args.clock,
                            rounds=args.subnet_rounds)
    y_all = np.array([r[stat] for r in timed])
    spread = np.array([r["median_ms"] / r["min_ms"] - 1 for r in timed])
    tau_stats = kendall_tau(np.array([r["median_ms"] for r in timed]),
                            np.array([r["min_ms"] for r in timed]))
    y_cal, y = y_all[: len(calib)], y_all[len(calib) :]
    measure_s = time.perf_counter() - start
    plain = LookupTablePredictor(space, table=table)
    corrected = LookupTablePredictor(space, table=table).fit(calib, y_cal)
    scaled = LookupTablePredictor(space, table=table, correction="scale").fit(calib, y_cal)
    macs_cal = np.array([c["macs"] for c in count_many(space, calib)], dtype=float)
    macs = np.array([c["macs"] for c in count_many(space, test)], dtype=float)
    a, b = np.polyfit(macs_cal, y_cal, 1)
    rows = [
        ("table sum (uncorrected)", plain.predict(test)),
        ("table + linear corr. (20)", corrected.predict(test)),
        ("table + scale corr. (20)", scaled.predict(test)),
        ("MACs-linear (20)", a * macs + b),
    ]
    built = "reused " + str(path) if args.profile else (
        f"built in {build_s:.0f} s ({args.layer_rounds} rounds x {args.repeats} runs, "
        f"min {args.min_time_ms:g} ms per layer and round)")
    print(f"ofa_mbv3_w1.0 on this CPU, torch, batch 1, 1 thread, {args.statistic}, "
          f"clock {args.clock}")
    print(f"lookup table: {len(table)} layers, {built}")
    print(f"70 subnets measured end to end in {measure_s:.0f} s "
          f"({args.subnet_rounds} shuffled round-robin rounds)")
    print(f"machine load (1 min): {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print(f"measurement noise: median run {100 * np.median(spread):.1f} % above the minimum "
          f"(worst subnet {100 * spread.max():.1f} %); tau(min, median) {tau_stats:.3f}")
    print(f"measured latency of the 50 test subnets: {y.min():.1f}-{y.max():.1f} ms "
          f"(median {np.median(y):.1f})")
    print(f"{'predictor':<26}{'tau':>7}{'mape %':>8}   goal tau>=0.9, mape<=10%")
    for label, pred in rows:
        tau, err = kendall_tau(y, pred), mape(y, pred)
        ok = "ok" if tau >= 0.9 and err <= 10 else "-"
        print(f"{label:<26}{tau:>7.3f}{err:>8.1f}   {ok}")
    if load_start > 1.0:
        print("(the machine was busy: the scores are lower bounds of a quiet machine's)")


if __name__ == "__main__":
    main()
