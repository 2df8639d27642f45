"""OFA-MobileNetV3 predictors on real measurements: ImageNet accuracy and GPU latency.

Prints, side by side:
  1. accuracy (DyNAS-T, 1,094 subnets), 5-fold cross-validation: Kendall τ and RMSE of plain
     Ridge / SVR on one-hot vs ours (OFA's MLP on ``features``); goal τ >= 0.95, RMSE <= 0.12;
  2. extrapolation: trained on the lower/upper half by MACs, scored on the other half;
  3. GPU latency (HELP, 5,000 subnets, 6 device settings): GBM trained on 4,000 (reference) vs
     ours (``huber`` on ``compact``) trained on 500, both scored on the same held-out 1,000.

Run: python bench/bench_predictors_ofa.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import nas
from predictors import create_predictor, kendall_tau, rmse

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ofa_mobilenet_v3"


def read(space: nas.SearchSpace, name: str) -> tuple[list[nas.ArchConfig], pd.DataFrame]:
    frame = pd.read_csv(DATA / name)
    archs = [
        space.from_ofa({"ks": json.loads(k), "e": json.loads(e), "d": json.loads(d), "r": int(r)})
        for k, e, d, r in zip(frame["ks"], frame["e"], frame["d"], frame["r"])
    ]
    return archs, frame


def main() -> None:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    space = nas.create_space("ofa_mbv3_w1.0")
    archs, frame = read(space, "dynast_imagenet_subnets.csv")
    y = frame["imagenet_top1"].to_numpy(float)
    folds = np.random.default_rng(0).permutation(len(y)) % 5
    candidates = [
        ("ridge one-hot (baseline)", "ridge", {}),
        ("svr one-hot", "svr", {}),
        ("svr features", "svr", {"encoder": "features"}),
        ("mlp one-hot (OFA recipe)", "mlp", {}),
        ("mlp features (ours)", "mlp", {"encoder": "features"}),
    ]
    print("1. ImageNet top-1, 5-fold CV (1,094 DyNAS-T subnets)")
    print(f"{'predictor':<28}{'tau':>7}{'rmse':>7}{'fit s':>7}   goal tau>=0.95, rmse<=0.12")
    for label, kind, kw in candidates:
        X = create_predictor(kind, space=space, **kw).encode(archs)
        taus, errs, start = [], [], time.perf_counter()
        for f in range(5):
            tr, te = folds != f, folds == f
            p = create_predictor(kind, space=space, **kw).fit_features(X[tr], y[tr])
            pred = p.predict_features(X[te])
            taus.append(kendall_tau(y[te], pred))
            errs.append(rmse(y[te], pred))
        ok = np.mean(taus) >= 0.95 and np.mean(errs) <= 0.12
        print(f"{label:<28}{np.mean(taus):>7.3f}{np.mean(errs):>7.3f}"
              f"{(time.perf_counter() - start) / 5:>7.1f}   {'ok' if ok else '-'}")

    print("\n2. extrapolation by MACs (train on one half, score on the other)")
    macs = frame["macs"].to_numpy(float)
    low = macs <= np.median(macs)
    print(f"{'predictor':<28}{'low->high tau':>14}{'rmse':>7}{'high->low tau':>14}{'rmse':>7}")
    for label, kind, kw in (candidates[0], candidates[2], candidates[4]):
        X = create_predictor(kind, space=space, **kw).encode(archs)
        cells = []
        for tr in (low, ~low):
            p = create_predictor(kind, space=space, **kw).fit_features(X[tr], y[tr])
            pred = p.predict_features(X[~tr])
            cells += [kendall_tau(y[~tr], pred), rmse(y[~tr], pred)]
        print(f"{label:<28}{cells[0]:>14.3f}{cells[1]:>7.3f}{cells[2]:>14.3f}{cells[3]:>7.3f}")

    print("\n3. GPU latency (HELP): GBM on 4,000 vs ours on 500, scored on the same 1,000")
    archs, frame = read(space, "help_gpu_latency.csv")
    order = np.random.default_rng(0).permutation(len(archs))
    test, train4k, train500 = order[:1000], order[1000:], order[1000:1500]
    gbm = create_predictor("gbm", space=space, encoder="onehot")
    Xg = gbm.encode(archs)
    ours = create_predictor("huber", space=space, encoder="compact")
    Xc = ours.encode(archs)
    print(f"{'device':<16}{'gbm@4000':>9}{'ours@500':>9}{'ratio':>7}{'ours mape%':>11}")
    for col in [c for c in frame.columns if c.startswith("latency_ms_")]:
        yl = frame[col].to_numpy(float)
        g = create_predictor("gbm", space=space).fit_features(Xg[train4k], yl[train4k])
        tau_g = kendall_tau(yl[test], g.predict_features(Xg[test]))
        o = create_predictor("huber", space=space, encoder="compact")
        o.fit_features(Xc[train500], yl[train500])
        pred = o.predict_features(Xc[test])
        tau_o = kendall_tau(yl[test], pred)
        mape = float(np.mean(np.abs(pred - yl[test]) / yl[test]) * 100)
        print(f"{col.removeprefix('latency_ms_'):<16}{tau_g:>9.3f}{tau_o:>9.3f}"
              f"{tau_o / tau_g:>7.2f}{mape:>11.1f}")
    print(f"\n({time.perf_counter() - t0:.0f} s; machine shared with other jobs)")


if __name__ == "__main__":
    main()
