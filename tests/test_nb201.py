"""The NAS-Bench-201 supernet: extraction is exact, the skeleton matches the benchmark's."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from _nets import hooked_macs, randomize_bn
from torch import nn

import nas
from search_spaces import nas_bench_201
from search_spaces.nas_bench_201 import EDGES, make_space
from search_spaces.nb201_net import Cell, NB201Supernet, SuperCell, edge_key

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nas_bench_201"
CSV = DATA / "nb201_cifar10_latency.csv"
SPACE = make_space()


@pytest.fixture(scope="module")
def supernet() -> NB201Supernet:
    torch.manual_seed(0)
    net = nas.create_supernet("nb201", num_classes=10)
    assert isinstance(net, NB201Supernet)
    randomize_bn(net, 1)
    return net.eval()


def test_extract_matches_supernet_on_100_archs(supernet: NB201Supernet) -> None:
    rng = np.random.default_rng(0)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    worst, outputs = 0.0, set()
    with torch.no_grad():
        for arch in supernet.space.sample_many(100, rng):
            supernet.set_active(arch)
            y = supernet(x)
            model = supernet.extract(arch).eval()
            assert not any(isinstance(m, SuperCell) for m in model.modules())
            worst = max(worst, (y - model(x)).abs().max().item())
            outputs.add(round(y[0, 0].item(), 5))
    assert worst <= 1e-5
    assert len(outputs) > 50  # the archs really compute different functions


def test_extracted_cell_keeps_only_chosen_ops(supernet: NB201Supernet) -> None:
    arch = SPACE.parse(
        "|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    )
    model = supernet.extract(arch)
    cells = [m for m in model.modules() if isinstance(m, Cell)]
    assert len(cells) == 15
    assert sorted(cells[0].edges) == ["n1_from0", "n3_from0", "n3_from2"]
    assert cells[0].inputs == ((0,), (), (0, 2))
    convs = [m for m in cells[0].modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (1, 1)]


def test_all_none_cell_outputs_zero_features(supernet: NB201Supernet) -> None:
    arch = SPACE.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        supernet.set_active(arch)
        model = supernet.extract(arch).eval()
        assert torch.allclose(supernet(x), model(x), atol=1e-6)
        # the head sees only zeros: logits do not depend on the input
        assert torch.allclose(model(x), model(torch.randn(1, 3, 32, 32)), atol=1e-6)


@pytest.mark.skipif(not CSV.exists(), reason="shared NAS-Bench-201 data not available")
def test_param_counts_match_nas_bench_201(supernet: NB201Supernet) -> None:
    with CSV.open() as handle:
        rows = [row for _, row in zip(range(50), csv.DictReader(handle))]
    for row in rows:
        model = supernet.extract(SPACE.parse(row["arch"]))
        params = sum(p.numel() for p in model.parameters()) / 1e6
        assert params == pytest.approx(float(row["params_mb"]), abs=1e-5), row["arch"]


def test_supernet_trains_only_active_ops(supernet: NB201Supernet) -> None:
    net = NB201Supernet(supernet.space, num_classes=10).train()
    arch = SPACE.parse(
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|none~2|"
    )
    net.set_active(arch)
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    cell = net.cells[0]
    assert isinstance(cell, SuperCell)
    grads = {
        f"{to}.{frm}.{op}": any(p.grad is not None for p in module.parameters())
        for (to, frm), edge in ((e, cell.edges[edge_key(*e)]) for e in EDGES)
        for op, module in edge.named_children()
        if any(True for _ in module.parameters())
    }
    assert grads["1.0.nor_conv_1x1"] and grads["2.0.nor_conv_3x3"]
    assert not grads["1.0.nor_conv_3x3"] and not grads["3.1.nor_conv_1x1"]


def test_extract_copies_weights(supernet: NB201Supernet) -> None:
    arch = supernet.space.largest()
    model = supernet.extract(arch)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    assert not torch.equal(next(model.parameters()), next(supernet.parameters()))


def test_num_classes_and_registry() -> None:
    net = nas.create_supernet("nb201", num_classes=100)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 100)
    with pytest.raises(ValueError, match="num_classes"):
        nas.create_supernet("nb201", num_classes=0)


def test_layer_specs_count_like_the_network(supernet: NB201Supernet) -> None:
    x = torch.randn(1, 3, 32, 32)
    for arch in supernet.space.sample_many(5, np.random.default_rng(7)):
        model = supernet.extract(arch).eval()
        counts = nas.count(SPACE, arch, num_classes=10)
        assert counts["params"] == sum(p.numel() for p in model.parameters())
        assert counts["macs"] == hooked_macs(model, x)


def test_layer_specs_build_their_modules() -> None:
    arch = SPACE.parse("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|")
    specs = nas_bench_201.layers(SPACE, arch, 10)
    assert [s.kind for s in specs].count("nb201_cell") == 15
    assert [s.kind for s in specs][6] == "nb201_resblock"
    assert specs[-3].kind == "bn_act"
    assert specs[1].key == "nb201_cell|in16|out16|k1|s1|hw32|none|se0|cell=c3-0-p-s-0-0"
    for spec in (specs[0], specs[1], specs[6], specs[-3]):
        module = spec.build().eval()
        assert sum(p.numel() for p in module.parameters()) == spec.params()
        assert module(torch.randn(spec.input_shape(2))).shape[-1] == spec.output_hw
