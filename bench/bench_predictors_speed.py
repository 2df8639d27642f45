"""Prediction throughput (archs/s, encoding included) of the fast predictors on 2 cores.

Fits each predictor on 1,000 random archs, then times ``predict`` on 100,000 (best of 3),
split into encoding and model time. Goal: >= 100,000 archs/s for the MLP and linear models.

Run: python bench/bench_predictors_speed.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

import nas
from predictors import create_predictor


def best(fn: object, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    print(f"{'space':<15}{'predictor':<26}{'encode/s':>11}{'model/s':>12}{'total/s':>11}  goal")
    for space_name in ("ofa_mbv3_w1.0", "nb201"):
        space = nas.create_space(space_name)
        archs = space.sample_many(100_000, rng)
        train = archs[:1000]
        y = rng.random(1000)
        for kind, kw in (
            ("ridge", {}),
            ("huber", {"encoder": "compact"}),
            ("mlp", {"epochs": 5}),  # OFA's 400-400-400
            ("mlp", {"epochs": 5, "encoder": "features"}),
            ("mlp", {"epochs": 5, "encoder": "features", "hidden": (128, 128, 128)}),
        ):
            p = create_predictor(kind, space=space, **kw).fit(train, y)
            t_enc = best(lambda p=p, a=archs: p.encode(a))
            X = p.encode(archs)
            t_model = best(lambda p=p, X=X: p.predict_features(X))
            t_total = best(lambda p=p, a=archs: p.predict(a))
            width = "x".join(str(h) for h in getattr(p, "hidden", ()))
            label = f"{kind}/{p.encoder}" + (f"/{width}" if width else "")
            n = len(archs)
            print(f"{space_name:<15}{label:<26}{n / t_enc:>11,.0f}{n / t_model:>12,.0f}"
                  f"{n / t_total:>11,.0f}  {'ok' if n / t_total >= 100_000 else 'MISS'}")
    print("(2 cores shared with other helpers' jobs)")


if __name__ == "__main__":
    main()
