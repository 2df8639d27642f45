"""Weight-only quantization policies of transformer spaces (``MatMulNBits``, 4 and 8 bits)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from _tiny import assert_run_reopens_in_a_fresh_process

import nas
from nas.data import SubsetData
from nas.errors import ConfigError
from nas.quantization import policy_of, quantized
from nas.quantization.fake import calibrate, fake_quantized, layer_bits, policy_applied
from nas.quantization.weight_only import block_qparams, fake_quant_blockwise, stored_bytes
from nas.space_recipes import rebuild
from nas.text_data import load_text


@pytest.fixture(scope="module")
def gspace() -> nas.SearchSpace:
    return quantized(nas.create_space("gpt_tiny"), granularity="block", bits=(4, 8, 32))


def _bits(space: nas.SearchSpace, arch: nas.ArchConfig, value: int) -> nas.ArchConfig:
    return arch.replace(space, **{n: value for n in space.names if n.endswith(".bits")})


def test_layer_bits_vanish_with_the_layer(gspace: nas.SearchSpace) -> None:
    assert gspace.name == "gpt_tiny+q4-8-32b"
    assert [n for n in gspace.names if n.endswith(".bits")] == [f"l{i}.bits" for i in range(4)]
    for i in range(4):
        assert gspace[f"l{i}.bits"].when == gspace[f"l{i}.heads"].when
    assert gspace["l3.bits"].when is not None and gspace["l0.bits"].when is None
    shallow = gspace.arch({**gspace.largest().to_dict(), "depth": 2})
    assert policy_of(gspace, shallow) == {"l0": 32, "l1": 32}
    assert shallow.key == shallow.replace(gspace, **{"l3.bits": 4}).key  # inactive
    archs = gspace.sample_many(40, np.random.default_rng(0))
    assert gspace.encode(archs).shape == (40, len(gspace.encoding_names()))
    assert {a["l0.bits"] for a in archs} == {4, 8, 32}


def test_name_and_recipe_rebuild_the_space(gspace: nas.SearchSpace, tmp_path) -> None:
    assert nas.create_space("gpt_tiny+q4-8-32b").fingerprint() == gspace.fingerprint()
    assert rebuild(gspace.meta["recipe"]).fingerprint() == gspace.fingerprint()
    assert gspace.meta["quantization"]["scheme"] == "weight_only"
    assert_run_reopens_in_a_fresh_process(tmp_path / "run", gspace, "language_modelling")


def test_layer_granularity_one_bits_per_linear() -> None:
    space = nas.create_space("gpt_tiny+q4-32l")
    assert [n for n in space.names if n.startswith("l0.") and n.endswith(".bits")] == [
        "l0.qkv.bits", "l0.proj.bits", "l0.fc1.bits", "l0.fc2.bits"]
    assert space["l2.fc2.bits"].when == space["l2.heads"].when
    llama = nas.create_space("llama_tiny+q4-32l")
    assert {n for n in llama.names if n.startswith("l0.") and n.endswith(".bits")} == {
        "l0.qkv.bits", "l0.proj.bits", "l0.gate.bits", "l0.up.bits", "l0.down.bits"}
    arch = space.arch({**space.largest().to_dict(), "depth": 2, "l0.fc1.bits": 4})
    assert policy_of(space, arch) == {f"l{i}.{n}": 4 if (i, n) == (0, "fc1") else 32
                                      for i in range(2) for n in ("qkv", "proj", "fc1", "fc2")}
    supernet = nas.create_supernet(space.name, num_classes=256)
    assert [(layer.name, b) for layer, b in layer_bits(supernet, arch)] == [("l0.fc1", 4)]


def test_size_bytes_counts_packed_weights_scales_and_zero_points(
    gspace: nas.SearchSpace,
) -> None:
    # width 32, 2 layers, 2 heads of 16, MLP ratio 2 (64 hidden): per layer qkv 32x96,
    # proj 32x32, fc1 32x64, fc2 64x32 (K x N) = 8192 weights
    arch = gspace.arch({**gspace.smallest().to_dict()})
    assert arch["embed_dim"] == 32 and arch["depth"] == 2
    floats, int4, int8 = (_bits(gspace, arch, b) for b in (32, 4, 8))
    params = nas.count(gspace, floats, 256)["params"]
    assert nas.count(gspace, floats, 256)["size_bytes"] == 4 * params
    # 4 bits, blocks of 32 along K: qkv 96*16 packed + 96*4 scales + 96 zero points = 2016;
    # proj 672; fc1 1344; fc2 (two blocks) 32*2*16 + 32*2*4 + 32*1 = 1312 -> 5344 per layer
    assert nas.count(gspace, int4, 256)["size_bytes"] == 4 * params - 2 * (4 * 8192 - 5344)
    # 8 bits: qkv 96*32 + 384 + 96 = 3552; proj 1184; fc1 2368; fc2 2048 + 256 + 64 = 2368
    assert nas.count(gspace, int8, 256)["size_bytes"] == 4 * params - 2 * (4 * 8192 - 9472)
    assert stored_bytes(64, 32, 4) == 1312 and stored_bytes(32, 96, 8) == 3552


def _reference(w_kn: np.ndarray, bits: int, block: int) -> np.ndarray:
    """ORT's MatMulNBits block quantization written out: per column, per block of K."""
    k, n = w_kn.shape
    qmax = 2**bits - 1
    out = np.zeros_like(w_kn)
    for col in range(n):
        for start in range(0, k, block):
            x = w_kn[start:start + block, col]
            lo, hi = np.float32(min(x.min(), 0.0)), np.float32(max(x.max(), 0.0))
            scale = np.float32((hi - lo) / np.float32(qmax))
            if scale == 0:
                out[start:start + block, col] = 0.0
                continue
            zp = float(np.clip(np.floor(np.float32(-lo / scale) + 0.5), 0, qmax))
            v = x * np.float32(np.float32(1.0) / scale) + np.float32(zp)
            q = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), 0, qmax)
            out[start:start + block, col] = (q - zp) * scale
    return out


@pytest.mark.parametrize("bits", [4, 8])
def test_fake_quant_equals_reference_and_ort(bits: int) -> None:
    rng = np.random.default_rng(bits)
    w = (rng.standard_normal((40, 72)) * 0.05).astype(np.float32)  # torch (N, K): K = 72
    w[:, 64:] = 0.0  # a block of zeros pads like ORT's
    fake = fake_quant_blockwise(torch.from_numpy(w), bits).numpy()
    np.testing.assert_array_equal(fake, _reference(w.T, bits, 32).T)
    assert len(np.unique(fake[0, :32])) <= 2**bits and not np.array_equal(fake, w)
    pybind = pytest.importorskip("onnxruntime.capi._pybind_state")
    q, scale, zero = block_qparams(torch.from_numpy(w), bits)
    n, k, blocks = 40, 72, 3
    packed = np.zeros((n, blocks, 32 * bits // 8), np.uint8)
    zps = np.zeros((n, -(-blocks // (8 // bits))), np.uint8)
    scales = np.zeros((n, blocks), np.float32)
    quantize = pybind.quantize_matmul_4bits if bits == 4 else pybind.quantize_matmul_8bits
    quantize(packed, np.ascontiguousarray(w.T), scales, zps, 32, n, k, False)
    if bits == 4:
        ort_q = np.stack([packed & 15, packed >> 4], -1).reshape(n, blocks, 32)
        ort_zp = np.stack([zps & 15, zps >> 4], -1).reshape(n, -1)[:, :blocks]
    else:
        ort_q, ort_zp = packed, zps
    np.testing.assert_array_equal(scales, scale.numpy())
    np.testing.assert_array_equal(ort_zp, zero.numpy().astype(np.uint8))
    np.testing.assert_array_equal(ort_q, q.numpy().astype(np.uint8))


def test_fake_quantization_in_the_supernet_needs_no_calibration(gspace) -> None:
    torch.manual_seed(0)
    supernet = nas.create_supernet(gspace.name, num_classes=256).eval()
    arch = gspace.arch({**gspace.largest().to_dict(), "l0.bits": 4, "l1.bits": 8,
                        "l2.bits": 32, "l3.bits": 4})
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    assert calibrate(supernet, arch, []).values == {}
    with torch.no_grad():
        supernet.set_active(arch)
        floats = supernet(ids)
        with fake_quantized(supernet, arch, calibrate(supernet, arch, [])):
            fake = supernet(ids)
        tiny = SubsetData(load_text("pydoc", seq_len=16, limit=4), np.arange(4))
        with policy_applied(supernet, arch, tiny):  # 4 windows: no calibration-size check
            again = supernet(ids)
        assert torch.equal(supernet(ids), floats)  # nothing stays behind
        model: Any = supernet.extract(arch).eval()
        for i, bits in ((0, 4), (1, 8), (3, 4)):
            for part, name in (("attn", "qkv"), ("attn", "proj"), ("mlp", "fc1"), ("mlp", "fc2")):
                linear = getattr(getattr(model.blocks[i], part), name)
                linear.weight.copy_(fake_quant_blockwise(linear.weight, bits))
        reference = model(ids)
    torch.testing.assert_close(fake, reference, atol=1e-5, rtol=1e-5)
    assert torch.equal(fake, again) and (fake - floats).abs().max() > 1e-3
    rows = nas.evaluate(supernet, [_bits(gspace, arch, 32), _bits(gspace, arch, 4)], tiny,
                        n_bn_batches=0)
    assert rows[0]["perplexity"] != rows[1]["perplexity"]


def test_bad_input_one_line_each() -> None:
    tiny, gpt = nas.create_space("tiny"), nas.create_space("gpt_tiny")
    cases = [
        (lambda: quantized(tiny, bits=(4, 32)), r"bits \(4, 32\) not offered.*\[8, 32\].*no int4"),
        (lambda: quantized(gpt, bits=(2, 32)), r"bits \(2, 32\) not offered.*\[4, 8, 32\]"),
        (lambda: quantized(gpt, granularity="stage", bits=(4, 32)),
         r"granularity 'stage' is not offered by family 'gpt'.*\['block', 'layer'\]"),
        (lambda: nas.create_space("gpt_tiny+q4-32bf"), r"reduce_range=False is for int8 conv"),
    ]
    for call, pattern in cases:
        with pytest.raises(ConfigError, match=pattern) as info:
            call()
        assert "\n" not in str(info.value)


def _matmul_nbits(path) -> dict[str, int]:
    import onnx

    model = onnx.load(str(path))
    return {n.name: next(a.i for a in n.attribute if a.name == "bits")
            for n in model.graph.node if n.op_type == "MatMulNBits"}


def _scope(path, node_name: str) -> str:
    """The torch module a node of the float model was exported from (its name scope)."""
    import onnx

    node = next(n for n in onnx.load(str(path)).graph.node if n.name == node_name)
    return json.loads(next(p.value for p in node.metadata_props
                           if p.key == "pkg.torch.onnx.name_scopes").replace("'", '"'))[-2]


@pytest.mark.slow
@pytest.mark.parametrize("space_name", ["gpt_tiny+q4-8-32b", "vit_mini+q4-8-32l"])
def test_export_quantizes_exactly_the_policy_and_ort_matches(space_name: str, tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from nas.quantization.onnx_quant import run_session

    torch.manual_seed(0)
    vit = space_name.startswith("vit")
    supernet = nas.create_supernet(space_name, num_classes=10 if vit else 256).eval()
    space = supernet.space
    rng = np.random.default_rng(1)
    arch = space.sample(rng)
    while len(set(policy_of(space, arch).values())) < 3:  # a policy with 4, 8 and 32
        arch = space.sample(rng)
    out = nas.export_quantized(supernet, arch, tmp_path / "q", None)
    q = json.loads((out / "arch.json").read_text())["quantization"]
    assert q["policy"] == policy_of(space, arch) and q["scheme"] == "weight_only"
    expected = {layer.name: b for layer, b in layer_bits(supernet, arch)}
    assert {k: v["bits"] for k, v in q["quantized_nodes"].items()} == expected
    nbits = _matmul_nbits(out / "model.onnx")
    assert sorted(nbits.values()) == sorted(expected.values())
    for node in q["quantized_nodes"].values():  # the right MatMul, by its name scope
        assert nbits[f"{node['node']}_Q{node['bits']}"] == node["bits"]
        assert _scope(out / "model_float.onnx", node["node"]) == node["weight"].removesuffix(
            ".weight")
    assert q["onnx_bytes"] < q["float_onnx_bytes"]
    # size_bytes counts what the MatMulNBits initializers hold: packed weights, scales, zps
    from onnx import numpy_helper

    from search_spaces.transformer_quant import linear_shapes

    model = onnx.load(str(out / "model.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    held = sum(inits[name].nbytes for n in model.graph.node if n.op_type == "MatMulNBits"
               for name in n.input[1:])
    shapes = linear_shapes(space, arch)
    assert held == sum(stored_bytes(*shapes[label], bits) for label, bits in expected.items())
    assert q["size_bytes"] == nas.count(space, arch, supernet.num_classes)["size_bytes"]
    nas.load_subnet(out, format="onnx")
    x = (torch.randn(4, 3, 28, 28) if vit else
         torch.randint(0, 256, (2, 128), generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        floats = supernet(x).numpy()
        with fake_quantized(supernet, arch, calibrate(supernet, arch, [])):
            fake = supernet(x).numpy()
    ort = run_session(out / "model.onnx", x.numpy())
    # MatMulNBits (accuracy_level unset) multiplies float32 by the same dequantized weights:
    # only the summation order differs, ~1e-6 of logits of size ~1
    np.testing.assert_allclose(ort, fake, atol=1e-4, rtol=1e-4)
    assert np.abs(fake - floats).max() > 100 * np.abs(ort - fake).max()
