"""Metrics and feature encoders of the predictors package."""

from __future__ import annotations

import numpy as np
import pytest

import nas
from nas.counting import count_many
from predictors import ENCODERS, encode, kendall_tau, mape, rmse, scores, spearman

NB201 = nas.create_space("nb201")


def test_metrics_known_values() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert kendall_tau(y, y) == pytest.approx(1.0)
    assert kendall_tau(y, -y) == pytest.approx(-1.0)
    assert spearman(y, y**3) == pytest.approx(1.0)
    assert rmse(y, y + 2) == pytest.approx(2.0)
    assert mape(y, 1.1 * y) == pytest.approx(10.0)
    assert kendall_tau(y, np.ones(4)) == 0.0  # constant prediction: no ranking
    assert np.isnan(scores(np.array([0.0, 1.0]), np.array([0.0, 1.0]))["mape"])
    with pytest.raises(ValueError, match="MAPE"):
        mape(np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        rmse(np.ones(3), np.ones(2))


@pytest.mark.parametrize("space_name", ["tiny", "nb201", "ofa_mbv3_w1.0", "ofa_resnet50"])
def test_every_encoder_gives_one_finite_row_per_arch(space_name: str) -> None:
    space = nas.create_space(space_name)
    archs = space.sample_many(30, np.random.default_rng(0))
    for encoder in ENCODERS:
        X = encode(space, archs, encoder)
        assert X.shape[0] == 30 and np.all(np.isfinite(X)), encoder
    with pytest.raises(ValueError, match="encoder must be one of"):
        encode(space, archs, "nope")


def test_nb201_features_see_disconnected_and_pruned_ops() -> None:
    cut = NB201.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|")  # type: ignore[attr-defined]
    live = NB201.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")  # type: ignore[attr-defined]
    compact = encode(NB201, [cut, live], "compact")
    # op counts: both cells hold two 3x3 convs
    np.testing.assert_array_equal(compact[:, 3], [2, 2])
    # ops reaching the output (skip, 1x1, 3x3, pool): none in the cut cell, both in the live one
    np.testing.assert_array_equal(compact[:, 5:], [[0, 0, 0, 0], [0, 0, 2, 0]])
    feats = encode(NB201, [cut, live], "features")
    onehot_and_counts = 30 + 5
    paths = 5 + 25 + 25 + 125
    disconnected = feats[:, onehot_and_counts + paths]
    np.testing.assert_array_equal(disconnected, [1, 0])


def test_mbv3_features_track_macs() -> None:
    space = nas.create_space("ofa_mbv3_w1.0")
    archs = space.sample_many(200, np.random.default_rng(0))
    X = encode(space, archs, "compact")
    total = X[:, 20 + 5]  # after 20 per-block and 5 per-stage columns
    macs = np.array([c["macs"] for c in count_many(space, archs)], dtype=float)
    assert np.corrcoef(total, macs)[0, 1] > 0.99
