"""Quantization policies as search dimensions, fake quantization in the supernet, counting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny import assert_run_reopens_in_a_fresh_process

import nas
from nas.data import TensorData, load_digits
from nas.elastic import mid_channels
from nas.errors import ConfigError, InvalidArchError
from nas.quantization import policy_of, quantized, size_bytes
from nas.quantization.fake import (
    act_qparams,
    calibrate,
    calibration_inputs,
    fake_quant_act,
    fake_quant_weight,
    fake_quantized,
    quantized_layers,
)
from nas.quantization.support import quant_layers
from nas.space_recipes import rebuild


@pytest.fixture(scope="module")
def qspace() -> nas.SearchSpace:
    return quantized(nas.create_space("tiny"), granularity="block", bits=(32, 8))


def _bits(space: nas.SearchSpace, arch: nas.ArchConfig, value: int) -> nas.ArchConfig:
    return arch.replace(space, **{n: value for n in space.names if n.endswith(".bits")})


def test_block_bits_are_conditional_like_the_block(qspace: nas.SearchSpace) -> None:
    assert qspace.name == "tiny+q8-32b"
    assert [n for n in qspace.names if n.endswith(".bits")] == [
        "s1.b0.bits", "s1.b1.bits", "s2.b0.bits", "s2.b1.bits"]
    assert qspace["s1.b1.bits"].when == qspace["s1.b1.kernel"].when is not None
    assert qspace["s1.b0.bits"].when is None
    # per stage: depth 1 -> 2*2*2, depth 2 -> (2*2*2)^2; three resolutions
    assert qspace.size() == (8 + 64) ** 2 * 3
    shallow = qspace.arch({**qspace.largest().to_dict(), "s1.depth": 1})
    assert qspace.mutate(shallow, np.random.default_rng(0), prob=0.0) == shallow
    assert shallow.key == shallow.replace(qspace, **{"s1.b1.bits": 8}).key  # inactive


def test_sample_encode_validate(qspace: nas.SearchSpace) -> None:
    archs = qspace.sample_many(50, np.random.default_rng(0))
    assert qspace.encode(archs).shape == (50, len(qspace.encoding_names()))
    assert "s2.b0.bits=8" in qspace.encoding_names()
    for arch in archs[:5]:
        qspace.validate(arch)
        assert qspace.from_json(arch.to_json()) == arch
    with pytest.raises(InvalidArchError, match=r"s1.b0.bits: 4 is not allowed.*\[8, 32\]"):
        qspace.arch({**archs[0].to_dict(), "s1.b0.bits": 4})


def test_policy_per_active_block_and_stage_granularity(qspace: nas.SearchSpace) -> None:
    arch = qspace.arch({**qspace.largest().to_dict(), "s1.depth": 1, "s1.b0.bits": 8,
                        "s1.b1.bits": 8, "s2.b1.bits": 8})
    assert policy_of(qspace, arch) == {"s1.b0": 8, "s2.b0": 32, "s2.b1": 8}
    staged = quantized(nas.create_space("tiny"), granularity="stage", bits=(32, 8))
    assert staged.name == "tiny+q8-32s"
    assert [n for n in staged.names if n.endswith(".bits")] == ["s1.bits", "s2.bits"]
    assert staged["s1.bits"].when is None
    arch = staged.arch({**staged.largest().to_dict(), "s1.bits": 8})
    assert policy_of(staged, arch) == {"s1.b0": 8, "s1.b1": 8, "s2.b0": 32, "s2.b1": 32}
    assert policy_of(nas.create_space("tiny"), nas.create_space("tiny").largest()) == {}


def test_registry_name_and_recipe_rebuild_the_same_space(qspace: nas.SearchSpace) -> None:
    assert nas.create_space("tiny+q8-32b").fingerprint() == qspace.fingerprint()
    assert rebuild(qspace.meta["recipe"]).fingerprint() == qspace.fingerprint()
    full = nas.create_space("tiny+q8-32bf")
    assert full.meta["quantization"]["reduce_range"] is False
    assert full.fingerprint() != qspace.fingerprint()
    supernet = nas.create_supernet("tiny+q8-32b", num_classes=10)
    assert supernet.space.fingerprint() == qspace.fingerprint()


def test_run_directory_reopens_in_a_fresh_process(qspace: nas.SearchSpace, tmp_path) -> None:
    assert_run_reopens_in_a_fresh_process(tmp_path / "run", qspace, "classification")


def test_size_bytes_counts_weights_at_their_bits(qspace: nas.SearchSpace) -> None:
    arch = qspace.arch({**qspace.smallest().to_dict(), "s1.b0.expand": 4, "s1.b0.kernel": 5})
    floats, ints = _bits(qspace, arch, 32), _bits(qspace, arch, 8)
    params = nas.count(qspace, floats, 10)["params"]
    assert nas.count(qspace, floats, 10)["size_bytes"] == 4 * params
    mid1, mid2 = mid_channels(8, 4), mid_channels(16, 2)  # s1.b0: 8 -> 16; s2.b0: 16 -> 24
    weights = (8 * mid1 + mid1 * 25 + mid1 * 16) + (16 * mid2 + mid2 * 9 + mid2 * 24)
    assert nas.count(qspace, ints, 10)["size_bytes"] == 4 * params - 3 * weights
    assert size_bytes(qspace, ints, params) == 4 * params - 3 * weights
    many = nas.counting.count_many(qspace, [floats, ints], 10)  # type: ignore[attr-defined]
    assert [m["size_bytes"] for m in many] == [4 * params, 4 * params - 3 * weights]
    tiny = nas.create_space("tiny")
    assert "size_bytes" not in nas.count(tiny, tiny.largest())


def test_bad_input_one_clear_line_each() -> None:
    with pytest.raises(ConfigError, match=r"'nb201'.*no quantizable layers.*families"):
        quantized(nas.create_space("nb201"))
    with pytest.raises(ConfigError, match=r"bits \(4,\) not offered.*allowed bits are \[8, 32\]"):
        quantized(nas.create_space("tiny"), bits=(4,))
    with pytest.raises(ConfigError, match="granularity must be one of"):
        quantized(nas.create_space("tiny"), granularity="cell")
    with pytest.raises(ConfigError, match="quantized already"):
        quantized(nas.create_space("tiny+q8-32b"))
    small = TensorData(torch.zeros(8, 3, 16, 16, dtype=torch.uint8), torch.zeros(8).long(),
                       num_classes=10)
    with pytest.raises(ConfigError, match=r"calibration set too small: 8 images.*at least 16"):
        calibration_inputs(small)

    class NoGroups:
        space = nas.create_space("tiny")

    with pytest.raises(ConfigError, match="has no quant_groups"):
        quant_layers(NoGroups(), NoGroups.space.largest())


def test_qparams_match_onnxruntime_formulas() -> None:
    quant_utils = pytest.importorskip("onnxruntime.quantization.quant_utils",
                                      reason="onnxruntime is an optional dependency")
    qmin, qmax = np.array(-128, np.int8), np.array(127, np.int8)
    for lo, hi in [(-5.56, 4.71), (0.0, 6.2), (-0.3, -0.1), (1.5, 9.0)]:
        zero, scale = quant_utils.compute_scale_zp(np.float32(lo), np.float32(hi), qmin, qmax)
        assert act_qparams(lo, hi) == (float(scale), int(zero))
    x = torch.linspace(-7, 7, 101)
    scale, zero = act_qparams(-5.0, 4.0)
    q = fake_quant_act(x, scale, zero)
    assert q.min() >= (-128 - zero) * scale - 1e-6 and q.max() <= (127 - zero) * scale + 1e-6
    inside = (x > -5) & (x < 4)
    assert (q[inside] - x[inside]).abs().max() <= scale / 2 + 1e-6
    w = torch.randn(6, 4, 3, 3)
    for qmax_w in (127, 64):
        wq = fake_quant_weight(w, qmax_w)
        step = w.abs().flatten(1).amax(1) / qmax_w
        assert ((wq - w).abs().flatten(1).amax(1) <= step / 2 + 1e-6).all()
        assert torch.allclose(wq / step.view(-1, 1, 1, 1), (wq / step.view(-1, 1, 1, 1)).round(),
                              atol=1e-4)


@pytest.fixture(scope="module")
def trained() -> tuple[nas.Supernet, TensorData]:
    torch.manual_seed(0)
    return nas.create_supernet("tiny+q8-32b", num_classes=10).eval(), load_digits()


def test_quant_groups_name_the_extracted_weights(trained) -> None:
    supernet, _ = trained
    for arch in supernet.space.sample_many(5, np.random.default_rng(1)):
        supernet.set_active(arch)
        state = supernet.extract(arch).state_dict()
        groups = supernet.quant_groups(arch)
        assert set(groups) == set(policy_of(supernet.space, arch))
        for layers in groups.values():
            for layer in layers:
                assert state[layer.weight_name].shape == layer.conv.active_weight().shape


def test_fake_quantized_changes_only_quantized_archs_and_cleans_up(trained) -> None:
    supernet, data = trained
    arch = _bits(supernet.space, supernet.space.largest(), 8)
    x = calibration_inputs(data, n_batches=2, resolution=16)
    arch = arch.replace(supernet.space, resolution=16)
    ranges = calibrate(supernet, arch, x)
    assert len(ranges.values) == 6 * 4  # per block: 3 conv inputs, 3 BN-folded outputs
    with torch.no_grad():
        before = supernet(x[0])
        with fake_quantized(supernet, arch, ranges):
            quant = supernet(x[0])
        after = supernet(x[0])
    assert torch.equal(before, after)
    assert 0 < (quant - before).abs().max() < 0.2 * before.abs().max()
    assert not any("active_weight" in vars(layer.conv)
                   for layer in quantized_layers(supernet, arch))
    floats = _bits(supernet.space, arch, 32)
    assert quantized_layers(supernet, floats) == []
    with pytest.raises(ConfigError, match="calibrated for arch"), fake_quantized(
        supernet, floats, ranges
    ):
        pass


def test_evaluate_uses_the_policy(trained) -> None:
    supernet, data = trained
    space = supernet.space
    arch = _bits(space, space.smallest(), 8)
    kw = dict(bn_data=data, n_bn_batches=2, max_batches=2, batch_size=128)
    quant = nas.evaluate(supernet, [arch], data, **kw)[0]
    floats = nas.evaluate(supernet, [_bits(space, arch, 32)], data, **kw)[0]
    assert quant["loss"] != floats["loss"]
    base = nas.create_space("tiny")
    plain = base.arch({k: v for k, v in arch.to_dict().items() if not k.endswith(".bits")})
    net = nas.create_supernet("tiny", num_classes=10)
    net.load_state_dict(supernet.state_dict())
    assert nas.evaluate(net, [plain], data, **kw)[0]["loss"] == pytest.approx(floats["loss"])


def test_ofa_mbv3_quant_groups_and_size() -> None:
    space = nas.create_space("ofa_mbv3_w1.0+q8-32b")
    supernet = nas.create_supernet(space.name, num_classes=10)
    arch = space.sample(np.random.default_rng(3))
    groups = quant_layers(supernet, arch)
    assert set(groups) == set(policy_of(space, arch))
    assert len(groups) == sum(int(arch[f"s{s}.depth"]) for s in range(1, 6))
    names = {layer.weight_name for layers in groups.values() for layer in layers}
    first = f"blocks.{1 + int(arch['s1.depth'])}.expand.conv.weight"  # first block of s2
    assert first in names and "blocks.0.depthwise.conv.weight" not in names
    counts = nas.count(space, _bits(space, arch, 8), 10)
    assert 0.25 * 4 * counts["params"] < counts["size_bytes"] < 4 * counts["params"]
