"""Quantized ONNX export: exactly the policy's convolutions are quantized; ORT agrees."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import nas
from nas.data import load_digits
from nas.quantization import export_quantized, policy_of
from nas.quantization.fake import calibrate, calibration_inputs, fake_quantized
from nas.quantization.onnx_quant import run_session

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx")
pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional dependency")


def _conv_weights_from_dq(path) -> dict[str, bool]:
    """Conv weight initializer -> whether the Conv reads it through a DequantizeLinear."""
    model = onnx.load(str(path))
    dq = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    out = {}
    for n in model.graph.node:
        if n.op_type == "Conv":
            w = n.input[1]
            out[dq.get(w, w).removesuffix("_quantized")] = w in dq
    return out


@pytest.mark.slow
def test_export_quantizes_exactly_the_policy_and_matches_fake_quant(tmp_path) -> None:
    torch.manual_seed(0)
    supernet = nas.create_supernet("tiny+q8-32b", num_classes=10).eval()
    space, data = supernet.space, load_digits()
    arch = space.arch({**space.largest().to_dict(), "resolution": 24, "s1.b0.bits": 8,
                       "s1.b1.bits": 32, "s2.b0.bits": 8, "s2.b1.bits": 32})
    out = export_quantized(supernet, arch, tmp_path / "q", data, metrics={"accuracy": 1.0})
    info = json.loads((out / "arch.json").read_text())
    q = info["quantization"]
    assert q["policy"] == policy_of(space, arch) and len(q["quantized_nodes"]) == 6
    assert q["size_bytes"] == nas.count(space, arch, 10)["size_bytes"] < 4 * nas.count(
        space, arch, 10)["params"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == 1.0 and metrics["size_bytes"] == q["size_bytes"]
    quantized = {w for w, is_q in _conv_weights_from_dq(out / "model.onnx").items() if is_q}
    assert quantized == {f"blocks.{i}.{c}.conv.weight" for i in (1, 3)
                         for c in ("expand", "depthwise", "project")}
    nas.load_subnet(out, format="onnx")  # checksums of the replaced model.onnx hold

    inputs = calibration_inputs(data, resolution=24)
    ranges = calibrate(supernet, arch, inputs)
    x = inputs[0]
    with torch.no_grad():
        floats = supernet(x).numpy()
        with fake_quantized(supernet, arch, ranges):
            fake = supernet(x).numpy()
    ort = run_session(out / "model.onnx", x.numpy())
    np.testing.assert_allclose(run_session(out / "model_float.onnx", x.numpy()), floats,
                               atol=1e-4)
    assert np.abs(ort - fake).mean() < 0.5 * np.abs(ort - floats).mean()


@pytest.mark.slow
def test_all_float_policy_exports_the_float_model(tmp_path) -> None:
    supernet = nas.create_supernet("tiny+q8-32b", num_classes=10).eval()
    space = supernet.space
    arch = space.smallest().replace(space, **{n: 32 for n in space.names if n.endswith("bits")})
    out = export_quantized(supernet, arch, tmp_path / "f", load_digits())
    assert json.loads((out / "arch.json").read_text())["quantization"]["quantized_nodes"] == []
    assert not any(_conv_weights_from_dq(out / "model.onnx").values())
