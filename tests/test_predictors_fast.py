"""The fast prediction paths: index matrices instead of ArchConfigs, gather-sum first layers.

``predict_indices`` must give exactly what ``predict`` gives, and the float32 chunked MLP must
agree with a plain float64 evaluation of its stored weights to float32 precision. The
lookup-table latency's compiled slots must reproduce its per-layer loop exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

import nas
import predictors.mlp as mlp_module
from nas.hardware import distinct_layers
from nas.layers import LayerSpec
from nas.registry import REGISTRY
from predictors import create_predictor, load_predictor, save_predictor
from predictors.encoding import arch_indices, check_indices, encode, encode_indices
from predictors.io import latency_predictor
from predictors.lookup_table import LookupTablePredictor, UnknownLayerError, compile_layout
from predictors.mlp import MLPPredictor

OFA = nas.create_space("ofa_mbv3_w1.0")
TINY = nas.create_space("tiny")


def _reference_mlp(p: MLPPredictor, X: np.ndarray) -> np.ndarray:
    """The MLP as stored, in float64 without any folding or gathering."""
    h = (X - p._x_mean) / p._x_scale
    for i, (w, b) in enumerate(zip(p._weights, p._biases)):
        h = h @ w.astype(np.float64) + b
        if i < len(p._weights) - 1:
            h = np.maximum(h, 0.0)
    out = p._base + p._y_scale * h[:, 0]
    return np.exp(out) if p.log_target else out


@pytest.mark.parametrize("space_name", ["tiny", "nb201", "ofa_mbv3_w1.0", "ofa_resnet50"])
def test_arch_indices_match_space_indices(space_name: str) -> None:
    space = nas.create_space(space_name)
    archs = space.sample_many(300, np.random.default_rng(1))
    idx = arch_indices(space, archs)
    np.testing.assert_array_equal(idx, space.indices(archs))
    full = space.indices(archs, fill_inactive=False)
    np.testing.assert_array_equal(check_indices(space, full), idx)
    np.testing.assert_array_equal(check_indices(space, idx), idx)  # idempotent
    for encoder in ("onehot", "features", "compact", "ordinal", "onehot+ordinal"):
        want = encode(space, archs, encoder)
        np.testing.assert_array_equal(encode_indices(space, idx, encoder), want)


def test_check_indices_rejects_bad_rows() -> None:
    rows = OFA.indices(OFA.sample_many(3, np.random.default_rng(0)), fill_inactive=False)
    always_active = OFA.names.index("s1.depth")
    bad = rows.copy()
    bad[1, always_active] = -1
    with pytest.raises(ValueError, match=r"s1\.depth: index -1 .* active"):
        check_indices(OFA, bad)
    bad = rows.copy()
    bad[0, 0] = -2
    with pytest.raises(ValueError, match="out of range"):
        check_indices(OFA, bad)
    with pytest.raises(ValueError, match="shape"):
        check_indices(OFA, rows[0])
    with pytest.raises(ValueError, match="ArchConfig"):
        arch_indices(OFA, [rows[0]])  # type: ignore[list-item]
    other = nas.create_space("nb201").sample_many(2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="space 'nb201'"):
        arch_indices(OFA, other)


@pytest.mark.parametrize("encoder", ["onehot", "features", "onehot+ordinal", "compact"])
def test_mlp_fast_paths_match_float64_reference(
    encoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mlp_module, "CHUNK_PER_THREAD", 37)  # many chunks, a ragged last one
    rng = np.random.default_rng(0)
    archs = OFA.sample_many(400, rng)
    y = 70 + rng.random(400)
    p = create_predictor("mlp", space=OFA, encoder=encoder, hidden=(48, 40), epochs=3,
                         log_target=encoder == "onehot+ordinal")
    assert isinstance(p, MLPPredictor)
    p.fit(archs[:200], y[:200])
    want = _reference_mlp(p, p.encode(archs))
    got = p.predict(archs)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(p.predict_features(p.encode(archs)), want, rtol=1e-6)
    rows = OFA.indices(archs, fill_inactive=False)
    np.testing.assert_array_equal(p.predict_indices(rows), got)
    # inactive positions do not matter
    col = OFA.names.index("s1.b3.kernel")
    inactive = OFA.indices(archs)[:, col] == -1
    assert 0 < inactive.sum() < len(archs)
    rows[inactive, col] = (rows[inactive, col] + 1) % len(OFA.choices[col].values)
    np.testing.assert_array_equal(p.predict_indices(rows), got)


def test_mlp_save_load_predicts_identically(tmp_path: object) -> None:
    rng = np.random.default_rng(2)
    archs = OFA.sample_many(150, rng)
    p = create_predictor("mlp", space=OFA, hidden=(16,), epochs=2).fit(archs, rng.random(150))
    save_predictor(p, tmp_path / "mlp")  # type: ignore[operator]
    again = load_predictor(tmp_path / "mlp", OFA)  # type: ignore[operator]
    np.testing.assert_array_equal(again.predict(archs), p.predict(archs))
    np.testing.assert_array_equal(again.predict_indices(OFA.indices(archs)), p.predict(archs))


def test_mlp_predict_indices_before_fit() -> None:
    from predictors import NotFittedError

    with pytest.raises(NotFittedError):
        MLPPredictor(OFA).predict_indices(OFA.indices(OFA.sample_many(2, np.random.default_rng(0))))


@pytest.mark.parametrize("kind,encoder", [("ridge", "onehot"), ("ridge", "features"),
                                          ("huber", "compact"), ("ridge", "onehot+ordinal")])
def test_linear_gather_matches_matrix_product(kind: str, encoder: str) -> None:
    rng = np.random.default_rng(3)
    archs = OFA.sample_many(300, rng)
    y = 5 + rng.random(300)
    p = create_predictor(kind, space=OFA, encoder=encoder, log_target=True).fit(archs, y)
    dense = p.predict_features(p.encode(archs))
    np.testing.assert_allclose(p.predict(archs), dense, rtol=1e-12)
    np.testing.assert_array_equal(p.predict_indices(OFA.indices(archs)), p.predict(archs))


def test_mlp_prediction_throughput() -> None:
    """A loose floor (the bench measures the goal): 20,000 OFA archs well under 2 s."""
    import time

    rng = np.random.default_rng(4)
    archs = OFA.sample_many(20_000, rng)
    p = create_predictor("mlp", space=OFA, epochs=1).fit(archs[:300], rng.random(300))
    p.predict(archs[:100])
    start = time.perf_counter()
    p.predict(archs)
    assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------------ lookup-table latency
def _loop_ms(p: LookupTablePredictor, archs: list[nas.ArchConfig]) -> np.ndarray:
    """The per-layer Python loop (the reference the vectorised path must reproduce)."""
    return p.predict_features(p.layer_features(archs))


@pytest.mark.parametrize("space_name", ["ofa_mbv3_w1.0", "tiny"])
def test_lut_vectorised_equals_per_layer_loop(space_name: str) -> None:
    space = nas.create_space(space_name)
    if space_name == "tiny":
        table = {s.key: 1e-6 * s.macs() + 0.01 for s in distinct_layers(space, num_classes=10)}
        p = LookupTablePredictor(space, table=table, num_classes=10)
    else:  # the measured table and its fitted correction
        found = latency_predictor(nas.load_profile("ofa_mbv3_local_cpu_t1"), space)
        assert isinstance(found, LookupTablePredictor)
        p = found
    layers = REGISTRY.entry(space_name).layers
    assert layers is not None
    assert compile_layout(space, layers, p.num_classes) is not None
    assert p.vectorised  # the fast path is taken
    archs = [space.smallest(), space.largest(), *space.sample_many(2000, np.random.default_rng(5))]
    want = _loop_ms(p, archs)
    np.testing.assert_array_equal(p.predict(archs), want)
    np.testing.assert_array_equal(p.predict_indices(space.indices(archs)), want)
    full = space.indices(archs, fill_inactive=False)  # inactive positions hold any value
    np.testing.assert_array_equal(p.predict_indices(full), want)
    np.testing.assert_array_equal(p.encode(archs), p.layer_features(archs))
    p.fit(archs[:50], 1.5 * want[:50] + 0.2)  # a new correction applies to both paths
    np.testing.assert_allclose(p.predict_indices(full), _loop_ms(p, archs), rtol=1e-12)


def test_lut_vectorised_unknown_layer_names_the_key() -> None:
    table = {s.key: 1.0 for s in distinct_layers(TINY, num_classes=10)}
    table.pop(next(k for k in table if k.startswith("mbconv")))
    p = LookupTablePredictor(TINY, table=table, num_classes=10)
    idx = TINY.indices(TINY.sample_many(200, np.random.default_rng(0)))
    with pytest.raises(UnknownLayerError, match=r"layer 'mbconv\|.*not in the lookup table"):
        p.predict_indices(idx)


def test_lut_layout_refuses_what_slots_cannot_express() -> None:
    layers = REGISTRY.entry("tiny").layers
    assert layers is not None

    def depth_tagged(space: nas.SearchSpace, arch: nas.ArchConfig, num_classes: int) -> list:
        # the head's key changes with a stage depth, which only gates blocks in a layout
        specs = list(layers(space, arch, num_classes))
        return [*specs[:-1], LayerSpec(kind="linear", in_channels=int(arch["s1.depth"]))]

    assert compile_layout(TINY, depth_tagged, 10, check=50) is None


def test_lut_falls_back_where_no_layout_fits() -> None:
    space = nas.create_space("ofa_resnet50")  # stem.depth adds a layer without conditions
    layers = REGISTRY.entry("ofa_resnet50").layers
    assert layers is not None
    archs = space.sample_many(30, np.random.default_rng(2))
    table = {s.key: 1e-9 * s.macs() + 0.01 for a in archs for s in layers(space, a, 1000)}
    p = LookupTablePredictor(space, table=table)
    assert compile_layout(space, layers, 1000) is None
    assert not p.vectorised
    np.testing.assert_array_equal(p.predict_indices(space.indices(archs)), _loop_ms(p, archs))
