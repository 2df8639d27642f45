"""Latency lookup tables per (layer, precision) of weight-only quantized transformer spaces
(ViT, GPT, LLaMA; issue 14, Deliver 4): tagged keys, composite per-linear tags, the
``MatMulNBits`` layer models timed in ONNX Runtime, the predictor's sums and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nas
from nas.cli import main
from nas.errors import ConfigError
from nas.hardware import build_lookup_table, load_profile, measure_subnets
from nas.hardware.quantized import deployed_layer, input_tensor, timed_seq_len
from nas.quantization import policy_of
from nas.quantization.layers import bits_of, key_bits, quantized_weight_bits, unit_bits
from nas.registry import REGISTRY
from nas.space import SearchSpace
from predictors import create_predictor

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional dependency")

VIT = nas.create_space("vit_mini+q4-8-32b")
VIT_BASE = nas.create_space("vit_mini")
LINEARS = {"gelu": ("qkv", "proj", "fc1", "fc2"), "gelu_tanh": ("qkv", "proj", "fc1", "fc2"),
           "swiglu": ("qkv", "proj", "gate", "up", "down")}


def _layers(space: Any, arch: Any) -> list[Any]:
    layers = REGISTRY.entry(space.name).layers
    assert layers is not None
    return layers(space, arch, 10)


def _base(space: Any) -> Any:
    return nas.create_space(space.meta["quantization"]["base"])


def _base_arch(space: Any, arch: Any) -> Any:
    return _base(space).arch({k: v for k, v in arch.to_dict().items()
                              if not k.endswith(".bits")})


def _all_bits(space: Any, bits: int, **values: Any) -> Any:
    full = {**space.largest().to_dict(), **{n: bits for n in space.names if n.endswith("bits")}}
    return space.arch({**full, **values})


def _parts(key: str) -> set[str]:
    return set(key.split("|"))


# ------------------------------------------------------------------ keys
@pytest.mark.parametrize("name", ["vit_mini+q4-8-32b", "gpt_tiny+q4-8-32b", "llama_tiny+q4-8-32b"])
def test_tagged_keys_differ_by_precision_and_float_keys_equal_the_base(name: str) -> None:
    space = nas.create_space(name)
    arch = _all_bits(space, 32, **{"l0.bits": 4, "l2.bits": 8})
    tagged, base = _layers(space, arch), _layers(_base(space), _base_arch(space, arch))
    assert len(tagged) == len(base)
    blocks = [i for i, s in enumerate(base) if s.kind == "transformer_block"]
    assert len(blocks) == int(arch["depth"])
    diff = {i: _parts(t.key) - _parts(b.key) for i, (t, b) in enumerate(zip(tagged, base))
            if t.key != b.key}
    assert diff == {blocks[0]: {"bits=4"}, blocks[2]: {"bits=8"}}  # those blocks only
    assert [key_bits(s.key) for s in tagged] == [bits_of(s) for s in tagged]
    floats = _all_bits(space, 32)
    assert [s.key for s in _layers(space, floats)] == [
        s.key for s in _layers(_base(space), _base_arch(space, floats))]
    keys = {b: _layers(space, _all_bits(space, b))[blocks[0]].key for b in (4, 8, 32)}
    assert len(set(keys.values())) == 3


def test_layer_granularity_tags_each_combination_of_linear_bits() -> None:
    space = nas.create_space("vit_mini+q4-8-32l")
    mixed = {"l0.qkv.bits": 32, "l0.proj.bits": 4, "l0.fc1.bits": 8, "l0.fc2.bits": 32}
    arch = _all_bits(space, 32, **mixed)
    block = next(s for s in _layers(space, arch) if s.kind == "transformer_block")
    assert unit_bits(block) == {"qkv": 32, "proj": 4, "fc1": 8, "fc2": 32}
    assert bits_of(block) == key_bits(block.key) == 4  # the lowest of its linears
    assert quantized_weight_bits(space, block) == {"attn.proj.weight": 4, "mlp.fc1.weight": 8}
    swapped = _all_bits(space, 32, **{**mixed, "l0.proj.bits": 8, "l0.fc1.bits": 4})
    other = next(s for s in _layers(space, swapped) if s.kind == "transformer_block")
    assert other.key != block.key and key_bits(other.key) == 4
    floats = _all_bits(space, 32)
    assert [s.key for s in _layers(space, floats)] == [
        s.key for s in _layers(VIT_BASE, _base_arch(space, floats))]


@pytest.mark.parametrize("name", ["vit_mini+q4-8-32b", "llama_tiny+q4-8-32b"])
def test_quantized_weights_are_the_blocks_linears(name: str) -> None:
    space = nas.create_space(name)
    specs = _layers(space, _all_bits(space, 8))
    block = next(s for s in specs if s.kind == "transformer_block")
    weights = quantized_weight_bits(space, block)
    names = {n for n, _ in block.build().named_parameters()}
    assert set(weights) <= names and set(weights.values()) == {8}
    assert {w.split(".")[1] for w in weights} == set(LINEARS[str(block.act)])
    assert all(quantized_weight_bits(space, s) == {} for s in specs if s.kind != block.kind)


# ------------------------------------------------------------------ predictor
def test_lut_predictor_sums_per_precision_entries() -> None:
    specs = {s.key: s for a in VIT.sample_many(300, np.random.default_rng(1))
             for s in _layers(VIT, a)}
    cost = {4: 3.0, 8: 2.0, 32: 1.0}
    table = {k: cost[bits_of(s)] + 0.01 * i for i, (k, s) in enumerate(sorted(specs.items()))}
    assert {key_bits(k) for k in table} == {4, 8, 32}
    p: Any = create_predictor("lut", space=VIT, table=table, num_classes=10)
    archs = VIT.sample_many(40, np.random.default_rng(2))
    expected = [sum(table[s.key] for s in _layers(VIT, a)) for a in archs]
    np.testing.assert_allclose(p.layer_sum(archs)[:, 0], expected)
    np.testing.assert_allclose(p.predict(archs), expected)
    low = p.layer_features(archs)[:, 2]  # low-precision layers per arch
    assert list(low) == [sum(b < 32 for b in policy_of(VIT, a).values()) for a in archs]
    assert p.correction == "linear"  # MatMulNBits adds no quantize/dequantize pairs to share
    largest = [_all_bits(VIT, b) for b in (4, 8, 32)]
    assert list(np.argsort(p.predict(largest))) == [2, 1, 0]


# ------------------------------------------------------------------ ORT layer models
def _nbits(data: bytes) -> list[tuple[int, int, int]]:
    """``(K, N, bits)`` of each MatMulNBits node."""
    model = onnx.load_from_string(data)
    out = []
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            a = {x.name: x.i for x in node.attribute}
            out.append((a["K"], a["N"], a["bits"]))
    return sorted(out)


def _float_matmul_weights(data: bytes) -> list[np.ndarray]:
    """The 2-D initializer weights of the plain MatMul nodes."""
    from onnx import numpy_helper

    model = onnx.load_from_string(data)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [inits[n.input[1]] for n in model.graph.node
            if n.op_type == "MatMul" and n.input[1] in inits and inits[n.input[1]].ndim == 2]


def _kn(module: Any, name: str) -> tuple[int, int]:
    n, k = module.get_parameter(name).shape
    return int(k), int(n)


def _mixed_block() -> Any:
    """A small vit_mini block whose linears have four distinct shapes: qkv float, proj 4 bits,
    fc1 8 bits, fc2 float."""
    space = nas.create_space("vit_mini+q4-8-32l")
    arch = _all_bits(space, 32, depth=2, embed_dim=48, **{
        "l0.heads": 2, "l0.mlp_ratio": 3.0, "l0.proj.bits": 4, "l0.fc1.bits": 8})
    return space, next(s for s in _layers(space, arch) if s.kind == "transformer_block")


def test_deployed_layer_quantizes_exactly_the_tagged_linears() -> None:
    import torch

    from nas.hardware.inputs import layer_case

    space, spec = _mixed_block()
    built, example = layer_case(spec, batch=1)
    module: Any = built
    x = input_tensor(example)
    data = deployed_layer(space, spec, module, x)
    assert _nbits(data) == sorted([(*_kn(module, "attn.proj.weight"), 4),
                                   (*_kn(module, "mlp.fc1.weight"), 8)])
    floats = _float_matmul_weights(data)
    expected = [module.get_parameter(n).detach().numpy().T
                for n in ("attn.qkv.weight", "mlp.fc2.weight")]
    assert len(floats) == 2
    assert all(any(w.shape == e.shape and np.array_equal(w, e) for w in floats)
               for e in expected)
    # the ONNX model computes the module with fake-quantized proj and fc1 weights
    from nas.quantization.weight_only import fake_quant_blockwise

    with torch.no_grad():
        for name, bits in (("attn.proj", 4), ("mlp.fc1", 8)):
            linear = module.get_submodule(name)
            linear.weight.copy_(fake_quant_blockwise(linear.weight, bits))
        want = module.eval()(x).numpy()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.slow  # a dynamo export per layer (~3 s each here)
def test_ort_build_times_int4_blocks_as_matmulnbits_and_float_blocks_float(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arch = _all_bits(VIT, 32, depth=2, embed_dim=32, **{"l0.heads": 2, "l0.mlp_ratio": 2.0,
                                                        "l1.heads": 2, "l1.mlp_ratio": 2.0})
    specs = [_layers(VIT, arch.replace(VIT, **{"l0.bits": b}))[2] for b in (4, 8, 32)]
    monkeypatch.setattr("nas.hardware.build.distinct_layers", lambda *a, **k: specs)
    exported: dict[str, tuple[bytes, Any]] = {}
    real = nas.hardware.build.deployed_layer

    def spy(space: Any, spec: Any, module: Any, x: Any) -> bytes:
        exported[spec.key] = (real(space, spec, module, x), module)
        return exported[spec.key][0]

    monkeypatch.setattr("nas.hardware.build.deployed_layer", spy)
    table = build_lookup_table(VIT, runtime="onnxruntime", num_classes=10, warmup=1, repeats=3)
    assert list(table) == [s.key for s in specs] and len(set(table)) == 3
    assert [key_bits(k) for k in table] == [4, 8, 32]
    assert all(v["median_ms"] > 0 for v in table.values())
    for spec, bits in zip(specs, (4, 8, 32)):
        data, module = exported[spec.key]
        linears = [f"{p}.{n}.weight" for p, n in (("attn", "qkv"), ("attn", "proj"),
                                                  ("mlp", "fc1"), ("mlp", "fc2"))]
        if bits == 32:
            assert _nbits(data) == [] and len(_float_matmul_weights(data)) == 4
        else:
            assert _nbits(data) == sorted((*_kn(module, w), bits) for w in linears)
            assert _float_matmul_weights(data) == []


# ------------------------------------------------------------------ refusals
def test_torch_runtime_refuses_int4_and_int8_blocks() -> None:
    with pytest.raises(ConfigError, match="no int8 kernels") as info:
        build_lookup_table(VIT, runtime="torch", num_classes=10)
    assert "[4, 8]" in str(info.value) and "\n" not in str(info.value)


def test_a_quantized_language_model_is_timed_at_its_seq_len() -> None:
    gpt = nas.create_space("gpt_tiny+q4-8-32b")
    default = int(gpt.meta["seq_len"])
    assert timed_seq_len(gpt, None, "onnxruntime") == default
    assert timed_seq_len(gpt, default, "onnxruntime") == default
    assert timed_seq_len(gpt, 64, "torch") == 64  # (torch refuses its int4 layers itself)
    assert timed_seq_len(nas.create_space("gpt_tiny"), 64, "onnxruntime") == 64  # float: any
    with pytest.raises(ConfigError, match="seq_len 128; got seq_len 64") as info:
        timed_seq_len(gpt, 64, "onnxruntime")
    assert "\n" not in str(info.value)


def test_the_library_refuses_another_seq_len_before_timing(tmp_path: Path) -> None:
    """The Python API gives the same one line as the CLI, before any layer is timed."""
    gpt = nas.create_space("gpt_tiny+q4-8-32b")
    partial = tmp_path / "partial.json"
    with pytest.raises(ConfigError, match="got seq_len 64"):
        build_lookup_table(gpt, runtime="onnxruntime", seq_len=64, partial_path=partial)
    assert not partial.exists()
    with pytest.raises(ConfigError, match="got seq_len 64"):
        measure_subnets(gpt, [gpt.largest()], runtime="onnxruntime", seq_len=64)


B = ["profile", "build", "--name", "q", "--num-classes", "10", "--runtime", "onnxruntime"]


@pytest.mark.parametrize(("argv", "expected"), [
    ([*B, "--space", "vit_mini", "--bits", "4,8,32", "--granularity", "stage"], "not offered"),
    ([*B, "--space", "vit_mini", "--bits", "2,32"], "not offered"),
    ([*B, "--space", "gpt_tiny", "--bits", "4,32", "--seq-len", "64"], "seq_len 128"),
    ([*B, "--space", "vit_mini+q4-8-32b", "--bits", "8,32"], "quantized already"),
])
def test_profile_build_transformer_bits_bad_input(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ CLI
def _small_archs(space: SearchSpace) -> list[Any]:
    small = {"depth": 2, "embed_dim": 32, "l0.heads": 2, "l0.mlp_ratio": 2.0,
             "l1.heads": 2, "l1.mlp_ratio": 2.0}
    return [_all_bits(space, 32, **small, **{"l0.bits": b0, "l1.bits": b1})
            for b0, b1 in ((4, 4), (8, 32), (32, 4), (32, 32))]


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "space_name"), [
    (["--space", "vit_mini+q4-8-32b"], "vit_mini+q4-8-32b"),
    (["--space", "gpt_tiny", "--bits", "4,8,32"], "gpt_tiny+q4-8-32b"),
])
def test_cli_build_and_measure_a_transformer_table(
    argv: list[str], space_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI path end to end on a table cut down to the layers of 4 small subnets."""
    from nas.hardware.build import distinct_layers

    space = nas.create_space(space_name)
    archs = _small_archs(space)
    keys = {s.key for a in archs for s in _layers(space, a)}
    monkeypatch.setattr("nas.hardware.build.distinct_layers", lambda space, **k: [
        s for s in distinct_layers(space, **k) if s.key in keys])
    monkeypatch.setattr(SearchSpace, "sample_many",  # validate and measure time these
                        lambda self, n, rng: [self.arch(a.to_dict()) for a in archs][:n])
    code = main(["profile", "build", *argv, "--runtime", "onnxruntime", "--name", "tq",
                 "--out", str(tmp_path), "--num-classes", "10", "--warmup", "1",
                 "--repeats", "3", "--validate", "4"])
    assert code == 0
    assert "corrected_holdout" in capsys.readouterr().out
    profile = load_profile(tmp_path / "tq.json")
    model = profile.latency[space_name]
    assert profile.runtime == "onnxruntime" and set(model.lut) == keys
    assert {key_bits(k) for k in model.lut} == {4, 8, 32}
    assert profile.seq_len == int(space.meta.get("seq_len", 0))
    code = main(["profile", "measure", "--profile", str(tmp_path / "tq.json"), "--space",
                 space_name, "--n", "4", "--warmup", "1", "--repeats", "3", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["n"] == 4
