"""The ``local`` searcher's own pieces: enumeration of small spaces, the cheap posterior mean,
and the constrained search on a toy whose optimum is known by enumeration."""

from __future__ import annotations

import _search_toy as toy
import numpy as np
import pytest

from nas.search import Problem, create_searcher, search
from nas.search.base import canonical_rows, row_keys
from nas.search.features import RowFeatures
from nas.search.local import _enumerate
from nas.search.surrogate import GPSurrogate

SPACE = toy.tiny()
LIMIT = 10.0


def _problem() -> Problem:
    return Problem.create(SPACE, {"accuracy": "max"}, {"latency_ms": LIMIT})


def test_enumerate_lists_every_network_once():
    sizes = np.array([len(c.values) for c in SPACE.choices])
    rows, keys = _enumerate(SPACE, sizes)
    assert len(rows) == SPACE.size()
    assert len(set(keys.tolist())) == len(rows)
    assert keys.tolist() == row_keys(SPACE, rows)


def test_predict_mean_matches_the_full_posterior():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 5, size=(120, 6))
    X = np.zeros((len(rows), 30))
    for d in range(6):
        X[np.arange(len(rows)), 5 * d + rows[:, d]] = 1.0
    y = X @ rng.normal(size=30) + np.sin(X @ rng.normal(size=30))
    model = GPSurrogate(groups=np.repeat(np.arange(6), 5))
    model.fit(X[:80], y[:80])
    mean, std = model.predict(X[80:])
    np.testing.assert_allclose(model.predict_mean(X[80:]), mean, atol=1e-4)
    assert np.all(std <= model.prior_std + 1e-9)


@pytest.mark.parametrize("enumerate_limit", [0, 100_000])
def test_finds_the_constrained_optimum(enumerate_limit):
    result = search(
        SPACE,
        lambda archs: toy.toy_metrics(SPACE, archs),
        objectives={"accuracy": "max"},
        constraints={"latency_ms": LIMIT},
        searcher="local",
        budget=60,
        seed=1,
        options={"enumerate_limit": enumerate_limit},
    )
    assert len(result.trials) == 60
    assert result.best_metrics()["accuracy"] == pytest.approx(toy.optimum(SPACE, LIMIT))


def test_enumerated_pool_skips_told_and_pending_networks():
    searcher = create_searcher("local", _problem(), seed=0, n_init=5)
    first = searcher.ask_indices(20)  # type: ignore[attr-defined]
    archs = SPACE.from_index_matrix(first)
    searcher.tell(archs, toy.toy_metrics(SPACE, archs))
    second = searcher.ask_indices(10)  # type: ignore[attr-defined]
    third = searcher.ask_indices(10)  # type: ignore[attr-defined]
    keys = [row_keys(SPACE, r) for r in (first, second, third)]
    assert [len(k) for k in keys] == [20, 10, 10]
    assert len(set().union(*keys)) == 40


def test_pair_features_one_hot_joint_values_and_stay_out_of_the_kernel():
    features = RowFeatures(SPACE)
    sizes = [len(c.values) for c in SPACE.choices]
    rows = create_searcher("local", _problem(), seed=0).random_rows(30)  # type: ignore[attr-defined]
    X = features.encode(rows)
    n_pairs = sum(sizes[i] * sizes[j] for i in range(len(sizes)) for j in range(i + 1, len(sizes)))
    pairs = X[:, -n_pairs:]
    assert X.shape[1] == len(features.groups)
    assert np.all(features.groups[-n_pairs:] == -1)
    # each pair of active dimensions contributes exactly one joint value
    canon = canonical_rows(SPACE, rows)
    both = sum(
        (canon[:, i] >= 0) & (canon[:, j] >= 0)
        for i in range(len(sizes))
        for j in range(i + 1, len(sizes))
    )
    np.testing.assert_array_equal(pairs.sum(axis=1), both)
    plain = RowFeatures(SPACE, pairs=False)
    assert plain.encode(rows).shape[1] == X.shape[1] - n_pairs
    searcher = create_searcher("local", _problem(), seed=0, pair_features=False)
    assert searcher.features.encode(rows).shape[1] == X.shape[1] - n_pairs  # type: ignore[attr-defined]


def test_mean_only_columns_leave_the_kernel_unchanged():
    rng = np.random.default_rng(1)
    X = (rng.random((40, 8)) < 0.5).astype(float)
    extra = rng.normal(size=(40, 3))
    y = X @ rng.normal(size=8) + extra @ np.array([1.0, -2.0, 0.5])
    groups = np.repeat(np.arange(4), 2)
    full = GPSurrogate(groups=np.concatenate([groups, [-1, -1, -1]]))
    full.fit(np.hstack([X, extra]), y)
    mean, _ = full.predict(np.hstack([X, extra]))
    np.testing.assert_allclose(full.predict_mean(np.hstack([X, extra])), mean, atol=1e-4)
    plain = GPSurrogate(groups=groups)
    plain.fit(X, y)
    # the extra columns explain what the one-hots cannot: a better fit of the training data
    assert np.mean((mean - y) ** 2) < np.mean((plain.predict(X)[0] - y) ** 2)


def test_neighbour_rows_are_the_space_neighbours_of_active_dimensions():
    searcher = create_searcher("local", _problem(), seed=0)
    rng = np.random.default_rng(4)
    sizes = np.array([len(c.values) for c in SPACE.choices])
    for arch in SPACE.sample_many(10, rng):
        row = SPACE.indices([arch], fill_inactive=False)[0]
        rows = searcher.neighbour_rows(row)  # type: ignore[attr-defined]
        active = canonical_rows(SPACE, row[None, :])[0] >= 0
        assert len(rows) == int((sizes[active] - 1).sum())
        changed = rows != row
        assert np.all(changed.sum(1) == 1) and not changed[:, ~active].any()
        assert SPACE.from_index_matrix(rows) == SPACE.neighbours(arch)
