"""NAS-Bench-201 predictors on real measurements: latency on 8 devices, CIFAR-10 accuracy.

Prints, side by side (scored on the archs not trained on, mean over seeds):
  1. per device: the ceiling (Kendall τ of additive per-edge-op / pairwise models fitted on all
     15,625), plain Ridge on one-hot ops with 100 archs, ours (``huber`` on ``compact``) with
     100 archs, the gap to the ceiling (goal: <= 0.02);
  2. a new device from 20 archs, leave-one-device-out: plain Ridge on 20 vs ``transfer`` with the
     other 7 shipped profiles as prior (goal: within 0.05 of the ceiling);
  3. accuracy from 100 archs: GBM on one-hot vs ``ensemble`` on ``features`` (goal: τ >= 0.72).

Run: python bench/bench_predictors_nb201.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LinearRegression, Ridge

import nas
from predictors import create_predictor, kendall_tau
from predictors.io import latency_predictor

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nas_bench_201"


def ceilings(Xo: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    add = kendall_tau(y, LinearRegression().fit(Xo, y).predict(Xo))
    blocks = [Xo[:, i * 5 : (i + 1) * 5] for i in range(6)]
    pairs = [
        (a[:, :, None] * b[:, None, :]).reshape(len(Xo), -1) for a, b in combinations(blocks, 2)
    ]
    P = np.hstack([Xo, *pairs])
    pair = kendall_tau(y, Ridge(alpha=1e-3).fit(P, y).predict(P))
    return add, pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    frame = pd.read_csv(DATA / "nb201_cifar10_latency.csv")
    space = nas.create_space("nb201")
    archs = [space.parse(a) for a in frame["arch"]]  # type: ignore[attr-defined]
    devices = [c.removeprefix("latency_ms_") for c in frame.columns if c.startswith("latency_ms_")]
    Xo = space.encode(archs)
    n = len(archs)
    splits: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for k in (20, 100):
        splits[k] = []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            train = rng.choice(n, k, replace=False)
            splits[k].append((train, np.setdiff1d(np.arange(n), train)))

    def run(name: str, kind: str, k: int, y: np.ndarray, **kw: object) -> list[float]:
        p = create_predictor(kind, space=space, **kw)
        X = p.encode(archs)
        out = []
        for train, test in splits[k]:
            q = create_predictor(kind, space=space, **kw).fit_features(X[train], y[train])
            out.append(kendall_tau(y[test], q.predict_features(X[test])))
        return out

    t0 = time.perf_counter()
    print("1. latency, 100 training archs (Kendall tau on the other 15,525; mean of seeds)")
    print(f"{'device':<16}{'ceil add':>9}{'ceil pair':>10}{'ceiling':>8}{'ridge1hot':>10}"
          f"{'ours':>7}{'ours min':>9}{'gap':>7}  goal gap<=0.02")
    ceiling_of = {}
    for dev in devices:
        y = frame[f"latency_ms_{dev}"].to_numpy(float)
        add, pair = ceilings(Xo, y)
        ceiling = max(add, pair)
        ceiling_of[dev] = ceiling
        base = run("ridge", "ridge", 100, y)
        ours = run("ours", "huber", 100, y, encoder="compact")
        gap = ceiling - np.mean(ours)
        print(f"{dev:<16}{add:>9.3f}{pair:>10.3f}{ceiling:>8.3f}{np.mean(base):>10.3f}"
              f"{np.mean(ours):>7.3f}{np.min(ours):>9.3f}{gap:>7.3f}  "
              f"{'ok' if gap <= 0.02 else 'MISS'}")

    print("\n2. new device from 20 archs, other 7 devices' shipped profiles as prior "
          "(leave-one-device-out)")
    print(f"{'device':<16}{'ceiling':>8}{'ridge20':>8}{'own20':>7}{'transfer':>9}{'min':>7}"
          f"{'gap':>7}  picks                 goal gap<=0.05")
    priors_all = {d: latency_predictor(nas.load_profile(f"nb201_{d}"), space) for d in devices}
    for dev in devices:
        y = frame[f"latency_ms_{dev}"].to_numpy(float)
        priors = [priors_all[d] for d in devices if d != dev]
        base = run("ridge", "ridge", 20, y)
        own = run("own", "huber", 20, y, encoder="compact")
        probe = create_predictor("transfer", space=space, priors=priors)
        X = probe.encode(archs)
        taus, picks = [], []
        for train, test in splits[20]:
            q = create_predictor("transfer", space=space, priors=priors)
            q.fit_features(X[train], y[train])
            taus.append(kendall_tau(y[test], q.predict_features(X[test])))
            picks.append(str(getattr(q, "choice", "")))
        gap = ceiling_of[dev] - np.mean(taus)
        pick_text = ",".join(f"{c}x{picks.count(c)}" for c in sorted(set(picks)))
        print(f"{dev:<16}{ceiling_of[dev]:>8.3f}{np.mean(base):>8.3f}{np.mean(own):>7.3f}"
              f"{np.mean(taus):>9.3f}{np.min(taus):>7.3f}{gap:>7.3f}  {pick_text:<21} "
              f"{'ok' if gap <= 0.05 else 'MISS'}")

    print("\n3. CIFAR-10 accuracy, 100 training archs")
    y = frame["cifar10_valid_acc"].to_numpy(float)
    rows = [
        ("gbm one-hot (baseline)", run("gbm", "gbm", 100, y)),
        ("svr features", run("svr", "svr", 100, y, encoder="features")),
        ("gbm features", run("gbm", "gbm", 100, y, encoder="features")),
        ("ensemble features (ours)", run("ens", "ensemble", 100, y)),
    ]
    print(f"{'predictor':<28}{'tau':>7}{'min':>7}{'vs baseline':>12}")
    for name, taus in rows:
        print(f"{name:<28}{np.mean(taus):>7.3f}{np.min(taus):>7.3f}"
              f"{np.mean(taus) / np.mean(rows[0][1]):>11.2f}x")
    print(f"goal tau >= 0.72: {'ok' if np.mean(rows[-1][1]) >= 0.72 else 'MISS'}")
    elapsed = time.perf_counter() - t0
    print(f"\n({args.seeds} seeds, {elapsed:.0f} s; machine shared with other jobs)")


if __name__ == "__main__":
    main()
