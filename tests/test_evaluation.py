"""BN recalibration (exact cumulative statistics) and per-architecture evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny import make_tiny
from torch import nn

import nas
from nas.data import batches, load_data, resize, split
from nas.evaluation import measure, recalibrate_bn, reference_archs


@pytest.fixture(scope="module")
def digits() -> tuple:
    return split(load_data("digits", limit=240, seed=0), 0.25, seed=0)


def test_recalibrate_bn_computes_exact_mean_of_batch_statistics(digits: tuple) -> None:
    train, _ = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.3), nn.ReLU())
    model.eval()
    recalibrate_bn(model, train, n_batches=3, batch_size=16, resolution=12)
    bn = model[1]
    assert isinstance(bn, nn.BatchNorm2d)
    assert bn.running_mean is not None and bn.running_var is not None
    means, variances = [], []
    for i, (x, _) in enumerate(batches(train, 16, seed=0, epoch=0)):
        if i == 3:
            break
        h = model[0](resize(x, 12)).detach()
        means.append(h.mean(dim=(0, 2, 3)))
        variances.append(h.var(dim=(0, 2, 3), unbiased=True))
    assert torch.allclose(bn.running_mean, torch.stack(means).mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, torch.stack(variances).mean(0), atol=1e-4)
    assert bn.momentum == 0.3 and not model.training and not bn.training


def test_recalibration_is_independent_of_previous_statistics(digits: tuple) -> None:
    train, _ = digits
    torch.manual_seed(0)
    net = make_tiny()
    arch = net.space.smallest()
    net.set_active(arch)
    recalibrate_bn(net, train, 2, batch_size=16, resolution=arch["resolution"])
    first = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
                m.running_mean.fill_(3.0)
    recalibrate_bn(net, train, 2, batch_size=16, resolution=arch["resolution"])
    after = {k: v for k, v in net.state_dict().items() if "running" in k}
    assert all(torch.allclose(first[k], after[k]) for k in first)
    with pytest.raises(ValueError, match="n_batches"):
        recalibrate_bn(net, train, 0)


def test_evaluate_restores_supernet_state_and_matches_extracted_subnet(digits: tuple) -> None:
    train, val = digits
    torch.manual_seed(1)
    net = make_tiny()
    net.train()
    active = net.space.sample(np.random.default_rng(0))
    net.set_active(active)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    refs = reference_archs(net.space)
    rows = nas.evaluate(
        net, list(refs.values()), val, bn_data=train, n_bn_batches=2, bn_batch_size=16, device="cpu"
    )
    assert [set(r) for r in rows] == [{"accuracy", "loss", "n"}] * 3
    assert all(0.0 <= r["accuracy"] <= 100.0 and r["n"] == len(val) for r in rows)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert net.active == active and net.training

    # the same arch, extracted and recalibrated by hand, measures the same
    arch = refs["middle"]
    static = net.extract(arch)
    res = int(arch["resolution"])
    recalibrate_bn(static, train, 2, batch_size=16, resolution=res)
    alone = measure(static, val, resolution=res)
    assert alone["accuracy"] == pytest.approx(rows[1]["accuracy"])
    assert alone["loss"] == pytest.approx(rows[1]["loss"], rel=1e-4)


def test_reference_archs_are_ordered_by_size() -> None:
    space = nas.create_space("tiny")
    refs = reference_archs(space)
    assert refs["smallest"] == space.smallest() and refs["largest"] == space.largest()
    assert refs["middle"] not in (space.smallest(), space.largest())
    assert refs["middle"]["resolution"] == 24


def test_evaluate_rejects_foreign_archs(digits: tuple) -> None:
    _, val = digits
    net = make_tiny()
    with pytest.raises(nas.InvalidArchError):
        nas.evaluate(net, [nas.create_space("nb201").largest()], val)
