"""Search-space API: construction, validation, operators, encoding, formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nas
from nas.space import ArchConfig, Condition, InvalidArchError, SearchSpace, choice, stage

SPACES = ["tiny", "nb201", "ofa_mbv3_w1.0", "ofa_mbv3_w1.2", "ofa_resnet50"]
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@pytest.fixture(scope="module", params=SPACES)
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return nas.create_space(request.param)


def toy() -> SearchSpace:
    return SearchSpace(
        "toy",
        [*stage("s1", depth=[1, 2, 3], block={"kernel": [3, 5]}), choice("resolution", [32, 48])],
    )


def test_stage_helper_conditions_blocks_beyond_min_depth() -> None:
    dims = stage("s1", depth=[2, 3], block={"kernel": [3, 5], "expand": [2, 4]})
    names = [d.name for d in dims]
    assert names[0] == "s1.depth"
    assert len(names) == 1 + 3 * 2
    by_name = {d.name: d for d in dims}
    assert by_name["s1.b1.kernel"].when is None
    assert by_name["s1.b2.kernel"].when == Condition(dim="s1.depth", at_least=3)


def test_size_counts_distinct_networks() -> None:
    # depth 1: 2 kernels; depth 2: 4; depth 3: 8 -> 14 networks x 2 resolutions
    assert toy().size() == 28
    assert nas.create_space("nb201").size() == 5**6
    assert nas.create_space("tiny").size() == (4 + 16) ** 2 * 3
    per_stage = 9**2 + 9**3 + 9**4
    assert nas.create_space("ofa_mbv3_w1.0").size() == per_stage**5 * 25


def test_size_matches_enumeration_of_keys() -> None:
    space = toy()
    sizes = [len(c.values) for c in space.choices]
    keys = {space.from_indices(np.unravel_index(i, sizes)).key for i in range(int(np.prod(sizes)))}
    assert len(keys) == space.size()


def test_largest_smallest(space: SearchSpace) -> None:
    big, small = space.largest(), space.smallest()
    space.validate(big)
    space.validate(small)
    for c in space.choices:
        assert big[c.name] == c.values[-1]
        assert small[c.name] == c.values[0]


@settings(max_examples=30, deadline=None)
@given(seed=seeds)
def test_sample_json_round_trip(space: SearchSpace, seed: int) -> None:
    arch = space.sample(np.random.default_rng(seed))
    again = space.from_json(arch.to_json())
    assert again == arch
    assert again.key == arch.key
    assert hash(again) == hash(arch)
    assert json.loads(arch.to_json())["space"] == space.name


@settings(max_examples=30, deadline=None)
@given(seed=seeds)
def test_mutate_and_crossover_stay_in_space(space: SearchSpace, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng), space.sample(rng)
    child = space.crossover(a, b, rng)
    space.validate(child)
    for name in space.names:
        assert child[name] in (a[name], b[name])
    mutant = space.mutate(a, rng, prob=0.3)
    space.validate(mutant)
    assert space.mutate(a, rng, prob=0.0) == a


@settings(max_examples=20, deadline=None)
@given(seed=seeds)
def test_key_ignores_inactive_dimensions(seed: int) -> None:
    space = nas.create_space("ofa_mbv3_w1.0")
    arch = space.sample(np.random.default_rng(seed)).replace(space, **{"s1.depth": 2})
    changed = arch.replace(space, **{"s1.b3.kernel": 3 if arch["s1.b3.kernel"] != 3 else 7})
    assert changed != arch  # the config differs ...
    assert changed.key == arch.key  # ... but the network does not
    assert np.array_equal(space.encode([changed]), space.encode([arch]))
    active = arch.replace(space, **{"s1.b0.kernel": 3 if arch["s1.b0.kernel"] != 3 else 7})
    assert active.key != arch.key


def test_encode_onehot_shape_and_inactive_zeroed() -> None:
    space = toy()
    arch = space.arch({"s1.depth": 1, "s1.b0.kernel": 5, "s1.b1.kernel": 5, "s1.b2.kernel": 3,
                       "resolution": 48})
    x = space.encode([arch, space.largest()])
    names = space.encoding_names()
    assert x.shape == (2, len(names))
    row = dict(zip(names, x[0]))
    assert row["s1.depth=1"] == 1 and row["s1.b0.kernel=5"] == 1 and row["resolution=48"] == 1
    assert row["s1.b1.kernel=3"] == row["s1.b1.kernel=5"] == 0  # block 1 is skipped
    assert row["s1.b2.kernel=3"] == 0
    assert x[0].sum() == 3  # depth, one block, resolution
    assert x[1].sum() == len(space.choices)


def test_encode_ordinal(space: SearchSpace) -> None:
    archs = space.sample_many(50, np.random.default_rng(0))
    x = space.encode(archs, "ordinal")
    assert x.shape == (50, len(space.choices))
    assert ((x >= 0) & (x <= 1)).all()
    with pytest.raises(ValueError, match="encoding"):
        space.encode(archs, "bogus")  # type: ignore[arg-type]


def test_encode_is_vectorised_and_fast() -> None:
    space = nas.create_space("ofa_mbv3_w1.0")
    archs = space.sample_many(5000, np.random.default_rng(0))
    x = space.encode(archs)
    assert x.shape == (5000, 160)
    assert np.allclose(x.sum(1), space.encode(archs, "ordinal").astype(bool).sum(1))


def test_neighbours_differ_in_one_active_dimension() -> None:
    space = nas.create_space("nb201")
    arch = space.sample(np.random.default_rng(3))
    near = space.neighbours(arch)
    assert len(near) == 6 * 4
    assert all(sum(n[d] != arch[d] for d in space.names) == 1 for n in near)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        ({"s1.depth": 4}, r"s1\.depth: 4 is not allowed; allowed values are \[1, 2, 3\]"),
        ({"resolution": "48"}, r"resolution: '48' is not allowed"),
        ({"s1.b9.kernel": 3}, r"unknown dimensions \['s1\.b9\.kernel'\]"),
    ],
)
def test_invalid_values_name_dimension_and_allowed(values: dict, pattern: str) -> None:
    space = toy()
    base = space.largest().to_dict()
    with pytest.raises(InvalidArchError, match=pattern):
        space.arch({**base, **values})


def test_missing_dimension_and_wrong_type() -> None:
    space = toy()
    base = space.largest().to_dict()
    del base["resolution"]
    with pytest.raises(InvalidArchError, match=r"missing dimensions \['resolution'\]"):
        space.arch(base)
    with pytest.raises(InvalidArchError, match="mapping"):
        space.arch([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(InvalidArchError, match="space 'tiny'"):
        space.validate(nas.create_space("tiny").largest())
    assert issubclass(InvalidArchError, ValueError)


def test_from_json_errors() -> None:
    space = toy()
    with pytest.raises(InvalidArchError, match="does not parse"):
        space.from_json("{not json")
    with pytest.raises(InvalidArchError, match="for space 'nb201'"):
        space.from_json(nas.create_space("nb201").largest().to_json())


def test_numpy_values_are_accepted_and_unwrapped() -> None:
    space = toy()
    arch = space.arch({k: np.int64(v) for k, v in space.largest().to_dict().items()})
    assert arch == space.largest()
    assert all(type(v) is int for v in arch.to_dict().values())


def test_choice_rejects_empty_and_duplicate_values() -> None:
    with pytest.raises(ValueError):
        choice("x", [])
    with pytest.raises(ValueError):
        choice("x", [1, 1])
    with pytest.raises(ValueError, match="unknown dimension"):
        SearchSpace("bad", [choice("a", [1], when=Condition(dim="nope", at_least=1))])


def test_fingerprint_distinguishes_spaces() -> None:
    prints = {nas.create_space(n).fingerprint() for n in SPACES}
    assert len(prints) == len(SPACES)
    assert nas.create_space("tiny").fingerprint() == nas.create_space("tiny").fingerprint()


def test_arch_config_is_a_frozen_mapping() -> None:
    arch = toy().largest()
    assert isinstance(arch, ArchConfig)
    assert list(arch) == list(toy().names)
    assert len(arch) == len(toy().choices)
    assert arch.get("nope", 7) == 7
    with pytest.raises(KeyError):
        arch["nope"]
    with pytest.raises(AttributeError):
        arch.space = "x"  # type: ignore[misc]
