"""The Once-for-All ResNet50-D supernet and its bottleneck block."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _nets import hooked_macs, randomize_bn
from torch import nn

import nas
from nas.elastic.bottleneck import Bottleneck, ElasticBottleneck, bottleneck_mid_channels
from search_spaces import ofa_resnet
from search_spaces.resnet_net import OFAResNetSupernet, ResNet, from_ofa_state_dict

# ResNet50-D (w=1.0, e=0.25, depths 3-4-6-3, deep stem), 1000 classes: the count fast.ai's
# xresnet50 and pytorchcv's resneta50b report.
RESNET50D_PARAMS = 25_576_264


@pytest.fixture(scope="module")
def supernet() -> OFAResNetSupernet:
    torch.manual_seed(0)
    net = nas.create_supernet("ofa_resnet50", num_classes=1000)
    assert isinstance(net, OFAResNetSupernet)
    randomize_bn(net, 1)
    return net.eval()


def max_extract_error(
    supernet: OFAResNetSupernet, n: int, resolution: int, batch: int, seed: int
) -> float:
    rng = np.random.default_rng(seed)
    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))
    worst = 0.0
    with torch.no_grad():
        for arch in supernet.space.sample_many(n, rng):
            supernet.set_active(arch)
            y = supernet(x)
            model = supernet.extract(arch).eval()
            assert not any(isinstance(m, ElasticBottleneck) for m in model.modules())
            worst = max(worst, (y - model(x)).abs().max().item())
    return worst


def test_extract_matches_supernet(supernet: OFAResNetSupernet) -> None:
    assert max_extract_error(supernet, 5, resolution=48, batch=1, seed=0) <= 1e-5


@pytest.mark.slow
def test_extract_matches_supernet_on_100_archs(supernet: OFAResNetSupernet) -> None:
    assert max_extract_error(supernet, 100, resolution=128, batch=2, seed=1) <= 1e-5


def test_extract_edge_archs_and_depth_changes(supernet: OFAResNetSupernet) -> None:
    space = supernet.space
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        for arch in (space.largest(), space.smallest(), space.largest()):
            supernet.set_active(arch)
            assert (supernet(x) - supernet.extract(arch)(x)).abs().max().item() <= 1e-5


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet50d_subnet_has_the_published_size(supernet: OFAResNetSupernet) -> None:
    arch = supernet.space.from_ofa({"d": [2, 1, 2, 2, 1], "e": [0.25] * 18, "w": [2] * 6, "r": 224})
    model = supernet.extract(arch)
    assert params(model) == RESNET50D_PARAMS
    blocks: list[Any] = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16
    assert [b.conv3.conv.out_channels for b in blocks[::5]] == [256, 512, 1024, 2048]


def test_largest_subnet_uses_every_supernet_weight(supernet: OFAResNetSupernet) -> None:
    model = supernet.extract(supernet.space.largest())
    assert params(model) == params(supernet) == 48_105_992


def test_static_structure_follows_arch(supernet: OFAResNetSupernet) -> None:
    space = supernet.space
    arch = space.from_ofa(
        {"d": [0, 0, 2, 1, 0], "e": [0.2] * 18, "w": [0, 1, 0, 1, 2, 0], "r": 160}
    )
    model: Any = supernet.extract(arch)
    assert isinstance(model, ResNet)
    assert len(model.input_stem) == 2  # stem.depth 2 skips the residual conv
    assert [m.out_channels for m in model.input_stem.modules() if isinstance(m, nn.Conv2d)] == [
        24,
        48,
    ]
    blocks: list[Any] = list(model.blocks)
    assert len(blocks) == 2 + 4 + 5 + 2
    assert blocks[0].conv1.conv.in_channels == 48
    assert blocks[0].conv3.conv.out_channels == 168
    assert blocks[0].conv1.conv.out_channels == bottleneck_mid_channels(168, 0.2) == 32
    assert isinstance(blocks[1].downsample, nn.Identity)
    assert model.classifier.in_features == 1328
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_parameter_names_follow_ofa(supernet: OFAResNetSupernet) -> None:
    names = set(supernet.state_dict())
    for name in (
        "input_stem.0.conv.weight",
        "input_stem.1.conv.bn.running_var",
        "blocks.0.conv1.conv.weight",
        "blocks.0.downsample.conv.weight",
        "blocks.17.conv3.bn.weight",
        "classifier.weight",
    ):
        assert name in names


def test_bottleneck_block_alone() -> None:
    block = ElasticBottleneck((40, 48, 64), (168, 208, 256), expand_ratios=(0.2, 0.25, 0.35))
    block.set_active(in_channels=48, out_channels=208, expand_ratio=0.25)
    x = torch.randn(2, 48, 9, 9)
    block.eval()
    static: Any = block.export().eval()
    assert static.conv1.conv.weight.shape == (56, 48, 1, 1)
    assert (block(x) - static(x)).abs().max().item() <= 1e-5
    with pytest.raises(ValueError, match="expand_ratio"):
        block.set_active(in_channels=48, out_channels=208, expand_ratio=0.3)


def test_strided_bottleneck_on_odd_sizes() -> None:
    block = ElasticBottleneck((64,), (128,), expand_ratios=(0.25,), stride=2).eval()
    x = torch.randn(1, 64, 7, 7)
    y = block(x)
    assert y.shape == (1, 128, 4, 4)
    assert (y - block.export().eval()(x)).abs().max().item() <= 1e-5


def test_identity_block_rejects_width_change() -> None:
    block = ElasticBottleneck((168, 256), (168, 256), expand_ratios=(0.25,))
    assert block.identity
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        block.set_active(in_channels=168, out_channels=256, expand_ratio=0.25)


def test_training_step_updates_only_active_slice() -> None:
    net: Any = nas.create_supernet("ofa_resnet50", num_classes=10)
    arch = net.space.smallest()
    net.set_active(arch)
    net.train()
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    grad = net.blocks[0].conv1.conv.weight.grad
    assert grad is not None
    mid = bottleneck_mid_channels(168, 0.2)
    assert grad[:mid, :40].abs().sum() > 0  # stem width 40 in, mid out
    assert grad[mid:].abs().sum() == 0 and grad[:, 40:].abs().sum() == 0
    assert net.blocks[2].conv1.conv.weight.grad is None  # beyond stage 1's depth 2


def test_layer_specs_count_like_the_network(supernet: OFAResNetSupernet) -> None:
    space = supernet.space
    rng = np.random.default_rng(4)
    for arch in [space.largest(), space.smallest(), *space.sample_many(3, rng)]:
        r = int(arch["resolution"])
        model = supernet.extract(arch).eval()
        counts = nas.count(space, arch, num_classes=1000)
        assert counts["params"] == params(model)
        assert counts["macs"] == hooked_macs(model, torch.randn(1, 3, r, r))


def test_layer_specs_build_their_modules() -> None:
    space = nas.create_space("ofa_resnet50")
    arch = space.from_ofa({"d": [2, 0, 0, 0, 0], "e": [0.2] * 18, "w": [0] * 6, "r": 128})
    specs = ofa_resnet.layers(space, arch, 10)
    assert [s.kind for s in specs[:4]] == ["conv", "residual_conv", "conv", "maxpool"]
    assert [s.get("downsample") for s in specs[4:6]] == [1, 0]
    assert specs[4].key == "bottleneck|in40|out168|mid32|k3|s1|hw32|relu|se0|downsample=1"
    for spec in specs[:5] + specs[-2:]:
        module = spec.build().eval()
        assert sum(p.numel() for p in module.parameters()) == spec.params()
        if spec.kind != "linear":
            y = module(torch.randn(spec.input_shape(1)))
            assert y.shape[-1] == spec.output_hw or spec.kind == "pool"


def test_counting_needs_no_torch() -> None:
    code = (
        "import sys, nas\n"
        "for name in ('ofa_resnet50', 'nb201'):\n"
        "    space = nas.create_space(name)\n"
        "    assert nas.count(space, space.largest())['params'] > 0\n"
        "assert 'torch' not in sys.modules, 'counting imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_ofa_checkpoint_names_map_onto_ours(supernet: OFAResNetSupernet) -> None:
    # names as the reference OFAResNets state dict has them (checked against the ofa package
    # by bench/bench_export_fidelity.py --ofa)
    ofa_names = {
        "input_stem.0.conv.conv.weight": "input_stem.0.conv.weight",
        "input_stem.0.bn.bn.running_mean": "input_stem.0.bn.running_mean",
        "input_stem.1.conv.conv.conv.weight": "input_stem.1.conv.conv.weight",
        "input_stem.1.conv.bn.bn.weight": "input_stem.1.conv.bn.weight",
        "blocks.0.conv2.conv.conv.weight": "blocks.0.conv2.conv.weight",
        "blocks.0.downsample.conv.conv.weight": "blocks.0.downsample.conv.weight",
        "blocks.0.downsample.bn.bn.running_var": "blocks.0.downsample.bn.running_var",
        "classifier.linear.linear.bias": "classifier.bias",
    }
    ours = supernet.state_dict()
    renamed = from_ofa_state_dict({k: ours[v] for k, v in ofa_names.items()})
    assert list(renamed) == list(ofa_names.values())
