"""Per-convolution quantization policies (``granularity="layer"``) of MobileNetV3 spaces:
dimensions, policy, size, fake quantization, latency-table tags and the quantized export."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

import nas
from nas.data import load_digits
from nas.elastic import mid_channels
from nas.quantization import export_quantized, policy_of, quantized, size_bytes
from nas.quantization.fake import calibrate, calibration_inputs, fake_quantized, layer_bits
from nas.quantization.layers import bits_of, quantized_weight_bits, with_precision
from nas.registry import REGISTRY

CONVS = ("expand", "depthwise", "project")


@pytest.fixture(scope="module")
def lspace() -> nas.SearchSpace:
    return quantized(nas.create_space("tiny"), granularity="layer", bits=(32, 8))


def _policy(space: nas.SearchSpace, arch: nas.ArchConfig, bits: dict[str, int]
            ) -> nas.ArchConfig:
    """``arch`` with every conv at 32 bits except ``bits`` (``{"s1.b0.depthwise": 8}``)."""
    values = {n: 32 for n in space.names if n.endswith(".bits")}
    values.update({f"{unit}.bits": b for unit, b in bits.items()})
    return arch.replace(space, **values)


def test_one_bits_dimension_per_conv_vanishing_with_the_block(lspace: nas.SearchSpace) -> None:
    assert lspace.name == "tiny+q8-32l"
    assert nas.create_space("tiny+q8-32l").fingerprint() == lspace.fingerprint()
    bits = [n for n in lspace.names if n.endswith(".bits")]
    assert bits == [f"s{s}.b{b}.{c}.bits" for s in (1, 2) for b in (0, 1) for c in CONVS]
    assert lspace["s1.b1.project.bits"].when == lspace["s1.b1.kernel"].when is not None
    assert lspace["s1.b0.expand.bits"].when is None
    assert lspace.size() == (2 ** 5 + 2 ** 10) ** 2 * 3  # kernel, expand and 3 convs per block
    shallow = lspace.arch({**lspace.largest().to_dict(), "s1.depth": 1})
    policy = policy_of(lspace, shallow)
    assert set(policy) == {f"{g}.{c}" for g in ("s1.b0", "s2.b0", "s2.b1") for c in CONVS}
    assert shallow.key == shallow.replace(lspace, **{"s1.b1.expand.bits": 8}).key  # inactive


def test_size_counts_each_conv_at_its_bits(lspace: nas.SearchSpace) -> None:
    arch = lspace.arch({**lspace.smallest().to_dict(), "s1.b0.expand": 4, "s1.b0.kernel": 5})
    floats = _policy(lspace, arch, {})
    params = nas.count(lspace, floats, 10)["params"]
    mid = mid_channels(8, 4)  # s1.b0: 8 -> 16 channels, kernel 5
    only_dw = _policy(lspace, arch, {"s1.b0.depthwise": 8})
    assert size_bytes(lspace, only_dw, params) == 4 * params - 3 * mid * 25
    dw_and_project = _policy(lspace, arch, {"s1.b0.depthwise": 8, "s1.b0.project": 8})
    assert nas.count(lspace, dw_and_project, 10)["size_bytes"] == 4 * params - 3 * (
        mid * 25 + mid * 16)
    assert nas.count(lspace, floats, 10)["size_bytes"] == 4 * params


def test_fake_quantization_takes_exactly_the_policy_convs(lspace: nas.SearchSpace) -> None:
    torch.manual_seed(0)
    supernet = nas.create_supernet(lspace.name, num_classes=10).eval()
    rng = np.random.default_rng(0)
    for arch in lspace.sample_many(8, rng):
        low = {unit for unit, b in policy_of(lspace, arch).items() if b < 32}
        assert {layer.name for layer, _ in layer_bits(supernet, arch)} == low
    arch = _policy(lspace, lspace.largest().replace(lspace, resolution=16),
                   {"s2.b1.depthwise": 8})
    x = calibration_inputs(load_digits(), n_batches=1, resolution=16)
    ranges = calibrate(supernet, arch, x)
    assert {k.split(":")[0] for k in ranges.values} == {"s2.b1.depthwise"}
    with torch.no_grad():
        floats = supernet(x[0])
        with fake_quantized(supernet, arch, ranges):
            fake = supernet(x[0])
    assert 0 < float((fake - floats).abs().max()) < 1.0


def _tagged(space: nas.SearchSpace, arch: nas.ArchConfig) -> list[Any]:
    layers = REGISTRY.entry(space.name).layers
    assert layers is not None
    return with_precision(layers)(space, arch, 10)


def test_table_keys_carry_each_conv_bits(lspace: nas.SearchSpace) -> None:
    arch = lspace.largest()
    specs = _tagged(lspace, _policy(lspace, arch, {"s1.b0.expand": 8, "s2.b1.depthwise": 8}))
    tagged = [s for s in specs if bits_of(s) < 32]
    assert len(tagged) == 2
    assert tagged[0].key.endswith("|bits=8|unit_bits=depthwise:32,expand:8,project:32")
    assert quantized_weight_bits(lspace, tagged[0]) == {"expand.conv.weight": 8}
    assert quantized_weight_bits(lspace, tagged[1]) == {"depthwise.conv.weight": 8}
    base = nas.create_space("tiny")
    floats = _tagged(lspace, _policy(lspace, arch, {}))
    assert [s.key for s in floats] == [s.key for s in _tagged(base, base.largest())]
    everything = _policy(lspace, arch, {n.removesuffix(".bits"): 8 for n in lspace.names
                                        if n.endswith(".bits")})
    for spec in (s for s in _tagged(lspace, everything) if bits_of(s) < 32):
        assert set(quantized_weight_bits(lspace, spec)) == {f"{c}.conv.weight" for c in CONVS}


@pytest.mark.slow  # two ONNX exports
def test_export_quantizes_exactly_the_policy_convs(lspace: nas.SearchSpace, tmp_path) -> None:
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional dependency")
    onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx")
    torch.manual_seed(0)
    supernet = nas.create_supernet(lspace.name, num_classes=10).eval()
    arch = _policy(lspace, lspace.largest().replace(lspace, resolution=24),
                   {"s1.b0.depthwise": 8, "s1.b1.expand": 8, "s2.b1.project": 8})
    out = export_quantized(supernet, arch, tmp_path / "q", load_digits())
    info = json.loads((out / "arch.json").read_text())["quantization"]
    assert info["policy"] == policy_of(lspace, arch)
    model = onnx.load(str(out / "model.onnx"))
    dq = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    quantized_convs = {dq[n.input[1]].removesuffix("_quantized") for n in model.graph.node
                       if n.op_type == "Conv" and n.input[1] in dq}
    expected = {"blocks.1.depthwise.conv.weight", "blocks.2.expand.conv.weight",
                "blocks.4.project.conv.weight"}
    assert quantized_convs == expected
    assert {w.weight_name for w, _ in layer_bits(supernet, arch)} == expected
    assert info["size_bytes"] == nas.count(lspace, arch, 10)["size_bytes"]


def test_low_bit_share_weighs_each_conv(lspace: nas.SearchSpace) -> None:
    from nas.quantization.support import quant_support
    from nas.search.plot import low_bit_share

    arch = _policy(lspace, lspace.largest(), {"s1.b0.depthwise": 8})
    weights = quant_support(lspace).weights(lspace, arch)
    assert set(weights) == set(policy_of(lspace, arch))
    share = low_bit_share(lspace, [arch])
    assert share is not None
    assert share[0] == pytest.approx(weights["s1.b0.depthwise"] / sum(weights.values()))
