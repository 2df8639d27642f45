"""Device onboarding on devices nobody tuned for (issue 16): CV model choice, prior-aware transfer.

Prints, side by side (Kendall τ on the architectures not measured, mean over seeds):
  1. leave-one-device-out on the 8 NAS-Bench-201 devices of ``../shared/data``: the import
     (``fit_latency_model``, model chosen by 5-fold CV) at 100 cells vs the best single
     candidate chosen in hindsight (goal: within 0.02), and the transfer at 20 cells (prior =
     the 7 other shipped profiles) vs our own no-prior fit at 20 (the import at 20; goal:
     never more than 0.02 below) and vs the ceiling (additive / pairwise per-edge-op models
     fitted on all 15,625; goal: within 0.05 on average);
  2. the same, leave-one-series-out, on the 6 OFA-MobileNetV3 GPU series (HELP, 5,000
     subnets): trained on rows of 4,000, scored on the other 1,000; ceiling = the best of a
     few models trained on all 4,000;
  3. unlike devices: NAS-Bench-201 Xeon 4210R latencies whose costs are re-weighted per op
     (or per edge and op) with growing strength until the device's τ against every one of
     the 8 is <= 0.5; before (the old fixed import, the old transfer rule, the prior
     trusted) and after, with what the transfer saw (fall-backs, priors used);
  4. how much to measure: the advice at 20 cells against what 20 + its suggestion gave;
     and 30 more cells chosen by ``suggest_archs`` vs 30 random;
  5. timings on this machine: import at 100 and 1,000 rows, transfer at 20 rows.

Run: python bench/bench_device_onboarding.py [--seeds 5] [--sections 1,2,3,4,5]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from sklearn.linear_model import HuberRegressor, LinearRegression, Ridge

import nas
from predictors import kendall_tau
from predictors.io import latency_predictor, predictor_from_json
from predictors.model_selection import CANDIDATES, Candidate
from predictors.suggest import suggest_archs
from predictors.table_import import fit_latency_model
from predictors.transfer import TransferPredictor

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@dataclass
class Bench:
    """One space's measured table: architectures, index rows, latency per device."""

    space: nas.SearchSpace
    archs: list[nas.ArchConfig]
    idx: np.ndarray
    latency: dict[str, np.ndarray]
    profile: Callable[[str], str]
    pool: np.ndarray  # rows training sets are drawn from
    test: np.ndarray | None  # fixed scoring rows (None: every row not trained on)

    def split(self, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``k`` of a seeded shuffle of the pool (a larger ``k`` keeps them)."""
        train = np.random.default_rng(seed).permutation(self.pool)[:k]
        rest = self.test if self.test is not None else np.setdiff1d(self.pool, train)
        return train, rest

    def rows(self, rows: np.ndarray) -> list[nas.ArchConfig]:
        return [self.archs[i] for i in rows]

    def priors(self, held_out: str) -> tuple[list[Any], list[str]]:
        names = [d for d in self.latency if d != held_out and not d.startswith("unlike")]
        return [latency_predictor(nas.load_profile(self.profile(d)), self.space)
                for d in names], names


def load_nb201() -> Bench:
    frame = pd.read_csv(DATA / "nas_bench_201" / "nb201_cifar10_latency.csv")
    space = nas.create_space("nb201")
    archs = [space.parse(a) for a in frame["arch"]]  # type: ignore[attr-defined]
    lat = {c.removeprefix("latency_ms_"): frame[c].to_numpy(float)
           for c in frame.columns if c.startswith("latency_ms_")}
    return Bench(space, archs, space.indices(archs), lat, lambda d: f"nb201_{d}",
                 np.arange(len(archs)), None)


def load_ofa() -> Bench:
    frame = pd.read_csv(DATA / "ofa_mobilenet_v3" / "help_gpu_latency.csv")
    space = nas.create_space("ofa_mbv3_w1.0")
    archs = [space.from_ofa({"ks": json.loads(k), "e": json.loads(e), "d": json.loads(d),
                             "r": int(r)})
             for k, e, d, r in zip(frame["ks"], frame["e"], frame["d"], frame["r"])]
    lat = {c.removeprefix("latency_ms_"): frame[c].to_numpy(float)
           for c in frame.columns if c.startswith("latency_ms_")}
    order = np.random.default_rng(0).permutation(len(archs))
    return Bench(space, archs, space.indices(archs), lat, lambda d: f"ofa_mbv3_{d}",
                 np.sort(order[1000:]), np.sort(order[:1000]))


# ---------------------------------------------------------------- fits scored
def tau_of_model(b: Bench, model: Any, rest: np.ndarray, y: np.ndarray) -> float:
    p = predictor_from_json(dict(model.predictor), b.space)
    return kendall_tau(y[rest], p.predict_indices(b.idx[rest]))


def candidate_taus(b: Bench, train: np.ndarray, rest: np.ndarray, y: np.ndarray,
                   X: dict[str, np.ndarray]) -> dict[str, float]:
    out = {}
    for c in CANDIDATES:
        p = c.make(b.space).fit_features(X[c.encoder][train], y[train])
        out[c.label] = kendall_tau(y[rest], p.predict_features(X[c.encoder][rest]))
    return out


def encodings(b: Bench) -> dict[str, np.ndarray]:
    return {c.encoder: c.make(b.space).encode_indices(b.idx) for c in CANDIDATES}


def legacy_transfer(P: np.ndarray, F: np.ndarray, y: np.ndarray) -> Callable[..., np.ndarray]:
    """The transfer rule before issue 16: prior / own (Huber on compact) / both (joint ridge),
    chosen by the median absolute leave-one-out error."""
    def fit(kind: str, A: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
        if kind == "prior":
            w, _ = nnls(np.hstack([A, np.ones((len(A), 1)), -np.ones((len(A), 1))]), t)
            return w[:-2], float(w[-2] - w[-1])
        if kind == "own":
            m, s = A.mean(0), np.where(A.std(0) > 0, A.std(0), 1.0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h = HuberRegressor(alpha=1e-2, max_iter=5000).fit((A - m) / s, t)
            return h.coef_ / s, float(h.intercept_ - (h.coef_ / s) @ m)
        r = Ridge(alpha=1.0).fit(A, t)
        return r.coef_, float(r.intercept_)

    designs = {"prior": lambda Pm, Fm: Pm, "own": lambda Pm, Fm: Fm,
               "both": lambda Pm, Fm: np.hstack([Pm, Fm])}
    errors = {}
    for kind, design in designs.items():
        A = design(P, F)
        err = [abs(A[i] @ c + b - y[i]) for i in range(len(y))
               for c, b in [fit(kind, np.delete(A, i, 0), np.delete(y, i))]]
        errors[kind] = float(np.median(err))
    kind = min(errors, key=errors.__getitem__)
    coef, b = fit(kind, designs[kind](P, F), y)
    return lambda Pm, Fm: designs[kind](Pm, Fm) @ coef + b


def transfer_features(b: Bench, held_out: str) -> tuple[np.ndarray, list[str], Any]:
    priors, names = b.priors(held_out)
    probe = TransferPredictor(b.space, priors=priors, prior_names=names)
    return probe.encode_indices(b.idx), names, priors


# ---------------------------------------------------------------- 1, 2: leave one device out
def nb201_ceiling(b: Bench, y: np.ndarray) -> float:
    """τ of additive and pairwise per-edge-op models fitted on all 15,625 (in-sample)."""
    Xo = b.space.encode_indices(b.idx, "onehot")
    add = kendall_tau(y, LinearRegression().fit(Xo, y).predict(Xo))
    blocks = [Xo[:, i * 5 : (i + 1) * 5] for i in range(6)]
    pairs = [(u[:, :, None] * v[:, None, :]).reshape(len(Xo), -1)
             for u, v in combinations(blocks, 2)]
    P = np.hstack([Xo, *pairs])
    return max(add, kendall_tau(y, Ridge(alpha=1e-3).fit(P, y).predict(P)))


def ofa_ceiling(b: Bench, y: np.ndarray, X: dict[str, np.ndarray]) -> float:
    """The best of a few models trained on all 4,000 pool rows, on the 1,000 test rows."""
    assert b.test is not None
    best = -1.0
    for c in (Candidate(predictor="huber", encoder="compact"),
              Candidate(predictor="svr", encoder="compact"),
              Candidate(predictor="ridge", encoder="features"),
              Candidate(predictor="gbm", encoder="compact")):
        p = c.make(b.space).fit_features(X[c.encoder][b.pool], y[b.pool])
        best = max(best, kendall_tau(y[b.test], p.predict_features(X[c.encoder][b.test])))
    return best


def evaluate_device(b: Bench, dev: str, seeds: int, X: dict[str, np.ndarray]) -> dict[str, Any]:
    """Import at 100 (and every candidate), own fit and transfer at 20, over ``seeds``."""
    y = b.latency[dev]
    Xt, names, priors = transfer_features(b, dev)
    k = len(priors)
    out: dict[str, list[Any]] = {key: [] for key in (
        "import", "import_pick", "own20", "huber20", "transfer", "trusted", "legacy",
        "fallback", "used", "choice")}
    hind: dict[str, list[float]] = {c.label: [] for c in CANDIDATES}
    for seed in range(seeds):
        train, rest = b.split(100, seed)
        model = fit_latency_model(b.space, b.rows(train), y[train])
        out["import"].append(tau_of_model(b, model, rest, y))
        out["import_pick"].append(model.selection["chosen"])
        for label, tau in candidate_taus(b, train, rest, y, X).items():
            hind[label].append(tau)
        train, rest = b.split(20, seed)
        out["own20"].append(
            tau_of_model(b, fit_latency_model(b.space, b.rows(train), y[train]), rest, y))
        huber = CANDIDATES[0].make(b.space).fit_features(X["compact"][train], y[train])
        out["huber20"].append(kendall_tau(y[rest], huber.predict_features(X["compact"][rest])))
        t = TransferPredictor(b.space, priors=priors, prior_names=names)
        t.fit_features(Xt[train], y[train])
        out["transfer"].append(kendall_tau(y[rest], t.predict_features(Xt[rest])))
        out["fallback"].append(bool(t.evidence["fallback"]))
        out["used"].append(len(t.used_priors))
        out["choice"].append(t.evidence["chosen"])
        trusted = TransferPredictor(b.space, priors=priors, prior_names=names, choice="prior")
        trusted.fit_features(Xt[train], y[train])
        out["trusted"].append(kendall_tau(y[rest], trusted.predict_features(Xt[rest])))
        old = legacy_transfer(Xt[train][:, :k], X["compact"][train], y[train])
        out["legacy"].append(kendall_tau(y[rest], old(Xt[rest][:, :k], X["compact"][rest])))
    best = max(hind, key=lambda c: float(np.mean(hind[c])))
    summary: dict[str, Any] = {key: float(np.mean(v)) for key, v in out.items()
                               if key not in ("import_pick", "choice", "fallback")}
    summary.update(best=best, best_tau=float(np.mean(hind[best])),
                   old_import=float(np.mean(hind[CANDIDATES[0].label])),
                   min_transfer=float(np.min(out["transfer"])),
                   fallbacks=int(np.sum(out["fallback"])),
                   picks=_counts(out["import_pick"]), choices=_counts(out["choice"]))
    return summary


def _counts(items: list[str]) -> str:
    return ",".join(f"{c}x{items.count(c)}" for c in sorted(set(items)))


def leave_one_out(b: Bench, seeds: int, ceiling: Callable[[np.ndarray], float],
                  what: str) -> None:
    X = encodings(b)
    print(f"{'held out':<15}{'ceil':>6} | {'imp100':>7}{'hindsight':>10}{'gap':>6}"
          f"{'old':>6} | {'own20':>6}{'trans20':>8}{'min':>6}{'-own':>7}{'gap':>7}"
          f"{'legacy':>7}  import picks / transfer picks")
    gaps, imp_gaps, worst = [], [], []
    for dev in [d for d in b.latency if not d.startswith("unlike")]:
        r = evaluate_device(b, dev, seeds, X)
        ceil = ceiling(b.latency[dev])
        gap_t, gap_i = ceil - r["transfer"], r["best_tau"] - r["import"]
        gaps.append(gap_t)
        imp_gaps.append(gap_i)
        worst.append(r["transfer"] - r["own20"])
        print(f"{dev:<15}{ceil:>6.3f} | {r['import']:>7.3f}{r['best_tau']:>10.3f}{gap_i:>6.3f}"
              f"{r['old_import']:>6.3f} | {r['own20']:>6.3f}{r['transfer']:>8.3f}"
              f"{r['min_transfer']:>6.3f}{r['transfer'] - r['own20']:>+7.3f}{gap_t:>+7.3f}"
              f"{r['legacy']:>7.3f}  {r['picks']} / {r['choices']}", flush=True)
    print(f"{what}: import gap to the hindsight best: max {max(imp_gaps):.3f} (goal <= 0.02: "
          f"{'ok' if max(imp_gaps) <= 0.02 else 'MISS'}); transfer - own20: worst "
          f"{min(worst):+.3f} (goal >= -0.02: {'ok' if min(worst) >= -0.02 else 'MISS'}); "
          f"transfer gap to the ceiling: mean {np.mean(gaps):.3f} (goal <= 0.05: "
          f"{'ok' if np.mean(gaps) <= 0.05 else 'MISS'})")


# ---------------------------------------------------------------- 3: unlike devices
def unlike_device(b: Bench, base: str, per: str, target: float = 0.5) -> tuple[np.ndarray, str]:
    """``base``'s latency with its per-edge-op costs re-weighted by ``exp(s · z)`` (``z`` one
    normal draw per op, or per edge and op), ``s`` raised until τ to every device <= target.

    The costs are the additive model's (``|w - w_none|`` per edge), its residual is kept.
    """
    y = b.latency[base]
    Xo = b.space.encode_indices(b.idx, "onehot")
    lr = LinearRegression().fit(Xo, y)
    cost = np.abs(lr.coef_.reshape(6, 5) - lr.coef_.reshape(6, 5)[:, :1])
    residual = y - lr.predict(Xo)
    others = [v for d, v in b.latency.items() if not d.startswith("unlike")]
    sub = np.random.default_rng(0).choice(len(y), 3000, replace=False)
    for seed in range(50):
        z = np.random.default_rng(seed).normal(size=(1, 5) if per == "op" else (6, 5))
        for strength in np.linspace(0.1, 3.0, 30):
            new = lr.intercept_ + (Xo.reshape(-1, 6, 5) * cost * np.exp(strength * z)).sum(
                axis=(1, 2)) + residual
            if max(kendall_tau(v[sub], new[sub]) for v in others) <= target:
                taus = [kendall_tau(v, new) for v in others]
                return new, (f"from {base}, per {per}, draw {seed}, strength {strength:.1f}: "
                             f"tau to the 8 devices {min(taus):.2f}..{max(taus):.2f}")
    raise RuntimeError(f"no re-weighting of {base} per {per} reached tau <= {target}")


def unlike_section(b: Bench, seeds: int) -> None:
    X = encodings(b)
    for per in ("op", "edge and op"):
        y, how = unlike_device(b, "silver_4210r", "op" if per == "op" else "edge")
        name = f"unlike_{per.replace(' ', '_')}"
        b.latency[name] = y
        print(f"{name}: {how}")
        r = evaluate_device(b, name, seeds, X)
        print(f"  import@100: before (huber/compact) {r['old_import']:.3f} -> after (CV) "
              f"{r['import']:.3f}; best in hindsight {r['best']} {r['best_tau']:.3f}; "
              f"picks {r['picks']}")
        print(f"  transfer@20: prior trusted {r['trusted']:.3f}, old rule {r['legacy']:.3f}, "
              f"huber/compact own {r['huber20']:.3f} -> after {r['transfer']:.3f} "
              f"(own no-prior fit {r['own20']:.3f}); fell back to its own fit in "
              f"{r['fallbacks']}/{seeds} seeds, priors used {r['used']:.1f} on average; "
              f"picks {r['choices']}", flush=True)
        _show_evidence(b, name, y)


def _show_evidence(b: Bench, name: str, y: np.ndarray) -> None:
    Xt, names, priors = transfer_features(b, name)
    train, _ = b.split(20, 0)
    t = TransferPredictor(b.space, priors=priors, prior_names=names)
    t.fit_features(Xt[train], y[train])
    ev = t.evidence
    table = ", ".join(f"{r['candidate']} mae {r['mae']:.2f} tau {r['kendall_tau']:.2f}"
                      for r in ev["table"])
    alone = max(ev["priors_alone"].items(), key=lambda kv: kv[1]["kendall_tau"])
    print(f"  seed 0 evidence: {table}; best prior alone {alone[0]} loo tau "
          f"{alone[1]['kendall_tau']:.2f}; chose {ev['chosen']}, used {ev['used']}")


# ---------------------------------------------------------------- 4: how much to measure
def advice_section(b: Bench, seeds: int) -> None:
    print(f"{'device':<22}{'tau20 (cv)':>11}{'more':>6}{'expected':>9}{'actual':>8}"
          "  message (seed 0)")
    for dev, y in b.latency.items():
        rows = []
        for seed in range(seeds):
            train, _ = b.split(20, seed)
            model = fit_latency_model(b.space, b.rows(train), y[train])
            adv = model.selection["advice"]
            more = adv["more"] or 20
            big, rest_big = b.split(20 + more, seed)
            actual = tau_of_model(b, fit_latency_model(b.space, b.rows(big), y[big]),
                                  rest_big, y)
            rows.append((adv["kendall_tau"], adv["more"], adv["expected_tau"], actual,
                         adv["message"]))
        m = np.mean([r[:4] for r in rows], axis=0)
        print(f"{dev:<22}{m[0]:>11.3f}{m[1]:>6.0f}{m[2]:>9.3f}{m[3]:>8.3f}  {rows[0][4]}",
              flush=True)


def suggest_section(b: Bench, seeds: int) -> None:
    print(f"{'device':<22}{'20 measured':>12}{'+30 random':>11}{'+30 suggested':>14}")
    keys = {a.key: i for i, a in enumerate(b.archs)}
    for dev, y in b.latency.items():
        cells = []
        for seed in range(seeds):
            first, _ = b.split(20, seed)
            rand, _ = b.split(50, seed)
            model = fit_latency_model(b.space, b.rows(first), y[first])
            best = model.selection["table"][0]
            chosen = Candidate(predictor=best["predictor"], encoder=best["encoder"],
                               log_target=best["log_target"])
            picks = suggest_archs(b.space, 30, measured=b.rows(first), pool=b.rows(b.pool),
                                  model=chosen)
            sugg = np.concatenate([first, [keys[a.key] for a in picks]])
            rest = np.setdiff1d(b.test if b.test is not None else b.pool,
                                np.union1d(rand, sugg))
            cells.append([tau_of_model(b, fit_latency_model(b.space, b.rows(r), y[r]), rest, y)
                          for r in (first, rand, sugg)])
        m = np.mean(cells, axis=0)
        print(f"{dev:<22}{m[0]:>12.3f}{m[1]:>11.3f}{m[2]:>14.3f}", flush=True)


# ---------------------------------------------------------------- 5: timings
def timing_section(benches: list[Bench]) -> None:
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for b in benches:
        dev = next(iter(b.latency))
        y = b.latency[dev]
        for k in (100, 1000):
            train, _ = b.split(k, 0)
            start = time.perf_counter()
            model = fit_latency_model(b.space, b.rows(train), y[train])
            print(f"{b.space.name}: import at {k:,} rows {time.perf_counter() - start:.1f} s "
                  f"(chose {model.selection['chosen']})", flush=True)
        priors, names = b.priors(dev)
        train, _ = b.split(20, 0)
        start = time.perf_counter()
        TransferPredictor(b.space, priors=priors, prior_names=names).fit(b.rows(train), y[train])
        print(f"{b.space.name}: transfer at 20 rows with {len(priors)} priors "
              f"{time.perf_counter() - start:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sections", default="1,2,3,4,5")
    args = parser.parse_args()
    sections = {int(s) for s in args.sections.split(",")}
    t0 = time.perf_counter()
    nb = load_nb201()
    ofa = load_ofa() if sections & {2, 5} else None
    if 1 in sections:
        print(f"1. NAS-Bench-201, leave one device out ({args.seeds} seeds)")
        leave_one_out(nb, args.seeds, lambda y: nb201_ceiling(nb, y), "NB201")
    if 2 in sections and ofa is not None:
        print(f"\n2. OFA-MobileNetV3 GPU series, leave one series out ({args.seeds} seeds)")
        X = encodings(ofa)
        leave_one_out(ofa, args.seeds, lambda y: ofa_ceiling(ofa, y, X), "OFA")
    if sections & {3, 4}:
        print("\n3. unlike devices (NAS-Bench-201)")
        unlike_section(nb, args.seeds)
    if 4 in sections:
        print("\n4a. how much to measure: advice at 20 cells vs the import at 20 + more")
        advice_section(nb, min(args.seeds, 3))
        print("\n4b. what to measure next: import at 20 + 30 random vs + 30 suggested")
        suggest_section(nb, min(args.seeds, 3))
    if 5 in sections and ofa is not None:
        print("\n5. timings")
        timing_section([nb, ofa])
    print(f"\n({time.perf_counter() - t0:.0f} s; machine shared with other jobs)")


if __name__ == "__main__":
    main()
