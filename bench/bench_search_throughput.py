"""Predictor-based search throughput on ofa_mbv3_w1.0, side by side with OFA's EvolutionFinder.

Predictors (the same objects on both sides):
- accuracy: ``predictors`` MLP (400-400-400 on one-hot, OFA's design) fitted on the DyNAS-T
  ImageNet measurements of OFA subnets
  (../shared/data/ofa_mobilenet_v3/dynast_imagenet_subnets.csv);
- latency: the lookup table measured on this machine (hardware profile
  ``ofa_mbv3_local_cpu_t1``: per-layer milliseconds, summed, with its fitted linear
  correction): the profile's own ``lut`` predictor (``predictors.lookup_table``) on index
  rows (``predict_indices``, its vectorised slot sums), checked equal to its per-layer loop
  on 2,000 random networks before any timing.

Ours: ``nas.search(..., searcher="evolution", population 100)`` with an array evaluator (one
predictor call per generation, no per-arch Python objects), 500 generations = 50,000 distinct
candidates; also NSGA-II on (accuracy, latency). Reference: the ``ofa`` package's own
``EvolutionFinder`` (population 100, 500 generations, unmodified, loaded from bench/.ofa-env's
site-packages) with the same predictors wrapped in OFA's interface (``predict_acc`` on a batch,
``get_efficiency`` per sample, as OFA calls them).

Every configuration runs on 1 torch thread and on ``--threads`` (default 2: both cores, the
MLP's matmuls split between them); OFA's finder runs on 1.

Columns: ``predictor_s`` is the time inside the two predictors (accuracy forward + table
gather; ``latency_s`` the table's share), ``loop_s`` everything else (mutation, crossover,
dedup, keys, constraint handling, bookkeeping); ``loop_cand/s`` is the throughput the loop
alone would allow.

Usage:
    python bench/bench_search_throughput.py [--generations 500] [--skip-ofa] [--threads 2]
"""

from __future__ import annotations

import os

# one BLAS thread unless a row asks for more (threadpool_limits, torch.set_num_threads)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "ofa_mobilenet_v3" / "dynast_imagenet_subnets.csv"
OFA_SITE = next((ROOT / "bench" / ".ofa-env" / "lib").glob("python3*/site-packages"), None)
PROFILE = "ofa_mbv3_local_cpu_t1"


def fit_predictors(space: Any) -> tuple[Any, Any]:
    """The MLP accuracy predictor (fitted here) and the profile's lookup-table latency model."""
    from nas.hardware import load_profile
    from predictors import create_predictor
    from predictors.io import latency_predictor

    df = pd.read_csv(DATA)
    archs = [
        space.from_ofa({"ks": json.loads(k), "e": json.loads(e), "d": json.loads(d), "r": int(r)})
        for k, e, d, r in zip(df["ks"], df["e"], df["d"], df["r"])
    ]
    mlp = create_predictor("mlp", space=space, epochs=100, seed=0)
    mlp.fit(archs, df["imagenet_top1"].to_numpy())
    return mlp, latency_predictor(load_profile(PROFILE), space)


def check_lut(space: Any, lut: Any, n: int = 2000) -> None:
    """Compile ``lut``'s vectorised path and check it equals its per-layer loop on ``n`` nets."""
    from predictors.lookup_table import LookupTablePredictor

    if not isinstance(lut, LookupTablePredictor):
        raise TypeError(f"{PROFILE}: expected a 'lut' latency model, got {type(lut).__name__}")
    if not lut.vectorised:
        raise ValueError(f"{space.name}: the lookup table has no vectorised layout")
    archs = space.sample_many(n, np.random.default_rng(7))
    got = lut.predict_indices(space.indices(archs, fill_inactive=False))
    want = lut.predict_features(lut.layer_sum(archs))
    if not np.array_equal(got, want):
        worst = float(np.abs(got - want).max())
        raise ValueError(f"vectorised lookup table differs from its loop by up to {worst} ms")


class ArrayPredictors:
    """Both predictors on index rows: one accuracy forward + one table gather per batch.

    ``acc_s``/``lat_s``/``calls``/``rows`` accumulate the time spent in the predictors, so the
    bench can split a search's wall time into predictor time and everything else.
    """

    def __init__(self, space: Any, acc: Any, lat: Any) -> None:
        self.space, self.acc, self.lat = space, acc, lat
        self.reset()

    def reset(self) -> None:
        self.acc_s = self.lat_s = 0.0
        self.calls = self.rows = 0

    def evaluate_indices(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        with torch.no_grad():
            acc = self.acc.predict_indices(rows)
        t1 = time.perf_counter()
        lat = self.lat.predict_indices(rows)
        self.acc_s += t1 - t0
        self.lat_s += time.perf_counter() - t1
        self.calls += 1
        self.rows += len(rows)
        return {"accuracy": np.asarray(acc, float), "latency_ms": lat}

    def evaluate(self, archs: list[Any]) -> list[dict[str, float]]:
        cols = self.evaluate_indices(self.space.indices(archs, fill_inactive=False))
        return [{k: float(v[i]) for k, v in cols.items()} for i in range(len(archs))]


def load_ofa_finder() -> tuple[Any, Any]:
    """OFA's EvolutionFinder and MobileNetArchEncoder, unmodified, from the reference env."""
    if OFA_SITE is None:
        raise FileNotFoundError("bench/.ofa-env is missing: run bench/ofa_reference/setup.sh")
    # arch_encoder.py imports ResNets (for its ResNet encoder only); give it a placeholder
    for name in ("ofa", "ofa.imagenet_classification", "ofa.imagenet_classification.networks"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["ofa.imagenet_classification.networks"].ResNets = None  # type: ignore[attr-defined]

    def load(rel: str, name: str) -> Any:
        spec = importlib.util.spec_from_file_location(name, OFA_SITE / rel)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module

    evo = load("ofa/nas/search_algorithm/evolution.py", "ofa_evolution")
    enc = load("ofa/nas/accuracy_predictor/arch_encoder.py", "ofa_arch_encoder")
    return evo.EvolutionFinder, enc.MobileNetArchEncoder


class OFAAccuracy:
    """Our MLP behind OFA's accuracy-predictor interface."""

    def __init__(self, space: Any, mlp: Any, encoder: Any) -> None:
        self.space, self.mlp, self.arch_encoder = space, mlp, encoder
        self.calls = 0

    def predict_acc(self, samples: list[dict[str, Any]]) -> torch.Tensor:
        self.calls += len(samples)
        archs = [self.space.from_ofa(s) for s in samples]
        with torch.no_grad():
            return torch.as_tensor(self.mlp.predict(archs))


class OFAEfficiency:
    """The same table latency behind OFA's efficiency-predictor interface (one sample a call)."""

    def __init__(self, space: Any, lat: Any) -> None:
        self.space, self.lat = space, lat
        self.calls = 0

    def get_efficiency(self, sample: dict[str, Any]) -> float:
        self.calls += 1
        row = self.space.indices([self.space.from_ofa(sample)], fill_inactive=False)
        return float(self.lat.predict_indices(row)[0])


def main() -> None:
    from nas.registry import create_space
    from nas.search import search

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generations", type=int, default=500)
    parser.add_argument("--skip-ofa", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads of the rows that use both cores"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = create_space("ofa_mbv3_w1.0")
    t0 = time.perf_counter()
    mlp, lat = fit_predictors(space)
    t1 = time.perf_counter()
    check_lut(space, lat)
    print(
        f"predictors fitted in {t1 - t0:.1f} s; lookup table compiled and checked in "
        f"{time.perf_counter() - t1:.1f} s"
    )
    fast = ArrayPredictors(space, mlp, lat)
    sample = space.sample_many(2000, np.random.default_rng(1))
    limit = float(
        np.median(fast.evaluate_indices(space.indices(sample, fill_inactive=False))["latency_ms"])
    )
    pop, gens = 100, args.generations
    both = args.threads
    rows = []
    evo, mo = {"accuracy": "max"}, {"accuracy": "max", "latency_ms": "min"}
    configs = [  # (searcher, objectives, population, generations, torch threads)
        ("evolution", evo, pop, gens, 1),
        ("evolution", evo, pop, gens, both),  # the MLP's matmuls split over both cores
        ("nsga2", mo, pop, gens, 1),
        ("nsga2", mo, pop, gens, both),
        # the same number of candidates in bigger generations: the predictors' batch cost
        # amortises (this is the throughput configuration)
        ("evolution", evo, 10 * pop, gens // 10, 1),
        ("evolution", evo, 10 * pop, gens // 10, both),
        ("nsga2", mo, 10 * pop, gens // 10, 1),
        ("nsga2", mo, 10 * pop, gens // 10, both),
    ]
    from threadpoolctl import threadpool_limits

    for name, objectives, p, g, threads in configs:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads):
            fast.reset()
            t = time.perf_counter()
            res = search(
                space,
                fast,
                objectives=objectives,
                constraints={"latency_ms": limit},
                searcher=name,
                budget=p * (g + 1),
                seed=0,
                batch_size=p,
                options={"population": p},
            )
            wall = time.perf_counter() - t
        torch.set_num_threads(1)
        t = time.perf_counter()
        n_front = len(res.pareto)  # builds keys and JSON for the front only
        post = time.perf_counter() - t
        rows.append(
            {
                "search": f"ours: {name} pop {p} x {g} ({threads} thr)",
                "candidates": len(res),
                "seconds": wall,
                "cand/s": len(res) / wall,
                "predictor_s": fast.acc_s + fast.lat_s,
                "latency_s": fast.lat_s,
                "loop_s": wall - fast.acc_s - fast.lat_s,
                "loop_cand/s": len(res) / max(wall - fast.acc_s - fast.lat_s, 1e-9),
                "best_acc": res.best_metrics()["accuracy"],
                "front": n_front,
                "front_table_s": post,
            }
        )
    if not args.skip_ofa:
        finder_cls, encoder_cls = load_ofa_finder()
        encoder = encoder_cls(
            image_size_list=list(range(128, 225, 4)),
            ks_list=[3, 5, 7],
            expand_list=[3, 4, 6],
            depth_list=[2, 3, 4],
        )
        acc, eff = OFAAccuracy(space, mlp, encoder), OFAEfficiency(space, lat)
        finder = finder_cls(eff, acc, population_size=pop, max_time_budget=gens)
        import random

        random.seed(0)
        np.random.seed(0)
        t = time.perf_counter()
        _, best = finder.run_evolution_search(limit, verbose=False)
        wall = time.perf_counter() - t
        rows.append(
            {
                "search": "OFA EvolutionFinder",
                "candidates": acc.calls,
                "seconds": wall,
                "cand/s": acc.calls / wall,
                "best_acc": best[0],
                "front": None,
                "front_table_s": None,
                "latency_calls": eff.calls,
            }
        )
    df = pd.DataFrame(rows)
    if not args.skip_ofa:
        ref = df.iloc[-1]
        df["speedup_vs_ofa"] = ref["seconds"] / df["seconds"] * df["candidates"] / ref["candidates"]
        df["acc_minus_ofa"] = df["best_acc"] - ref["best_acc"]
    pd.set_option("display.width", 200)
    print(
        f"\nofa_mbv3_w1.0, latency_ms <= {limit:.3f} ({PROFILE} median), population {pop}, "
        f"{gens} generations; OFA on 1 torch thread, ours as each row says; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    print(df.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
