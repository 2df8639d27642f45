"""The predictor contract suite: every predictor inherits :class:`PredictorContract`.

Targets are synthetic but learnable (a fixed linear function of the ordinal encoding plus
noise), so every predictor must rank held-out architectures well, round-trip through
save/load exactly, and reject bad input with ``ValueError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import nas
from predictors import (
    BasePredictor,
    NotFittedError,
    create_predictor,
    list_predictors,
    load_predictor,
    save_predictor,
)

SPACE = nas.create_space("tiny")


def _data(n: int, seed: int) -> tuple[list[nas.ArchConfig], np.ndarray]:
    rng = np.random.default_rng(seed)
    archs = SPACE.sample_many(n, rng)
    weights = np.linspace(1.0, 3.0, len(SPACE.choices))
    y = 10.0 + SPACE.encode(archs, "ordinal") @ weights + rng.normal(0, 0.05, n)
    return archs, y


_FITTED: dict[tuple[str, str], BasePredictor] = {}
TRAIN = _data(120, 0)
TEST = _data(200, 1)


class PredictorContract:
    """What every predictor must do; subclasses set ``kind`` and ``kwargs``."""

    kind: ClassVar[str] = ""
    kwargs: ClassVar[dict[str, Any]] = {}
    min_tau: ClassVar[float] = 0.7
    needs_fit: ClassVar[bool] = True

    def make(self) -> BasePredictor:
        return create_predictor(self.kind, space=SPACE, **self.kwargs)

    @pytest.fixture
    def fitted(self) -> BasePredictor:
        key = (self.kind, repr(self.kwargs))
        if key not in _FITTED:
            _FITTED[key] = self.make().fit(*TRAIN)
        return _FITTED[key]

    def test_is_listed(self) -> None:
        assert self.kind in list_predictors()

    def test_predict_shape_and_rank(self, fitted: BasePredictor) -> None:
        pred = fitted.predict(TEST[0])
        assert pred.shape == (len(TEST[0]),)
        assert pred.dtype == np.float64
        assert np.all(np.isfinite(pred))
        s = fitted.score(*TEST)
        assert set(s) == {"kendall_tau", "spearman", "rmse", "mape"}
        assert s["kendall_tau"] >= self.min_tau, s

    def test_save_load_round_trip(self, fitted: BasePredictor, tmp_path: Path) -> None:
        path = save_predictor(fitted, tmp_path / "p")
        assert path.suffix == ".json"
        assert b"pickle" not in path.read_bytes()
        again = load_predictor(tmp_path / "p", SPACE)
        np.testing.assert_allclose(again.predict(TEST[0]), fitted.predict(TEST[0]), rtol=1e-6)
        again_by_name = load_predictor(path)  # the space is recreated from the file
        assert again_by_name.space.name == "tiny"

    def test_predict_indices_equals_predict(self, fitted: BasePredictor) -> None:
        archs = TEST[0]
        want = fitted.predict(archs)
        np.testing.assert_array_equal(fitted.predict_indices(SPACE.indices(archs)), want)
        # full position rows (inactive dimensions hold a value), as searchers keep them
        rows = np.array([a.positions for a in archs])
        np.testing.assert_array_equal(fitted.predict_indices(rows), want)
        np.testing.assert_array_equal(fitted.encode_indices(rows), fitted.encode(archs))
        assert fitted.predict_indices(rows[:0]).shape == (0,)

    def test_bad_index_rows_rejected(self, fitted: BasePredictor) -> None:
        rows = SPACE.indices(TEST[0][:4], fill_inactive=False)
        with pytest.raises(ValueError, match="shape"):
            fitted.predict_indices(rows[:, :-1])
        too_big = rows.copy()
        too_big[2, 0] = len(SPACE.choices[0].values)
        with pytest.raises(ValueError, match="out of range"):
            fitted.predict_indices(too_big)
        with pytest.raises(ValueError, match="integers"):
            fitted.predict_indices(rows + 0.5)

    def test_deterministic(self) -> None:
        a = self.make().fit(*TRAIN).predict(TEST[0][:20])
        b = self.make().fit(*TRAIN).predict(TEST[0][:20])
        np.testing.assert_allclose(a, b, rtol=1e-9)

    def test_predict_before_fit(self) -> None:
        if not self.needs_fit:
            pytest.skip("usable unfitted")
        with pytest.raises(NotFittedError):
            self.make().predict(TEST[0][:3])

    def test_bad_targets(self) -> None:
        archs, y = TRAIN
        with pytest.raises(ValueError, match="targets"):
            self.make().fit(archs, y[:-1])
        bad = y.copy()
        bad[3] = np.nan
        with pytest.raises(ValueError, match="finite"):
            self.make().fit(archs, bad)

    def test_other_space_rejected(self, fitted: BasePredictor) -> None:
        other = nas.create_space("nb201").sample_many(3, np.random.default_rng(0))
        with pytest.raises(ValueError, match="space"):
            fitted.predict(other)

    def test_load_for_wrong_space(self, fitted: BasePredictor, tmp_path: Path) -> None:
        save_predictor(fitted, tmp_path / "p")
        with pytest.raises(ValueError, match="space"):
            load_predictor(tmp_path / "p", nas.create_space("nb201"))


class TestRidge(PredictorContract):
    kind = "ridge"


class TestHuber(PredictorContract):
    kind = "huber"
    kwargs: ClassVar[dict[str, Any]] = {"encoder": "compact"}


class TestSVR(PredictorContract):
    kind = "svr"
    kwargs: ClassVar[dict[str, Any]] = {"encoder": "features"}


class TestGBM(PredictorContract):
    kind = "gbm"
    kwargs: ClassVar[dict[str, Any]] = {"params": {"n_estimators": 60}}


class TestRF(PredictorContract):
    kind = "rf"
    kwargs: ClassVar[dict[str, Any]] = {"params": {"n_estimators": 30}}
    min_tau = 0.6


class TestET(PredictorContract):
    kind = "et"
    kwargs: ClassVar[dict[str, Any]] = {"params": {"n_estimators": 30}}
    min_tau = 0.6


class TestMLP(PredictorContract):
    kind = "mlp"
    kwargs: ClassVar[dict[str, Any]] = {"hidden": [32, 32], "epochs": 60, "log_target": True}


class TestEnsemble(PredictorContract):
    kind = "ensemble"
    kwargs: ClassVar[dict[str, Any]] = {
        "members": [["ridge", {}], ["gbm", {"params": {"n_estimators": 40}}]]
    }

    def test_std(self, fitted: BasePredictor) -> None:
        mean, std = fitted.predict(TEST[0][:50], return_std=True)  # type: ignore[call-overload,call-arg]
        assert mean.shape == std.shape == (50,)
        assert np.all(std >= 0) and std.max() > 0
        np.testing.assert_allclose(mean, fitted.predict(TEST[0][:50]))


def _prior(scale: float, offset: float) -> BasePredictor:
    archs, y = TRAIN
    return create_predictor("ridge", space=SPACE).fit(archs, scale * y + offset)


class TestTransfer(PredictorContract):
    kind = "transfer"
    kwargs: ClassVar[dict[str, Any]] = {"priors": [_prior(2.0, 1.0), _prior(-1.0, 50.0)]}

    def test_prefers_prior_with_few_points(self) -> None:
        archs, y = TEST
        p = self.make().fit(archs[:20], 3.0 * y[:20] + 2.0)
        assert p.choice == "prior"  # type: ignore[attr-defined]
        assert p.score(archs[20:], 3.0 * y[20:] + 2.0)["kendall_tau"] > 0.9

    def test_prior_of_other_space_rejected(self) -> None:
        nb = nas.create_space("nb201")
        archs = nb.sample_many(30, np.random.default_rng(0))
        prior = create_predictor("ridge", space=nb).fit(archs, np.arange(30.0))
        with pytest.raises(ValueError, match="priors\\[0\\]"):
            create_predictor("transfer", space=SPACE, priors=[prior])


def test_unknown_predictor_and_encoder() -> None:
    with pytest.raises(ValueError, match="unknown predictor 'nope'"):
        create_predictor("nope", space=SPACE)
    with pytest.raises(ValueError, match="encoder must be one of"):
        create_predictor("ridge", space=SPACE, encoder="nope")
    with pytest.raises(ValueError, match="model must be one of"):
        from predictors.sklearn_models import SklearnPredictor

        SklearnPredictor(SPACE, model="nope")


def test_linear_prediction_is_vectorised_fast() -> None:
    archs = SPACE.sample_many(20_000, np.random.default_rng(0))
    p = create_predictor("ridge", space=SPACE).fit(*TRAIN)
    X = p.encode(archs)
    import time

    start = time.perf_counter()
    p.predict_features(X)
    assert time.perf_counter() - start < 0.5
