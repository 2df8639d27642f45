"""Model choice by cross-validation on the user's rows, the advice on measuring more, and
which architectures to measure next (``predictors.model_selection``, ``learning_curve``,
``suggest``, and ``fit_latency_model`` on top of them).

Synthetic NAS-Bench-201 devices: one whose latency is a per-op cost (the compact op counts
express it), one whose costs differ per edge (only the one-hot encoding expresses it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nas
from nas.hardware.profile import HardwareProfile, Provenance, load_profile, save_profile
from predictors import kendall_tau
from predictors.io import latency_predictor
from predictors.learning_curve import advise, fit_curve, learning_curve
from predictors.model_selection import (
    CANDIDATES,
    Candidate,
    bootstrap_taus,
    cross_val_predict,
    fold_ids,
    select_model,
)
from predictors.suggest import model_from_selection, suggest_archs, variance_picks
from predictors.table_import import fit_latency_model

NB201 = nas.create_space("nb201")
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FAST = (
    Candidate(predictor="ridge", encoder="compact"),
    Candidate(predictor="ridge", encoder="onehot"),
    Candidate(predictor="svr", encoder="compact"),
)


def _device(n: int, kind: str, seed: int = 0) -> tuple[list[nas.ArchConfig], np.ndarray]:
    rng = np.random.default_rng(seed)
    archs = NB201.sample_many(n, rng)
    onehot = NB201.encode(archs)
    if kind == "per_op":
        cost = np.tile([0.0, 0.1, 1.0, 3.0, 0.5], 6)
    else:  # per edge and op: what op counts cannot express
        cost = np.random.default_rng(99).uniform(0.0, 4.0, 30)
    return archs, 5.0 + onehot @ cost + rng.normal(0, 0.05, n)


# ---------------------------------------------------------------- cross-validation
def test_fold_ids_balanced_deterministic_and_leave_one_out() -> None:
    ids = fold_ids(23, 5, seed=3)
    assert np.array_equal(ids, fold_ids(23, 5, seed=3))
    assert sorted(np.bincount(ids)) == [4, 4, 5, 5, 5]
    assert sorted(fold_ids(6, 10, seed=0)) == list(range(6))
    with pytest.raises(ValueError, match="folds must be >= 2"):
        fold_ids(10, 1, seed=0)


def test_cross_val_predict_never_sees_the_row() -> None:
    y = np.arange(10.0)
    seen: list[np.ndarray] = []

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        assert not set(train) & set(test)
        seen.append(test)
        return y[test] + 1.0

    oof = cross_val_predict(fit_predict, 10, folds=5, seed=0, repeats=2)
    assert oof.shape == (2, 10) and np.allclose(oof, y + 1.0)
    assert sorted(np.concatenate(seen[:5])) == list(range(10))


def test_bootstrap_taus_match_scipy() -> None:
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    y = np.round(rng.normal(size=40), 1)  # ties on purpose
    p = y + rng.normal(size=40)
    fast = bootstrap_taus(y, p[None, :], np.random.default_rng(5))
    rows = np.random.default_rng(5).integers(0, 40, (len(fast), 40))
    slow = [kendalltau(y[r], p[r]).statistic for r in rows]
    np.testing.assert_allclose(fast, slow, atol=1e-12)


@pytest.mark.parametrize(("kind", "encoder"), [("per_op", "compact"), ("per_edge", "onehot")])
def test_selection_follows_the_device(kind: str, encoder: str) -> None:
    archs, y = _device(60, kind)
    sel = select_model(NB201, archs, y, candidates=FAST, seed=0)
    assert sel.chosen.encoder == encoder
    assert sel.best.kendall_tau > 0.85
    assert sel.table[0].candidate == sel.chosen
    assert {r.candidate.label for r in sel.table} == {c.label for c in FAST}
    again = select_model(NB201, archs, y, candidates=FAST, seed=0)
    assert again.to_dict() == sel.to_dict()  # deterministic


def test_selection_skips_log_candidates_for_non_positive_latency() -> None:
    archs, y = _device(30, "per_op")
    cands = (Candidate(predictor="ridge", encoder="compact"),
             Candidate(predictor="huber", encoder="compact", log_target=True))
    sel = select_model(NB201, archs, y - y.max(), candidates=cands)
    assert [r.candidate.label for r in sel.table] == ["ridge/compact"]


def test_bad_candidates_and_rows_name_the_problem() -> None:
    with pytest.raises(ValueError, match="candidate predictor 'nope' is unknown; allowed"):
        Candidate(predictor="nope", encoder="compact")
    with pytest.raises(ValueError, match="candidate encoder 'x' is unknown; allowed"):
        Candidate(predictor="ridge", encoder="x")
    with pytest.raises(ValueError, match="a candidate needs 'predictor' and 'encoder'"):
        Candidate.from_dict({"candidate": "own:onehot"})
    archs, y = _device(10, "per_op")
    with pytest.raises(ValueError, match="at least 4"):
        select_model(NB201, archs[:3], y[:3])
    with pytest.raises(ValueError, match="candidates is empty"):
        select_model(NB201, archs, y, candidates=())
    with pytest.raises(ValueError, match="10 architectures but 9"):
        select_model(NB201, archs, y[:9])


# ---------------------------------------------------------------- fit_latency_model
def test_import_auto_picks_by_cv_and_stores_the_table(tmp_path: Path) -> None:
    archs, y = _device(60, "per_edge")
    model = fit_latency_model(NB201, archs, y, candidates=FAST)
    assert model.selection["chosen"] == "ridge/onehot"
    assert model.selection["table"][0]["candidate"] == "ridge/onehot"
    v = model.validation
    assert {"kendall_tau", "spearman", "rmse", "mape", "n_train", "n_test"} <= set(v)
    assert v["n_test"] == 60 and v["n_train"] == 48
    assert "from 60 measurements" in model.selection["advice"]["message"]
    assert Candidate.from_dict(model.selection["table"][0]) == FAST[1]
    assert model_from_selection(model.selection) == FAST[1]
    assert model_from_selection({"chosen": "both:onehot", "table": [{"candidate": "x"}]}) == (
        "onehot"
    )
    assert model_from_selection({}) is None
    profile = HardwareProfile(
        name="toy", kind="phone", device="toy", runtime="other",
        provenance=Provenance(source="tests", licence="CC0-1.0"), latency={"nb201": model},
    )
    loaded = load_profile(save_profile(profile, tmp_path))
    assert loaded.latency["nb201"].selection == model.selection
    test_archs, test_y = _device(200, "per_edge", seed=1)
    assert kendall_tau(test_y, latency_predictor(loaded, NB201).predict(test_archs)) > 0.9


def test_import_forced_pair_keeps_the_holdout_path() -> None:
    archs, y = _device(50, "per_op")
    model = fit_latency_model(NB201, archs, y, predictor="huber", encoder="compact")
    assert model.validation["n_test"] == 10 and model.validation["n_train"] == 40
    assert model.selection == {} and model.predictor is not None
    assert model.predictor["predictor"] == "huber"
    ridge = fit_latency_model(NB201, archs, y, predictor="ridge", encoder="onehot",
                              params={"alpha": 0.5})
    assert ridge.predictor is not None and ridge.predictor["config"]["params"]["alpha"] == 0.5


def test_import_one_named_filters_the_candidates() -> None:
    archs, y = _device(40, "per_op")
    model = fit_latency_model(NB201, archs, y, predictor="ridge")
    labels = {r["candidate"] for r in model.selection["table"]}
    assert labels == {c.label for c in CANDIDATES if c.predictor == "ridge"}


def test_import_bad_input() -> None:
    archs, y = _device(20, "per_op")
    with pytest.raises(ValueError, match="unknown predictor 'nope'; allowed"):
        fit_latency_model(NB201, archs, y, predictor="nope")
    with pytest.raises(ValueError, match="unknown encoder 'x'; allowed"):
        fit_latency_model(NB201, archs, y, encoder="x")
    with pytest.raises(ValueError, match="no candidate matches predictor='mlp'"):
        fit_latency_model(NB201, archs, y, predictor="mlp")
    with pytest.raises(ValueError, match=r"options \['params'\] apply to one predictor"):
        fit_latency_model(NB201, archs, y, params={"alpha": 1.0})
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fit_latency_model(NB201, archs, bad)
    with pytest.raises(ValueError, match="at least 4"):
        fit_latency_model(NB201, archs[:3], y[:3])


def test_old_profiles_load_without_selection() -> None:
    model = load_profile("nb201_pixel3").latency["nb201"]
    assert model.selection == {}
    bad = load_profile("nb201_pixel3").to_dict()
    bad["latency"]["nb201"]["selection"] = [1, 2]
    with pytest.raises(ValueError, match="selection must be an object"):
        HardwareProfile.from_dict(bad, source="x.json")


# ---------------------------------------------------------------- how much to measure
def test_fit_curve_recovers_a_saturating_curve() -> None:
    m = np.array([10.0, 20.0, 40.0, 80.0])
    plateau, b, c = fit_curve(list(zip(m, 0.9 - 0.6 * m**-0.5)))
    assert plateau == pytest.approx(0.9, abs=1e-6) and c == 0.5 and b == pytest.approx(0.6)
    flat = fit_curve([(10.0, 0.8), (20.0, 0.79), (40.0, 0.8)])
    assert flat[1] == 0.0 and flat[0] == pytest.approx(0.7967, abs=1e-3)


def test_advise_says_how_many_more() -> None:
    m = np.array([8.0, 12.0, 16.0])
    curve = list(zip(m, 0.9 - 0.8 * m**-0.5))
    tau = curve[-1][1]
    advice = advise(curve, n=20, tau=tau, tau_std=0.06)
    assert advice.more > 0 and advice.expected_tau >= tau + 0.05 - 1e-9
    assert advice.message.startswith(f"kendall tau {tau:.2f} +- 0.06 from 20 measurements; ")
    assert f"{advice.more} more would likely reach" in advice.message
    flat = advise([(8.0, 0.9), (12.0, 0.9), (16.0, 0.9)], n=20, tau=0.9, tau_std=0.02)
    assert flat.more == 0 and "hardly help" in flat.message


def test_learning_curve_grows_with_rows() -> None:
    archs, y = _device(60, "per_edge")
    X = NB201.encode(archs)

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        w, *_ = np.linalg.lstsq(X[train], y[train], rcond=None)
        return np.asarray(X[test] @ w)

    curve = learning_curve(fit_predict, y, seed=0)
    sizes = [p[0] for p in curve]
    assert sizes == sorted(sizes) and len(curve) == 4
    assert curve[-1][1] > curve[0][1]


# ---------------------------------------------------------------- what to measure next
def _mean_variance(X_pool: np.ndarray, X_design: np.ndarray) -> float:
    mean, scale = X_pool.mean(axis=0), np.where(X_pool.std(axis=0) > 0, X_pool.std(axis=0), 1)
    P = np.hstack([(X_pool - mean) / scale, np.ones((len(X_pool), 1))])
    D = np.hstack([(X_design - mean) / scale, np.ones((len(X_design), 1))])
    inv = np.linalg.inv(D.T @ D + 1e-3 * np.eye(P.shape[1]))
    return float(((P @ inv) * P).sum(axis=1).mean())


def test_suggest_picks_new_distinct_architectures() -> None:
    archs, _ = _device(20, "per_op")
    pool = NB201.sample_many(400, np.random.default_rng(3))
    picks = suggest_archs(NB201, 8, measured=archs, pool=pool, model=FAST[0], seed=0)
    keys = [a.key for a in picks]
    assert len(set(keys)) == 8 and not set(keys) & {a.key for a in archs}
    assert picks == suggest_archs(NB201, 8, measured=archs, pool=pool, model="compact")
    cold = suggest_archs(NB201, 5, model="onehot", seed=1)
    assert len({a.key for a in cold}) == 5
    with pytest.raises(ValueError, match="n must be >= 1"):
        suggest_archs(NB201, 0)
    with pytest.raises(ValueError, match="model must be a Candidate, an encoder"):
        suggest_archs(NB201, 2, model="nope")


def test_variance_picks_beat_random_picks() -> None:
    rng = np.random.default_rng(0)
    X_pool = rng.normal(size=(500, 4)) * [1.0, 3.0, 0.5, 2.0]
    seen = X_pool[:5]
    picks = variance_picks(X_pool, seen, 10)
    assert len(set(picks)) == 10
    designed = _mean_variance(X_pool, np.vstack([seen, X_pool[picks]]))
    random = [_mean_variance(X_pool, np.vstack([seen, X_pool[rng.choice(500, 10)]]))
              for _ in range(20)]
    assert designed < min(random)


# ---------------------------------------------------------------- real measurements
@pytest.mark.skipif(not (DATA / "nas_bench_201").is_dir(), reason="shared data not present")
def test_import_on_real_nb201_pixel3_matches_the_best_candidate() -> None:
    import pandas as pd

    frame = pd.read_csv(DATA / "nas_bench_201" / "nb201_cifar10_latency.csv", nrows=3300)
    archs = [NB201.parse(a) for a in frame["arch"]]  # type: ignore[attr-defined]
    y = frame["latency_ms_pixel3"].to_numpy(float)
    test = slice(300, None)
    ours, per_candidate = [], []
    for start in (0, 100, 200):  # three disjoint sets of 100 measured cells
        rows = slice(start, start + 100)
        model = fit_latency_model(NB201, archs[rows], y[rows])
        profile = HardwareProfile(name="p", kind="phone", device="p", runtime="other",
                                  provenance=Provenance(source="t", licence="MIT"),
                                  latency={"nb201": model})
        ours.append(kendall_tau(y[test], latency_predictor(profile, NB201).predict(archs[test])))
        per_candidate.append([
            kendall_tau(y[test], c.make(NB201).fit(archs[rows], y[rows]).predict(archs[test]))
            for c in CANDIDATES
        ])
    assert np.mean(ours) >= np.max(np.mean(per_candidate, axis=0)) - 0.02
