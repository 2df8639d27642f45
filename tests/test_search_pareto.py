"""Pareto machinery against brute force: domination, sorting, crowding, hypervolume."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.search.pareto import (
    crowding_distance,
    dominance_matrix,
    hypervolume,
    hypervolume_improvement_2d,
    nondominated_sort,
    pareto_mask,
)

points = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=25
)


def _dominates(a, b):
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _hv_grid(F, ref):
    """Brute-force hypervolume of integer points on the unit grid."""
    F = np.asarray(F)
    ranges = [range(int(lo), int(hi)) for lo, hi in zip(F.min(axis=0), ref)]
    return float(
        sum(
            any(all(p[j] <= c[j] for j in range(len(c))) for p in F)
            for c in itertools.product(*ranges)
        )
    )


@settings(max_examples=25, deadline=None)
@given(points)
def test_sort_matches_brute_force(pts):
    F = np.array(pts, dtype=float)
    ranks = nondominated_sort(F)
    for i, j in itertools.permutations(range(len(F)), 2):
        if _dominates(F[i], F[j]):
            assert ranks[i] < ranks[j]
    for i in range(len(F)):
        if ranks[i] > 0:  # something in the previous front dominates it
            assert any(_dominates(F[j], F[i]) for j in np.flatnonzero(ranks == ranks[i] - 1))
    mask = pareto_mask(F)
    for i in range(len(F)):
        assert mask[i] == (not any(_dominates(F[j], F[i]) for j in range(len(F))))
        assert pareto_mask(F[:, :2])[i] == (
            not any(_dominates(F[j, :2], F[i, :2]) for j in range(len(F)))
        )


@settings(max_examples=15, deadline=None)
@given(points)
def test_hypervolume_matches_grid_count(pts):
    F = np.array(pts, dtype=float)
    ref = np.array([7.0, 7.0, 7.0])
    assert hypervolume(F, ref) == pytest.approx(_hv_grid(F, ref))
    assert hypervolume(F[:, :2], ref[:2]) == pytest.approx(_hv_grid(F[:, :2], ref[:2]))


def test_hypervolume_examples_and_reference_handling():
    F = np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0]])
    assert hypervolume(F, np.array([4.0, 5.0])) == 7.0
    assert hypervolume(F, np.array([0.5, 0.5])) == 0.0
    with pytest.raises(ValueError, match="reference"):
        hypervolume(F, np.array([1.0, 2.0, 3.0]))


def test_constrained_domination():
    F = np.array([[5.0, 5.0], [1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])
    violation = np.array([0.0, 0.5, 1.0, 0.0])
    D = dominance_matrix(F, violation)
    assert D[0, 1] and D[0, 2]  # feasible beats infeasible whatever the objectives
    assert D[1, 2] and not D[2, 1]  # less violation wins among infeasible
    assert D[3, 0] and not D[0, 3]  # Pareto among feasible
    assert nondominated_sort(F, violation).tolist() == [1, 2, 3, 0]
    assert pareto_mask(F, violation).tolist() == [False, False, False, True]
    assert not pareto_mask(F, np.ones(4)).any()


def test_crowding_distance_boundaries_are_infinite():
    F = np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0]])
    d = crowding_distance(F)
    assert np.isinf(d[[0, 3]]).all()
    assert d[1] == pytest.approx(d[2])


@settings(max_examples=15, deadline=None)
@given(points, points)
def test_vectorised_hvi_matches_difference_of_hypervolumes(front, cand):
    ref = np.array([7.0, 7.0])
    front2 = np.array(front, dtype=float)[:, :2]
    cand2 = np.array(cand, dtype=float)[:, :2]
    base = hypervolume(front2, ref)
    expected = [
        0.0 if np.any(p >= ref) else hypervolume(np.vstack([front2, p]), ref) - base
        for p in cand2
    ]
    assert np.allclose(hypervolume_improvement_2d(front2, cand2, ref), np.maximum(expected, 0))


@settings(max_examples=15, deadline=None)
@given(points, st.integers(1, 10))
def test_early_stopped_sort_keeps_the_best_fronts_exact(pts, enough):
    F = np.array(pts, dtype=float)
    full = nondominated_sort(F)
    part = nondominated_sort(F, enough=enough)
    last = part.max()
    assert (part[part < last] == full[part < last]).all()  # the fronts it peeled are exact
    assert (full[part == last] >= last).all()  # the rest are no better
    if last < full.max():  # it stopped early: only once enough points were ranked
        assert np.count_nonzero(part < last) >= enough


def test_two_objective_fast_sort_matches_peeling():
    from nas.search.pareto import _peel_fronts, nondominated_sort

    rng = np.random.default_rng(0)
    for case in range(400):
        n = int(rng.integers(1, 40))
        F = rng.integers(0, 5, size=(n, 2)).astype(float)  # many ties and copies
        v = None if case % 3 == 0 else np.where(rng.random(n) < 0.4, rng.integers(0, 3, n) / 2, 0.0)
        enough = None if case % 2 else int(rng.integers(1, n + 1))
        assert (
            nondominated_sort(F, v, enough=enough).tolist() == _peel_fronts(F, v, enough).tolist()
        )
