"""Prediction throughput (archs/s, encoding included) of the fast predictors on 2 cores.

Fits each predictor on 1,000 random archs, then times prediction for 100,000 (best of 3):

* ``encode/s``: ``p.encode(archs)``, ArchConfig objects to the feature matrix;
* ``model/s``: ``p.predict_features(X)`` on that matrix (the model alone);
* ``predict/s``: ``p.predict(archs)`` from ArchConfig objects, end to end;
* ``indices/s``: ``p.predict_indices(idx)`` from an index matrix (what searchers that hold
  index rows call; it skips ArchConfig objects and the one-hot matrix).

The ``lut`` row is the latency lookup table of the hardware profile ``ofa_mbv3_local_cpu_t1``
(per-layer milliseconds with its fitted correction; no fit here), on its vectorised slot path;
it is also checked equal to its per-layer loop, whose rate ``loop/s`` it prints after the row.

Goal: ``predict/s`` >= 100,000 for the MLP (OFA's 400-400-400 on one-hot) and the linear
models. Both paths are checked to give the same predictions. The machine load is printed:
timings on a shared machine are lower bounds.

Run: python bench/bench_predictors_speed.py [--n 100000] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import nas
from predictors import create_predictor
from predictors.io import latency_predictor
from predictors.lookup_table import LookupTablePredictor

GOAL = 100_000
LUT_PROFILE = "ofa_mbv3_local_cpu_t1"


def best(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` wall-clock timings of ``fn()``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="archs to predict")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    load = os.getloadavg()[0]
    print(f"{args.n:,} archs, torch threads {torch.get_num_threads()}, load {load:.2f} at start")
    print(
        f"{'space':<15}{'predictor':<26}{'encode/s':>11}{'model/s':>12}{'predict/s':>12}"
        f"{'indices/s':>12}  goal"
    )
    misses = []
    for space_name in ("ofa_mbv3_w1.0", "nb201"):
        space = nas.create_space(space_name)
        archs = space.sample_many(args.n, rng)
        idx = space.indices(archs)
        train = archs[:1000]
        y = rng.random(1000)
        models: list[tuple[str, dict[str, Any]]] = [
            ("ridge", {}),
            ("huber", {"encoder": "compact"}),
            ("mlp", {"epochs": 5}),  # OFA's 400-400-400
            ("mlp", {"epochs": 5, "encoder": "features"}),
            ("mlp", {"epochs": 5, "encoder": "features", "hidden": (128, 128, 128)}),
        ]
        if space_name == "ofa_mbv3_w1.0":
            models.append(("lut", {}))
        for kind, kw in models:
            loop_s = None
            if kind == "lut":  # the profile's table and correction, as searches get them
                p = latency_predictor(nas.load_profile(LUT_PROFILE), space)
                if not isinstance(p, LookupTablePredictor) or not p.vectorised:
                    raise SystemExit(f"{LUT_PROFILE}: no vectorised lookup table for {space_name}")
                loop = p.predict_features(p.layer_sum(archs[:1000]))
                if not np.array_equal(loop, p.predict_indices(idx[:1000])):
                    raise SystemExit("lut: vectorised sums differ from the per-layer loop")
                loop_s = best(lambda p=p, a=archs[:2000]: p.layer_sum(a), repeats=1) / 2000
            else:
                p = create_predictor(kind, space=space, **kw).fit(train, y)
            same = np.array_equal(p.predict(archs[:1000]), p.predict_indices(idx[:1000]))
            if not same:
                raise SystemExit(f"{kind} {kw}: predict and predict_indices disagree")
            t_enc = best(lambda p=p, a=archs: p.encode(a))
            X = p.encode(archs)
            t_model = best(lambda p=p, X=X: p.predict_features(X))
            del X
            t_total = best(lambda p=p, a=archs: p.predict(a))
            t_idx = best(lambda p=p, i=idx: p.predict_indices(i))
            width = "x".join(str(h) for h in getattr(p, "hidden", ()))
            label = f"{kind}/{p.encoder}" + (f"/{width}" if width else "")
            if kind == "lut":
                label = "lut/local_cpu_t1"
            n = len(archs)
            goal_kind = kind in ("ridge", "huber") or (kind == "mlp" and p.encoder == "onehot")
            ok = n / t_total >= GOAL
            if goal_kind and not ok:
                misses.append(f"{space_name} {label}")
            verdict = ("ok" if ok else "MISS") if goal_kind else ("(ok)" if ok else "(-)")
            print(
                f"{space_name:<15}{label:<26}{n / t_enc:>11,.0f}{n / t_model:>12,.0f}"
                f"{n / t_total:>12,.0f}{n / t_idx:>12,.0f}  {verdict}"
                + (f"  (per-layer loop: {1 / loop_s:,.0f}/s)" if loop_s else ""),
                flush=True,
            )
    print(f"load {os.getloadavg()[0]:.2f} at end (2 cores; above ~1 the numbers are lower bounds)")
    print("goal (predict/s >= 100,000 for ridge, huber and mlp/onehot):",
          "met" if not misses else "missed by " + ", ".join(misses))


if __name__ == "__main__":
    main()
