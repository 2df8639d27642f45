"""Latency lookup tables per (layer, precision), timed in ONNX Runtime as quantized exports
deploy (issue 14, Deliver 4): tagged keys, counting, the ORT build, refusals, the CLI and the
profile's runtime version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nas
from nas.cli import main
from nas.errors import ConfigError
from nas.hardware import HardwareProfile, build_lookup_table, load_profile, measure_subnets
from nas.hardware.profile import Provenance, list_profiles, runtime_version
from nas.quantization.layers import bits_of, quantized_weights
from nas.registry import REGISTRY
from nas.space import SearchSpace
from predictors import create_predictor

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional dependency")

QSPACE = nas.create_space("tiny+q8-32b")
BASE = nas.create_space("tiny")


def _layers(space: Any, arch: Any) -> list[Any]:
    layers = REGISTRY.entry(space.name).layers
    assert layers is not None
    return layers(space, arch, 10)


def _base_arch(arch: Any) -> Any:
    return BASE.arch({k: v for k, v in arch.to_dict().items() if not k.endswith(".bits")})


def _all_bits(space: Any, bits: int, **values: Any) -> Any:
    full = {**space.largest().to_dict(), **{n: bits for n in space.names if n.endswith("bits")}}
    return space.arch({**full, **values})


def _ops(data: bytes) -> list[str]:
    return [n.op_type for n in onnx.load_from_string(data).graph.node]


def _dequantized_convs(data: bytes) -> set[str]:
    """The Conv weights read through a DequantizeLinear (i.e. quantized)."""
    model = onnx.load_from_string(data)
    dq = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {dq[n.input[1]].removesuffix("_quantized") for n in model.graph.node
            if n.op_type == "Conv" and n.input[1] in dq}


# ------------------------------------------------------------------ keys and counting
def test_tagged_keys_differ_by_precision_and_float_keys_equal_the_base() -> None:
    arch = _all_bits(QSPACE, 32, **{"s1.b0.bits": 8})
    tagged, base = _layers(QSPACE, arch), _layers(BASE, _base_arch(arch))
    assert len(tagged) == len(base)
    diff = [(t.key, b.key) for t, b in zip(tagged, base) if t.key != b.key]
    assert len(diff) == 1 and diff[0][0] == diff[0][1] + "|bits=8"  # s1.b0's mbconv only
    assert [bits_of(s) for s in tagged] == [32, 32, 8] + [32] * (len(tagged) - 3)
    assert tagged[2].kind == "mbconv"
    floats = _all_bits(QSPACE, 32)
    assert [s.key for s in _layers(QSPACE, floats)] == [s.key for s in
                                                         _layers(BASE, _base_arch(floats))]


def test_stage_granularity_tags_every_block_of_the_stage() -> None:
    space = nas.create_space("tiny+q8-32s")
    arch = space.arch({**space.largest().to_dict(), "s1.bits": 32, "s2.bits": 8})
    assert [bits_of(s) for s in _layers(space, arch) if s.kind == "mbconv"] == [32, 32, 32, 8, 8]


def test_counting_is_unchanged_by_the_tags() -> None:
    for arch in QSPACE.sample_many(30, np.random.default_rng(0)):
        q, b = nas.count(QSPACE, arch, 10), nas.count(BASE, _base_arch(arch), 10)
        assert (q["params"], q["macs"]) == (b["params"], b["macs"])


def test_lut_predictor_sums_per_precision_entries_vectorised() -> None:
    specs = {s.key: s for a in QSPACE.sample_many(300, np.random.default_rng(1))
             for s in _layers(QSPACE, a)}
    table = {k: (2.0 if bits_of(s) < 32 else 1.0) + 0.01 * i
             for i, (k, s) in enumerate(sorted(specs.items()))}
    p = create_predictor("lut", space=QSPACE, table=table, num_classes=10)
    archs = QSPACE.sample_many(40, np.random.default_rng(2))
    assert p.vectorised  # type: ignore[attr-defined]
    np.testing.assert_allclose(p.predict(archs), p.layer_sum(archs)[:, 0])  # type: ignore[attr-defined]
    int8, fp32 = _all_bits(QSPACE, 8), _all_bits(QSPACE, 32)
    assert p.predict([int8])[0] > p.predict([fp32])[0]


def test_precision_runs_skip_absent_slots() -> None:
    from predictors.lookup_table import precision_runs

    low = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 0], [1, 0, 1, 1]], dtype=bool)
    present = np.array([[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1], [1, 0, 1, 1]], dtype=bool)
    # rows 1 and 3: absent slots between low layers join them into one run
    np.testing.assert_array_equal(precision_runs(low, present), [2, 1, 0, 1])


def test_precision_correction_counts_low_layers_and_runs_on_both_paths() -> None:
    specs = {s.key: s for a in QSPACE.sample_many(300, np.random.default_rng(1))
             for s in _layers(QSPACE, a)}
    table = {k: 1.0 + 0.01 * i for i, k in enumerate(sorted(specs))}
    p: Any = create_predictor("lut", space=QSPACE, table=table, num_classes=10)
    assert p.correction == "precision"  # the default for a table with int8 entries
    archs = [_all_bits(QSPACE, 8), _all_bits(QSPACE, 32), *QSPACE.sample_many(
        200, np.random.default_rng(3))]
    features = p.layer_features(archs)
    np.testing.assert_array_equal(p.encode(archs), features)  # vectorised == the loop
    blocks = [n for n in QSPACE.names if n.endswith(".bits")]
    assert features[0, 2] == len(blocks) and features[0, 3] == 1  # all int8: one run
    assert features[1, 2] == features[1, 3] == 0
    alternating = _all_bits(QSPACE, 32, **{b: (8, 32)[i % 2] for i, b in enumerate(blocks)})
    assert p.layer_features([alternating])[0, 3] == (len(blocks) + 1) // 2
    # whole networks that pay one quantize/dequantize pair per run, not per layer
    truth = features[:, 0] - 0.3 * features[:, 2] + 0.3 * features[:, 3] + 0.05
    p.fit(archs[:100], truth[:100])
    np.testing.assert_allclose(p.predict(archs[100:]), truth[100:], atol=1e-3)
    linear: Any = create_predictor("lut", space=QSPACE, table=table, num_classes=10,
                                   correction="linear")
    linear.fit(archs[:100], truth[:100])
    assert np.abs(linear.predict(archs[100:]) - truth[100:]).max() > 0.05


def test_a_float_table_keeps_the_linear_correction_and_old_states_load() -> None:
    from predictors.lookup_table import LookupTablePredictor

    table = {s.key: 1.0 for s in _layers(BASE, BASE.largest())}
    p = LookupTablePredictor(BASE, table=table, num_classes=10)
    assert p.correction == "linear"
    p._set_state({"intercept": 0.5}, {"coef": np.array([2.0, 0.1])})  # saved with two
    arch = BASE.largest()
    total, count = p.layer_sum([arch])[0]
    assert p.predict([arch])[0] == pytest.approx(2.0 * total + 0.1 * count + 0.5)


def test_quantized_weights_of_an_mbconv_spec() -> None:
    arch = _all_bits(QSPACE, 8)
    mbconvs = [s for s in _layers(QSPACE, arch) if bits_of(s) == 8]
    assert len(mbconvs) == 4
    names = {n for n, _ in mbconvs[0].build().named_parameters()}
    weights = quantized_weights(QSPACE, mbconvs[0])
    assert weights == ["expand.conv.weight", "depthwise.conv.weight", "project.conv.weight"]
    assert set(weights) <= names
    assert quantized_weights(QSPACE, _layers(QSPACE, arch)[0]) == []  # the float stem


# ------------------------------------------------------------------ timing in ORT
def _two_specs() -> list[Any]:
    """The smallest elastic block of tiny, at 8 and at 32 bits."""
    arch = _all_bits(QSPACE, 8, resolution=16, **{"s1.depth": 1, "s2.depth": 1})
    q = _layers(QSPACE, arch)[2]
    f = _layers(BASE, _base_arch(arch))[2]
    return [q, f]


@pytest.mark.slow  # the first dynamo ONNX export of a process takes ~5 s (imports)
def test_ort_build_times_int8_layers_quantized_and_float_layers_float(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    specs = _two_specs()
    monkeypatch.setattr("nas.hardware.build.distinct_layers", lambda *a, **k: specs)
    exported: dict[str, bytes] = {}
    timed: list[bytes] = []
    real_export, real_time = nas.hardware.build.deployed_layer, nas.hardware.build.measure_onnx

    def export(space: Any, spec: Any, module: Any, x: Any) -> bytes:
        assert spec.key not in exported  # exported once, kept for the second round
        exported[spec.key] = real_export(space, spec, module, x)
        return exported[spec.key]

    def time(model: Any, x: Any, **kwargs: Any) -> Any:
        timed.append(model)
        return real_time(model, x, **kwargs)

    monkeypatch.setattr("nas.hardware.build.deployed_layer", export)
    monkeypatch.setattr("nas.hardware.build.measure_onnx", time)
    table = build_lookup_table(QSPACE, runtime="onnxruntime", num_classes=10, warmup=1,
                               repeats=3, partial_path=tmp_path / "partial.json", rounds=2)
    assert list(table) == [specs[0].key, specs[1].key]
    assert specs[0].key.endswith("|bits=8") and "bits" not in specs[1].key
    assert all(v["median_ms"] > 0 and v["repeats"] == 6 for v in table.values())
    assert len(timed) == 4 and set(timed) == set(exported.values())
    int8, fp32 = exported[specs[0].key], exported[specs[1].key]
    assert _dequantized_convs(int8) == {"expand.conv.weight", "depthwise.conv.weight",
                                        "project.conv.weight"}
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(_ops(int8))
    assert not {"QuantizeLinear", "DequantizeLinear"} & set(_ops(fp32))
    saved = json.loads((tmp_path / "partial.json").read_text())
    assert set(saved["layers"]) == set(table)


def test_torch_runtime_refuses_int8_layers_and_subnets() -> None:
    with pytest.raises(ConfigError, match="no int8 kernels") as info:
        build_lookup_table(QSPACE, runtime="torch", num_classes=10)
    assert "\n" not in str(info.value) and "[8]" in str(info.value)
    with pytest.raises(ConfigError, match="no int8 kernels"):
        measure_subnets(QSPACE, [_all_bits(QSPACE, 8)], runtime="torch", num_classes=10)


def test_a_family_without_layer_groups_gets_no_precision_blind_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nas.quantization import layers

    # the MobileNetV3 family as one that registers quantization support but no layer groups
    monkeypatch.delitem(layers._GROUPS, "mobilenetv3")
    assert all(bits_of(s) == 32 for s in _layers(QSPACE, _all_bits(QSPACE, 8)))  # untagged
    with pytest.raises(ConfigError, match="registers no layer groups") as info:
        build_lookup_table(QSPACE, runtime="onnxruntime", num_classes=10)
    assert "'mobilenetv3'" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_ort_subnets_are_timed_as_export_quantized_writes_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    from nas.data import load_digits
    from nas.quantization import export_quantized

    timed: list[bytes] = []
    real = nas.hardware.build.measure_onnx

    def spy(model: Any, x: Any, **kwargs: Any) -> Any:
        timed.append(model)
        return real(model, x, **kwargs)

    monkeypatch.setattr("nas.hardware.build.measure_onnx", spy)
    arch = _all_bits(QSPACE, 32, resolution=16, **{"s1.b0.bits": 8, "s2.b1.bits": 8})
    rows = measure_subnets(QSPACE, [arch], runtime="onnxruntime", num_classes=10, warmup=1,
                           repeats=3, calibration=load_digits())
    assert rows[0]["median_ms"] > 0
    supernet = nas.create_supernet(QSPACE.name, num_classes=10).eval()
    out = export_quantized(supernet, arch, tmp_path / "q", load_digits())
    written = (out / "model.onnx").read_bytes()
    assert _ops(timed[0]) == _ops(written)
    assert _dequantized_convs(timed[0]) == _dequantized_convs(written) == {
        f"blocks.{i}.{c}.conv.weight" for i in (1, 4) for c in ("expand", "depthwise", "project")}


# ------------------------------------------------------------------ CLI
B = ["profile", "build", "--name", "q", "--num-classes", "10"]


@pytest.mark.parametrize(("argv", "expected"), [
    ([*B, "--space", "tiny", "--bits", "32,8"], "--runtime onnxruntime"),
    ([*B, "--space", "tiny", "--bits", "32,4", "--runtime", "onnxruntime"], "not offered"),
    ([*B, "--space", "tiny", "--bits", "32,eight", "--runtime", "onnxruntime"], "--bits"),
    ([*B, "--space", "tiny+q8-32b", "--bits", "8", "--runtime", "onnxruntime"],
     "quantized already"),
    ([*B, "--space", "tiny+q8-32b", "--bits", "32,8", "--granularity", "stage",
      "--runtime", "onnxruntime"], "quantized already"),
    ([*B, "--space", "tiny", "--granularity", "stage"], "--granularity needs --bits"),
    ([*B, "--space", "tiny+q8-32b"], "no int8 kernels"),
    ([*B, "--space", "nb201", "--bits", "32,8", "--runtime", "onnxruntime"],
     "no quantizable layers"),
])
def test_profile_build_bits_bad_input(argv: list[str], expected: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_cli_build_and_measure_a_quantized_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI path end to end on a table cut down to the layers of 4 small subnets."""
    from nas.hardware.build import distinct_layers

    archs = [_all_bits(QSPACE, b, resolution=16, **{"s1.depth": 1, "s2.depth": d})
             for b in (8, 32) for d in (1, 2)]
    keys = {s.key for a in archs for s in _layers(QSPACE, a)}
    monkeypatch.setattr("nas.hardware.build.distinct_layers", lambda space, **k: [
        s for s in distinct_layers(space, **k) if s.key in keys])
    monkeypatch.setattr(SearchSpace, "sample_many",  # validate and measure time these
                        lambda self, n, rng: [self.arch(a.to_dict()) for a in archs][:n])
    code = main(["profile", "build", "--space", "tiny", "--bits", "32,8", "--runtime",
                 "onnxruntime", "--name", "q8", "--out", str(tmp_path), "--num-classes", "10",
                 "--warmup", "1", "--repeats", "3", "--validate", "4"])
    assert code == 0
    assert "corrected_holdout" in capsys.readouterr().out
    profile = load_profile(tmp_path / "q8.json")
    model = profile.latency["tiny+q8-32b"]
    assert profile.runtime == "onnxruntime" and profile.runtime_version == ort.__version__
    assert set(model.lut) == keys and model.predictor is not None
    assert any(k.endswith("bits=8") for k in model.lut)
    code = main(["profile", "measure", "--profile", str(tmp_path / "q8.json"), "--space",
                 "tiny+q8-32b", "--n", "4", "--warmup", "1", "--repeats", "3", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["n"] == 4


# ------------------------------------------------------------------ profile runtime version
def test_profile_records_the_runtime_version_and_old_profiles_load() -> None:
    prov = Provenance(source="tests", licence="CC0-1.0")
    p = HardwareProfile(name="q", kind="cpu", device="here", runtime="onnxruntime",
                        runtime_version="1.32.0", provenance=prov)
    assert p.to_dict()["runtime_version"] == "1.32.0"
    assert HardwareProfile.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    old = {k: v for k, v in p.to_dict().items() if k != "runtime_version"}
    assert HardwareProfile.from_dict(old).runtime_version == ""
    assert "runtime_version" not in HardwareProfile.from_dict(old).to_dict()  # form kept
    for name in [n for n in list_profiles() if n.startswith(("nb201_", "ofa_mbv3_"))][:3]:
        assert load_profile(name).runtime_version == ""
    assert runtime_version("onnxruntime") == ort.__version__
    assert runtime_version("tflite") == ""
    with pytest.raises(nas.errors.ProfileError, match="runtime_version"):
        HardwareProfile(name="q", kind="cpu", device="d", runtime="torch",
                        runtime_version="1 2", provenance=prov)


def test_profile_show_prints_the_runtime_version(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from nas.hardware import LatencyModel, save_profile

    profile = HardwareProfile(
        name="q", kind="cpu", device="here", runtime="onnxruntime", runtime_version="1.32.0",
        provenance=Provenance(source="tests", licence="CC0-1.0"),
        latency={"tiny": LatencyModel(space="tiny", lut={"conv|x": 1.0})})
    path = save_profile(profile, tmp_path)
    assert main(["profile", "show", str(path)]) == 0
    assert "onnxruntime 1.32.0" in capsys.readouterr().out
    assert main(["profile", "show", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runtime_version"] == "1.32.0"
