"""Conditional dimensions: one masking rule (nas.space.conditions) behind keys, masks, ids,
``is_active`` and ``size``, including nested conditions and unsorted parent values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas.space import Condition, SearchSpace, choice


def _nested() -> SearchSpace:
    # c exists only inside b, which exists only while a >= 2; d's parent values are unsorted
    return SearchSpace(
        "nested",
        [
            choice("a", [1, 2]),
            choice("b", [1, 2, 3], when=Condition(dim="a", at_least=2)),
            choice("c", [3, 5], when=Condition(dim="b", at_least=2)),
            choice("p", [4, 2, 8]),
            choice("d", ["x", "y"], when=Condition(dim="p", at_least=3)),
        ],
    )


def _all_rows(space: SearchSpace) -> np.ndarray:
    return np.array(list(itertools.product(*[range(len(c.values)) for c in space.choices])))


def test_every_view_of_activity_agrees() -> None:
    space = _nested()
    rows = _all_rows(space)
    archs = space.from_index_matrix(rows)
    masked = space.mask_inactive(rows.copy())
    for arch, row in zip(archs, masked):
        assert [space.is_active(arch, n) for n in space.names] == (row >= 0).tolist()
    # keys, masked rows and network ids all name the same networks
    n_masked = len({tuple(r) for r in masked.tolist()})
    assert len({a.key for a in archs}) == n_masked == len(set(space.network_ids(rows).tolist()))
    assert space.size() == n_masked
    np.testing.assert_array_equal(space.indices(archs), masked)


def test_nesting_and_unsorted_parents() -> None:
    space = _nested()
    arch = space.arch({"a": 1, "b": 3, "c": 5, "p": 2, "d": "y"})
    # b is inactive (a < 2), so c is too although b's value would activate it
    assert not space.is_active(arch, "b") and not space.is_active(arch, "c")
    assert not space.is_active(arch, "d")  # p = 2 < 3, though 2 is not p's first value
    assert space.is_active(space.arch({**arch.to_dict(), "p": 8}), "d")
    # by hand: a=1: 1 network; a=2: b=1: 1, b=2: 2, b=3: 2; and p=4: 2, p=2: 1, p=8: 2
    assert space.size() == (1 + (1 + 2 + 2)) * (2 + 1 + 2)


def test_single_and_batched_rows_build_the_same_configs() -> None:
    space = _nested()
    rows = _all_rows(space)
    batched = space.from_index_matrix(rows)
    single = [space.from_indices(r) for r in rows]
    assert [a.key for a in batched] == [a.key for a in single]
    assert batched == single
    assert all(a.positions == b.positions for a, b in zip(batched, single))


def test_conditions_that_form_a_cycle_are_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        SearchSpace(
            "loop",
            [
                choice("a", [1, 2], when=Condition(dim="b", at_least=2)),
                choice("b", [1, 2], when=Condition(dim="a", at_least=2)),
            ],
        )
