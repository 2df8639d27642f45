"""The few-shot transfer knows its prior: it weights priors that explain the new device,
drops those that do not, falls back to its own fit when none helps, and records why.

Synthetic NAS-Bench-201 devices with a cost per edge and op: two priors (``a``, ``b``), a
new device that is a scaled ``a``, and an unlike device that no prior ranks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nas
from predictors import (
    BasePredictor,
    create_predictor,
    kendall_tau,
    load_predictor,
    save_predictor,
)
from predictors.transfer import TransferPredictor

NB201 = nas.create_space("nb201")
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
COST_A, COST_B, COST_UNLIKE = np.random.default_rng(7).uniform(0.0, 4.0, (3, 30))


def _latency(archs: list[nas.ArchConfig], cost: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 0.05, len(archs))
    return 5.0 + NB201.encode(archs) @ cost + noise


_PRIORS: dict[str, BasePredictor] = {}


def _priors() -> list[BasePredictor]:
    if not _PRIORS:
        archs = NB201.sample_many(300, np.random.default_rng(0))
        for name, cost in (("a", COST_A), ("b", COST_B)):
            _PRIORS[name] = create_predictor("ridge", space=NB201).fit(
                archs, _latency(archs, cost, 1)
            )
    return list(_PRIORS.values())


def _measured(cost: np.ndarray, n: int = 20) -> tuple[list[nas.ArchConfig], np.ndarray]:
    archs = NB201.sample_many(n, np.random.default_rng(11))
    return archs, _latency(archs, cost, 12)


def _transfer(**kw: Any) -> TransferPredictor:
    return TransferPredictor(NB201, priors=_priors(), prior_names=["a", "b"], **kw)


def test_a_prior_that_explains_is_weighted_the_other_dropped() -> None:
    archs, y = _measured(2.0 * COST_A)
    p = _transfer().fit(archs, y)
    assert p.choice in ("prior", "both")
    assert p.used_priors == ["a"]
    assert p.evidence["weights"]["a"] == pytest.approx(2.0, rel=0.1)
    assert p.evidence["weights"]["b"] == 0.0
    alone = p.evidence["priors_alone"]
    assert alone["a"]["kendall_tau"] > 0.9 > alone["b"]["kendall_tau"]
    assert not p.evidence["fallback"]


def test_unlike_device_falls_back_to_its_own_fit() -> None:
    archs, y = _measured(COST_UNLIKE, n=30)
    p = _transfer().fit(archs, y)
    assert p.choice == "own" and p.evidence["fallback"]
    assert p.used_priors == [] and p.own_encoder == "onehot"
    test = NB201.sample_many(300, np.random.default_rng(5))
    truth = _latency(test, COST_UNLIKE, 6)
    forced = _transfer(choice="prior").fit(archs, y)
    assert kendall_tau(truth, p.predict(test)) > kendall_tau(truth, forced.predict(test)) + 0.2
    table = {r["candidate"]: r for r in p.evidence["table"]}
    assert set(table) - {"prior:selected"} == {"prior", "own:compact", "own:onehot",
                                                "both:compact", "both:onehot"}
    assert p.evidence["chosen"] == "own:onehot"
    assert table["own:onehot"]["mae"] < table["prior"]["mae"]


def test_no_priors_is_the_own_fit() -> None:
    archs, y = _measured(COST_A)
    p = TransferPredictor(NB201).fit(archs, y)
    assert p.choice == "own" and p.evidence["used"] == [] and not p.evidence["fallback"]
    with pytest.raises(ValueError, match="needs at least one prior"):
        TransferPredictor(NB201, choice="prior").fit(archs, y)


def test_latency_model_carries_the_evidence_and_round_trips(tmp_path: Path) -> None:
    archs, y = _measured(COST_A)
    p = _transfer().fit(archs, y)
    model = p.latency_model()
    assert {"kendall_tau", "spearman", "rmse", "mape", "n_train", "n_test"} <= set(
        model.validation
    )
    assert model.validation["n_test"] == 20 and model.validation["n_train"] == 19
    assert model.selection["used"] == p.used_priors
    assert "from 20 measurements" in model.selection["advice"]["message"]
    save_predictor(p, tmp_path / "t")
    again = load_predictor(tmp_path / "t", NB201)
    assert isinstance(again, TransferPredictor)
    assert again.evidence == p.evidence and again.prior_names == ["a", "b"]
    np.testing.assert_allclose(again.predict(archs), p.predict(archs), rtol=1e-9)


def test_a_named_encoder_is_the_only_own_encoder() -> None:
    archs, y = _measured(COST_UNLIKE)
    p = _transfer(encoder="compact").fit(archs, y)
    names = {r["candidate"] for r in p.evidence["table"]} - {"prior:selected"}
    assert names == {"prior", "own:compact", "both:compact"}


def test_bad_arguments_name_the_problem() -> None:
    with pytest.raises(ValueError, match="encoder must be 'auto' or one of"):
        TransferPredictor(NB201, encoder="nope")
    with pytest.raises(ValueError, match="got 2 priors but 1 prior_names"):
        TransferPredictor(NB201, priors=_priors(), prior_names=["a"])
    with pytest.raises(ValueError, match="choice must be one of"):
        TransferPredictor(NB201, choice="maybe")


@pytest.mark.skipif(not (DATA / "nas_bench_201").is_dir(), reason="shared data not present")
def test_real_nb201_transfer_not_below_its_own_fit() -> None:
    import pandas as pd

    from nas.hardware.profile import load_profile
    from predictors.io import latency_predictor

    frame = pd.read_csv(DATA / "nas_bench_201" / "nb201_cifar10_latency.csv", nrows=3000)
    archs = [NB201.parse(a) for a in frame["arch"]]  # type: ignore[attr-defined]
    y = frame["latency_ms_samsung_s7"].to_numpy(float)
    others = ["1080ti_1", "silver_4210r", "samsung_a50", "pixel3"]
    priors = [latency_predictor(load_profile(f"nb201_{d}"), NB201) for d in others]
    p = TransferPredictor(NB201, priors=priors, prior_names=others).fit(archs[:20], y[:20])
    own = TransferPredictor(NB201).fit(archs[:20], y[:20])
    rest, truth = archs[20:], y[20:]
    assert kendall_tau(truth, p.predict(rest)) >= kendall_tau(truth, own.predict(rest)) - 0.02
