"""NAS-Bench-201 search quality on real measurements: regret and hypervolume per searcher.

Data: ../shared/data/nas_bench_201/nb201_cifar10_latency.csv (CIFAR-10 accuracy, latency on
8 devices). Each query returns an arch's accuracy and latency from the table; only queried
archs count as found. The optimum of every constrained query is found by enumeration.

Single objective: maximise accuracy under latency <= the device's median (q50) and 25th
percentile (q25); mean regret (points) over seeds at budgets 50, 100, 300 (one 300-query run
per seed, read at each budget: searchers do not know the budget).
Multi-objective: (accuracy max, latency min), reference point = (lowest accuracy, highest
latency) of the whole table; hypervolume after 100 and 300 queries as % of the true front's.

Usage:
    python bench/bench_nb201_search.py                       # every searcher, 20 seeds
    python bench/bench_nb201_search.py --seeds 5 --searchers local,regularized,random
    python bench/bench_nb201_search.py --seeds 4 --seed-offset 100 --searchers local --skip-mo \
        --devices silver_4114,pixel3 --quantiles 0.25 --options '{"local": {"batch_size": 2}}'
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "nas_bench_201" / "nb201_cifar10_latency.csv"
BUDGETS = (50, 100, 300)
SEARCHER_OPTIONS: dict[str, dict] = {
    "regularized": {"population": 20, "tournament": 5},
    "evolution": {"population": 20},
    "nsga2": {"population": 20},
}
_TABLE: dict = {}


def _load() -> dict:
    if _TABLE:
        return _TABLE
    import nas

    space = nas.create_space("nb201")
    df = pd.read_csv(DATA)
    archs = [space.parse(a) for a in df["arch"]]  # type: ignore[attr-defined]
    rows = space.indices(archs, fill_inactive=False)
    code = rows @ (5 ** np.arange(rows.shape[1])[::-1])
    acc = np.full(5 ** rows.shape[1], np.nan)
    acc[code] = df["cifar10_valid_acc"].to_numpy()
    devices = [c[len("latency_ms_") :] for c in df.columns if c.startswith("latency_ms_")]
    lat = {}
    for d in devices:
        col = np.full(len(acc), np.nan)
        col[code] = df[f"latency_ms_{d}"].to_numpy()
        lat[d] = col
    _TABLE.update(space=space, acc=acc, lat=lat, devices=devices)
    return _TABLE


class TableEvaluator:
    """Queries the table; ``evaluate`` (ArchConfigs) and ``evaluate_indices`` (rows)."""

    def __init__(self, device: str) -> None:
        t = _load()
        self.space, self.acc, self.lat = t["space"], t["acc"], t["lat"][device]
        self.weights = 5 ** np.arange(len(self.space.choices))[::-1]

    def evaluate_indices(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        code = np.asarray(rows) @ self.weights
        return {"accuracy": self.acc[code], "latency_ms": self.lat[code]}

    def evaluate(self, archs: list) -> list[dict[str, float]]:
        cols = self.evaluate_indices(self.space.indices(archs, fill_inactive=False))
        return [{k: float(v[i]) for k, v in cols.items()} for i in range(len(archs))]


def _run(job: tuple) -> dict:
    from nas.search import search

    kind, searcher, device, quantile, seed, budget, extra = job
    t = _load()
    ev = TableEvaluator(device)
    lat, acc = t["lat"][device], t["acc"]
    opts = {**SEARCHER_OPTIONS.get(searcher, {}), **extra}
    start = time.perf_counter()
    if kind == "single":
        limit = float(np.nanquantile(lat, quantile))
        res = search(
            t["space"],
            ev,
            objectives={"accuracy": "max"},
            constraints={"latency_ms": limit},
            searcher=searcher,
            budget=budget,
            seed=seed,
            options=opts,
        )
        optimum = float(np.nanmax(np.where(lat <= limit, acc, -np.inf)))
        a = res.columns["accuracy"]
        feas = res.feasible
        out = {
            "kind": kind,
            "searcher": searcher,
            "device": device,
            "q": quantile,
            "seed": seed,
            "seconds": time.perf_counter() - start,
        }
        for b in BUDGETS:
            upto = feas[:b]
            out[f"regret@{b}"] = (
                optimum - a[:b][upto].max() if upto.any() else optimum - np.nanmin(acc)
            )
        return out
    res = search(
        t["space"],
        ev,
        objectives={"accuracy": "max", "latency_ms": "min"},
        searcher=searcher,
        budget=budget,
        seed=seed,
        options=opts,
    )
    from nas.search.pareto import hypervolume

    ref = np.array([-np.nanmin(acc), np.nanmax(lat)])
    ok = ~np.isnan(acc)
    true_hv = hypervolume(np.stack([-acc[ok], lat[ok]], axis=1), ref)
    F = np.stack([-res.columns["accuracy"], res.columns["latency_ms"]], axis=1)
    out = {
        "kind": kind,
        "searcher": searcher,
        "device": device,
        "seed": seed,
        "seconds": time.perf_counter() - start,
    }
    for b in (100, 300):
        out[f"hv%@{b}"] = 100 * hypervolume(F[:b], ref) / true_hv
    return out


def _print_single(single: pd.DataFrame, seeds: range) -> None:
    """Mean regret tables per budget, the worst device/quantile and the worst seed."""
    print(
        f"NAS-Bench-201 constrained search: mean regret (points) over {len(seeds)} seeds "
        f"({seeds.start}-{seeds.stop - 1})"
    )
    table = single.pivot_table(
        index=["device", "q"],
        columns="searcher",
        values=[f"regret@{b}" for b in BUDGETS],
        aggfunc="mean",
    )
    for b in BUDGETS:
        print(f"\n-- budget {b} --")
        sub = table[f"regret@{b}"].copy()
        if "random" in sub:
            for s in sub.columns:
                if s != "random":
                    sub[f"{s}/random"] = sub[s] / sub["random"]
        print(sub.round(3).to_string())
    print("\nworst device/quantile per searcher (max mean regret):")
    print(table.max().unstack(0).round(3).to_string())
    worst = single.pivot_table(
        index=["device", "q"],
        columns="searcher",
        values=[f"regret@{b}" for b in BUDGETS],
        aggfunc="max",
    )
    print("\nworst seed per searcher (max over device/quantile of the max over seeds):")
    print(worst.max().unstack(0).round(3).to_string())
    print("\nseconds per 300-query run (mean):")
    print(single.groupby("searcher")["seconds"].mean().round(2).to_string())


def main() -> None:
    from nas.search import list_searchers

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--searchers", default=",".join(list_searchers()))
    parser.add_argument("--devices", default="all")
    parser.add_argument("--mo-searchers", default="local,nsga2,linas,random")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-mo", action="store_true")
    parser.add_argument("--seed-offset", type=int, default=0, help="first seed (tune on 100+)")
    parser.add_argument("--quantiles", default="0.5,0.25", help="latency-limit quantiles")
    parser.add_argument(
        "--options", default="{}", help="JSON {searcher: {option: value}} added to the defaults"
    )
    args = parser.parse_args()
    extra: dict[str, dict] = json.loads(args.options)
    quantiles = [float(q) for q in args.quantiles.split(",") if q]
    seeds = range(args.seed_offset, args.seed_offset + args.seeds)
    t = _load()
    devices = t["devices"] if args.devices == "all" else args.devices.split(",")
    searchers = [s for s in args.searchers.split(",") if s]
    jobs: list[tuple[Any, ...]] = [
        ("single", s, d, q, seed, max(BUDGETS), extra.get(s, {}))
        for s in searchers
        for d in devices
        for q in quantiles
        for seed in seeds
    ]
    if not args.skip_mo:
        jobs += [
            ("multi", s, d, None, seed, 300, extra.get(s, {}))
            for s in args.mo_searchers.split(",")
            if s
            for d in devices
            for seed in seeds
        ]
    start = time.perf_counter()
    with mp.get_context("fork").Pool(args.workers, initializer=_init) as pool:
        results = pool.map(_run, jobs, chunksize=1)
    wall = time.perf_counter() - start
    df = pd.DataFrame(results)
    single = df[df.kind == "single"]
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 50)
    if len(single):
        _print_single(single, seeds)
    multi = df[df.kind == "multi"]
    if len(multi):
        print(f"\nMulti-objective hypervolume (% of true front), mean over {args.seeds} seeds")
        print(
            multi.pivot_table(
                index="device", columns="searcher", values=["hv%@100", "hv%@300"], aggfunc="mean"
            )
            .round(2)
            .to_string()
        )
        print("\nworst device (min mean hv%):")
        print(
            multi.groupby(["searcher", "device"])[["hv%@100", "hv%@300"]]
            .mean()
            .groupby("searcher")
            .min()
            .round(2)
            .to_string()
        )
    print(f"\nwall time {wall:.0f} s with {args.workers} workers (machine shared with other jobs)")


def _init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import logging

    from threadpoolctl import threadpool_limits

    # one BLAS thread per worker (numpy was loaded before the fork, so the env var is too late)
    threadpool_limits(1)

    logging.disable(logging.WARNING)
    _load()


if __name__ == "__main__":
    main()
