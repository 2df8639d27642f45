"""Foreign formats: OFA dicts (MobileNetV3, ResNet50) and NAS-Bench-201 cell strings."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nas
from nas.space import InvalidArchError

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=25, deadline=None)
@given(seed=seeds)
@pytest.mark.parametrize("name", ["ofa_mbv3_w1.0", "ofa_resnet50"])
def test_ofa_round_trip(name: str, seed: int) -> None:
    space = nas.create_space(name)
    arch = space.sample(np.random.default_rng(seed))
    assert space.from_ofa(space.to_ofa(arch)) == arch


def test_mbv3_from_ofa_accepts_list_resolution_and_image_size() -> None:
    space = nas.create_space("ofa_mbv3_w1.0")
    cfg = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5}
    assert space.from_ofa({**cfg, "r": [224]}) == space.largest()
    assert space.from_ofa({**cfg, "image_size": 224}) == space.largest()
    assert space.to_ofa(space.largest()) == {**cfg, "r": 224}


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        ({"ks": [7] * 19, "e": [6] * 20, "d": [4] * 5, "r": 224}, "'ks' must be a list of 20"),
        ({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5}, "needs a resolution"),
        ({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": [224, 192]}, "must be one int"),
        ({"ks": [7] * 20, "e": [5] * 20, "d": [4] * 5, "r": 224}, r"expand: 5 is not allowed"),
        ({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 225}, r"resolution: 225"),
        ({"ks": ["7"] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}, "must hold ints"),
    ],
)
def test_mbv3_from_ofa_errors(config: dict, pattern: str) -> None:
    with pytest.raises(InvalidArchError, match=pattern):
        nas.create_space("ofa_mbv3_w1.0").from_ofa(config)


def test_resnet_from_ofa_semantics() -> None:
    space = nas.create_space("ofa_resnet50")
    cfg = {"d": [2, 2, 2, 2, 2], "e": [0.35] * 18, "w": [2] * 6, "r": 224}
    assert space.from_ofa(cfg) == space.largest()
    small = space.from_ofa({"d": [0] * 5, "e": [0.2] * 18, "w": [0] * 6, "r": [128]})
    assert small == space.smallest()
    assert small["s3.depth"] == 4 and small["stem.depth"] == 2
    with pytest.raises(InvalidArchError, match=r"w\[0\]=3"):
        space.from_ofa({**cfg, "w": [3] + [2] * 5})


def test_nb201_parse_format_round_trip_on_real_table() -> None:
    table = DATA / "nas_bench_201" / "nb201_cifar10_latency.csv"
    if not table.exists():
        pytest.skip("shared data not available")
    space = nas.create_space("nb201")
    cells = pd.read_csv(table, usecols=["arch"])["arch"]
    archs = [space.parse(c) for c in cells]
    assert len({a.key for a in archs}) == 15_625
    assert all(space.format(a) == c for a, c in zip(archs[:500], cells[:500]))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("|nor_conv_3x3~0|+|none~0|skip_connect~1|", "3 '\\+'-separated"),
        ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 inputs"),
        ("|nor_conv_3x3~1|+|none~0|skip_connect~1|+|none~0|none~1|none~2|", "'<op>~0'"),
        ("|conv_9x9~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|", "conv_9x9"),
        (42, "string"),
    ],
)
def test_nb201_parse_errors(text: object, pattern: str) -> None:
    with pytest.raises(InvalidArchError, match=pattern):
        nas.create_space("nb201").parse(text)  # type: ignore[arg-type]


def test_dynast_configs_all_parse() -> None:
    table = DATA / "ofa_mobilenet_v3" / "dynast_imagenet_subnets.csv"
    if not table.exists():
        pytest.skip("shared data not available")
    space = nas.create_space("ofa_mbv3_w1.0")
    rows = pd.read_csv(table)
    for _, row in rows.iterrows():
        cfg = {k: ast.literal_eval(str(row[k])) for k in ("ks", "e", "d")}
        arch = space.from_ofa({**cfg, "r": int(row["r"])})
        assert space.to_ofa(arch)["d"] == cfg["d"]
