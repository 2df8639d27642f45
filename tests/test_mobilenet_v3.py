"""The MobileNetV3-family supernet: OFA widths, supernet == extracted subnet, reorganisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nas
from nas.blocks import ConvBNAct, MBConv
from search_spaces.mobilenet_v3_net import MobileNetV3Net, MobileNetV3Supernet, layer_specs


def _make(name: str, num_classes: int) -> MobileNetV3Supernet:
    supernet = nas.create_supernet(name, num_classes=num_classes)
    assert isinstance(supernet, MobileNetV3Supernet)
    return supernet


def _warm_bn(supernet: MobileNetV3Supernet, rng: np.random.Generator, steps: int = 3) -> None:
    """A few train-mode forwards of random archs, so BN running stats are not identity."""
    supernet.train()
    with torch.no_grad():
        for _ in range(steps):
            arch = supernet.sample_active(rng)
            r = int(arch["resolution"])
            supernet(torch.randn(4, 3, r, r) * 2 + 0.3)
    supernet.eval()


def _max_deviation(supernet: MobileNetV3Supernet, n: int, seed: int, batch: int) -> float:
    rng = np.random.default_rng(seed)
    _warm_bn(supernet, rng)
    worst = 0.0
    with torch.no_grad():
        for arch in supernet.space.sample_many(n, rng):
            r = int(arch["resolution"])
            x = torch.randn(batch, 3, r, r)
            supernet.set_active(arch)
            expected = supernet(x)
            model = supernet.extract(arch)
            worst = max(worst, float((model(x) - expected).abs().max()))
    return worst


def test_ofa_widths_w10_and_w12() -> None:
    w10 = MobileNetV3Supernet(nas.create_space("ofa_mbv3_w1.0"), num_classes=10).plan
    assert (w10.stem, w10.first_block) == (16, 16)
    assert [s.width for s in w10.stages] == [24, 40, 80, 112, 160]
    assert (w10.final_expand, w10.last_channel) == (960, 1280)
    w12 = MobileNetV3Supernet(nas.create_space("ofa_mbv3_w1.2"), num_classes=10).plan
    # make_divisible(v * 1.2, 8) with OFA's "no more than 10 % down" rule
    assert (w12.stem, w12.first_block) == (24, 24)
    assert [s.width for s in w12.stages] == [32, 48, 96, 136, 192]
    assert (w12.final_expand, w12.last_channel) == (1152, 1536)
    assert [s.stride for s in w10.stages] == [2, 2, 2, 1, 2]
    assert [s.act for s in w10.stages] == ["relu", "relu", "h_swish", "h_swish", "h_swish"]
    assert [s.se for s in w10.stages] == [False, True, False, True, True]


def test_largest_ofa_mbv3_has_ofa_structure() -> None:
    supernet = _make("ofa_mbv3_w1.0", 1000)
    model = supernet.extract(supernet.space.largest())
    assert isinstance(model, MobileNetV3Net)
    blocks = list(model.blocks)
    assert len(blocks) == 1 + 20
    first = blocks[0]
    assert isinstance(first, MBConv) and first.expand is None and first.residual
    counted = nas.count(supernet.space, supernet.space.largest(), num_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == counted["params"] == 7_664_760
    feature_mix = model.feature_mix
    assert isinstance(feature_mix, ConvBNAct)
    assert feature_mix.conv.bias is None and not hasattr(feature_mix, "bn")


def test_tiny_supernet_equals_extracted_for_100_archs() -> None:
    supernet = _make("tiny", 10)
    assert _max_deviation(supernet, n=100, seed=1, batch=2) <= 1e-5


def test_ofa_mbv3_supernet_equals_extracted_for_some_archs() -> None:
    supernet = _make("ofa_mbv3_w1.0", 10)
    assert _max_deviation(supernet, n=8, seed=2, batch=1) <= 1e-5


@pytest.mark.slow
def test_ofa_mbv3_supernet_equals_extracted_for_100_archs() -> None:
    supernet = _make("ofa_mbv3_w1.0", 1000)
    assert _max_deviation(supernet, n=100, seed=3, batch=2) <= 1e-5


def test_extract_is_plain_torch_and_copies_weights() -> None:
    supernet = _make("tiny", 10)
    arch = supernet.space.sample(np.random.default_rng(0))
    supernet.eval()
    model = supernet.extract(arch)
    assert not any(type(m).__module__.startswith("nas.elastic") for m in model.modules())
    assert not model.training
    before = [p.detach().clone() for p in supernet.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, supernet.parameters()))


def test_train_step_touches_only_active_weights() -> None:
    supernet = _make("tiny", 10)
    space = supernet.space
    arch = space.smallest()
    supernet.set_active(arch)
    r = int(arch["resolution"])
    supernet(torch.randn(2, 3, r, r)).sum().backward()
    first, second = supernet.stage_blocks(0)
    grad = first.expand_conv.weight.grad
    mid = first.active_mid_channels
    assert grad is not None and grad[:mid].abs().sum() > 0 and grad[mid:].abs().sum() == 0
    assert second.expand_conv.weight.grad is None  # depth 1: the second block is unused


def test_set_active_rejects_foreign_arch() -> None:
    supernet = _make("tiny", 10)
    other = nas.create_space("ofa_mbv3_w1.0").largest()
    with pytest.raises(nas.InvalidArchError):
        supernet.set_active(other)


def test_reorganize_channels_keeps_largest_and_prefers_important_channels() -> None:
    supernet = _make("tiny", 10)
    rng = np.random.default_rng(4)
    _warm_bn(supernet, rng)
    space = supernet.space
    largest = space.largest()
    x = torch.randn(2, 3, 32, 32)
    supernet.set_active(largest)
    with torch.no_grad():
        before = supernet(x)
        supernet.reorganize_channels()
        after = supernet(x)
    assert torch.allclose(before, after, atol=1e-5)
    for i in range(len(supernet.plan.stages)):
        for block in supernet.stage_blocks(i):
            importance = block.project_conv.weight.abs().sum((0, 2, 3))
            assert torch.all(importance[:-1] >= importance[1:])


def test_layer_specs_follow_the_extracted_network() -> None:
    space = nas.create_space("ofa_mbv3_w1.0")
    supernet = _make("ofa_mbv3_w1.0", 1000)
    arch = space.from_ofa({"ks": [3, 5, 7, 3] * 5, "e": [3, 4, 6, 4] * 5,
                           "d": [2, 3, 4, 2, 3], "r": 132})
    model = supernet.extract(arch)
    assert isinstance(model, MobileNetV3Net)
    specs = layer_specs(space, arch, 1000)
    modules = [model.stem, *model.blocks, model.final_expand, model.pool,
               model.feature_mix, model.classifier]
    assert len(specs) == len(modules)
    shapes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_pre_hook(lambda _m, a: shapes.append(tuple(a[0].shape)))
             for m in modules]
    model.eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 132, 132))
    for h in hooks:
        h.remove()
    assert shapes == [s.input_shape(1) for s in specs]
    for spec, module in zip(specs, modules):
        assert spec.params() == sum(p.numel() for p in module.parameters()), spec.key


def test_ofa_checkpoint_keys_map_onto_the_supernet() -> None:
    from search_spaces.mobilenet_v3_ofa_weights import load_ofa_state_dict, ofa_key_map

    supernet = _make("ofa_mbv3_w1.0", 1000)
    keys = [
        "first_conv.conv.weight",
        "blocks.0.mobile_inverted_conv.depth_conv.conv.weight",  # the older key format
        "blocks.1.conv.inverted_bottleneck.conv.conv.weight",
        "blocks.6.conv.depth_conv.conv.7to5_matrix",
        "blocks.6.conv.depth_conv.se.fc.reduce.bias",
        "blocks.20.conv.point_linear.bn.bn.running_var",
        "classifier.linear.weight",
    ]
    assert list(ofa_key_map(supernet, keys).values()) == [
        "stem.conv.weight",
        "first_block.depthwise.conv.weight",
        "stages.0.0.expand_conv.weight",
        "stages.1.1.depthwise_conv.7to5_matrix",
        "stages.1.1.se.reduce.bias",
        "stages.4.3.project_bn.running_var",
        "classifier.weight",
    ]
    with pytest.raises(ValueError, match="matches no layer"):
        ofa_key_map(supernet, ["blocks.1.conv.nonsense.weight"])
    with pytest.raises(ValueError, match="has shape"):
        load_ofa_state_dict(supernet, {"classifier.linear.weight": torch.zeros(10, 1280)})


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
