"""Elastic layers: slicing, OFA's kernel transformation, BN statistics, export equivalence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.blocks import MBConv, SqueezeExcite
from nas.elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticDepthwiseConv2d,
    ElasticLinear,
    ElasticMBConv,
    ElasticSqueezeExcite,
    mid_channels,
)


def _no_elastic(module: nn.Module) -> bool:
    return not any(type(m).__module__.startswith("nas.elastic") for m in module.modules())


# ----------------------------------------------------------------- conv
def test_conv_slices_prefix_of_weight_and_exports_plain_conv() -> None:
    conv = ElasticConv2d(16, 32, kernel_size=3, stride=2, bias=True)
    conv.active_out_channels = 24
    x = torch.randn(2, 8, 9, 9)
    y = conv(x)
    ref = F.conv2d(x, conv.weight[:24, :8], conv.bias[:24], 2, 1)  # type: ignore[index]
    assert y.shape == (2, 24, 5, 5)
    assert torch.equal(y, ref)
    conv.active_in_channels = 8
    static = conv.export()
    assert type(static) is nn.Conv2d
    assert (static.in_channels, static.out_channels) == (8, 24)
    assert torch.equal(static(x), y)
    # a copy: changing the export leaves the elastic weights alone
    with torch.no_grad():
        static.weight.zero_()
    assert conv.weight.abs().sum() > 0


def test_conv_rejects_bad_widths() -> None:
    conv = ElasticConv2d(4, 8)
    with pytest.raises(ValueError, match=r"active_out_channels must be an int in 1\.\.8"):
        conv.active_out_channels = 9
    with pytest.raises(ValueError, match="more than max_in_channels=4"):
        conv(torch.randn(1, 5, 3, 3))


def test_gradient_flows_only_into_active_slice() -> None:
    conv = ElasticConv2d(8, 8)
    conv.active_out_channels = 4
    conv(torch.randn(2, 6, 4, 4)).sum().backward()
    grad = conv.weight.grad
    assert grad is not None
    assert grad[:4, :6].abs().sum() > 0
    assert grad[4:].abs().sum() == 0 and grad[:, 6:].abs().sum() == 0


def test_active_config_is_per_instance() -> None:
    a, b = ElasticConv2d(4, 8), ElasticConv2d(4, 8)
    a.active_out_channels = 2
    assert b.active_out_channels == 8
    d1, d2 = ElasticDepthwiseConv2d(8, (3, 5, 7)), ElasticDepthwiseConv2d(8, (3, 5, 7))
    d1.active_kernel_size = 3
    assert d2.active_kernel_size == 7


# ----------------------------------------------------------------- depthwise, kernel transform
def test_depthwise_has_ofa_transform_matrices_initialised_to_identity() -> None:
    dw = ElasticDepthwiseConv2d(12, (3, 5, 7))
    names = {n for n, _ in dw.named_parameters()}
    assert names == {"weight", "7to5_matrix", "5to3_matrix"}
    assert torch.equal(dw.get_parameter("7to5_matrix"), torch.eye(25))
    assert torch.equal(dw.get_parameter("5to3_matrix"), torch.eye(9))
    # identity matrices: the small kernel is the centre of the large one
    assert torch.equal(dw.active_weight(12, 3), dw.weight[:, :, 2:5, 2:5])


def test_depthwise_kernel_transform_matches_ofa_formula() -> None:
    dw = ElasticDepthwiseConv2d(6, (3, 5, 7))
    with torch.no_grad():
        for name in ("7to5_matrix", "5to3_matrix"):
            dw.get_parameter(name).add_(0.1 * torch.randn_like(dw.get_parameter(name)))
    w = dw.weight[:4]
    k5 = F.linear(w[:, :, 1:6, 1:6].reshape(4, 25), dw.get_parameter("7to5_matrix")).view(
        4, 1, 5, 5
    )
    k3 = F.linear(k5[:, :, 1:4, 1:4].reshape(4, 9), dw.get_parameter("5to3_matrix")).view(
        4, 1, 3, 3
    )
    assert torch.allclose(dw.active_weight(4, 5), k5)
    assert torch.allclose(dw.active_weight(4, 3), k3)
    dw.active_kernel_size = 3
    x = torch.randn(2, 4, 8, 8)
    y = dw(x)
    assert torch.allclose(y, F.conv2d(x, k3, None, 1, 1, 1, 4), atol=1e-6)
    y.sum().backward()
    assert dw.get_parameter("5to3_matrix").grad is not None
    assert dw.get_parameter("7to5_matrix").grad is not None


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_depthwise_export_equals_forward(kernel: int) -> None:
    dw = ElasticDepthwiseConv2d(16, (3, 5, 7), stride=2)
    with torch.no_grad():
        dw.get_parameter("5to3_matrix").add_(0.2)
    dw.active_kernel_size = kernel
    dw.active_channels = 10
    x = torch.randn(2, 10, 9, 9)
    static = dw.export()
    assert type(static) is nn.Conv2d and static.groups == 10 and static.kernel_size == (kernel,) * 2
    assert torch.equal(static(x), dw(x))


def test_depthwise_rejects_unknown_kernel() -> None:
    dw = ElasticDepthwiseConv2d(4, (3, 5))
    with pytest.raises(ValueError, match=r"one of \[3, 5\]"):
        dw.active_kernel_size = 7


# ----------------------------------------------------------------- batch norm
def test_bn_train_updates_only_active_running_stats() -> None:
    bn = ElasticBatchNorm2d(32)
    ref = nn.BatchNorm2d(24)
    x = torch.randn(4, 24, 5, 5) * 3 + 1
    y = bn(x)
    assert torch.allclose(y, ref(x), atol=1e-6)
    mean, var = bn.running_mean, bn.running_var
    assert mean is not None and var is not None
    assert ref.running_mean is not None and ref.running_var is not None
    assert torch.allclose(mean[:24], ref.running_mean)
    assert torch.allclose(var[:24], ref.running_var)
    assert torch.equal(mean[24:], torch.zeros(8))
    assert torch.equal(var[24:], torch.ones(8))
    assert int(bn.num_batches_tracked) == 1  # type: ignore[arg-type]


def test_bn_eval_uses_running_stats_and_exports() -> None:
    bn = ElasticBatchNorm2d(16)
    for _ in range(3):
        bn(torch.randn(8, 16, 4, 4) * 2 + 0.5)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    bn.eval()
    bn.active_channels = 12
    x = torch.randn(2, 12, 4, 4)
    static = bn.export().eval()
    assert type(static) is nn.BatchNorm2d and static.num_features == 12
    assert torch.equal(static(x), bn(x))
    mean, var = bn.running_mean, bn.running_var
    assert mean is not None and var is not None
    expected = (x - mean[:12, None, None]) / torch.sqrt(var[:12, None, None] + bn.eps)
    expected = expected * bn.weight[:12, None, None] + bn.bias[:12, None, None]
    assert torch.allclose(bn(x), expected, atol=1e-5)


def test_bn_cumulative_momentum_for_recalibration() -> None:
    bn = ElasticBatchNorm2d(8, momentum=None)
    batches = [torch.randn(16, 6, 3, 3) + i for i in range(3)]
    for b in batches:
        bn(b)
    means = torch.stack([b.mean((0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean[:6], means, atol=1e-5)  # type: ignore[index]


# ----------------------------------------------------------------- linear, SE
def test_linear_slices_inputs_and_exports() -> None:
    fc = ElasticLinear(20, 5)
    x = torch.randn(3, 12)
    assert torch.equal(fc(x), F.linear(x, fc.weight[:, :12], fc.bias))
    fc.active_in_features = 12
    static = fc.export()
    assert type(static) is nn.Linear and static.in_features == 12
    assert torch.equal(static(x), fc(x))


def test_squeeze_excite_hidden_width_follows_channels_and_exports() -> None:
    se = ElasticSqueezeExcite(144)
    assert se.reduce.out_channels == 40  # make_divisible(144 // 4, 8)
    se.active_channels = 96
    static = se.export()
    assert type(static) is SqueezeExcite and static.reduce.out_channels == 24
    x = torch.randn(2, 96, 5, 5)
    assert torch.equal(static(x), se(x))


# ----------------------------------------------------------------- MBConv block
def _randomise_bn(module: nn.Module) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)  # type: ignore[union-attr]
                m.running_var.uniform_(0.5, 1.5)  # type: ignore[union-attr]


@pytest.mark.parametrize("se", [False, True])
def test_mbconv_export_equals_elastic_block_for_every_choice(se: bool) -> None:
    block = ElasticMBConv(
        16, 16, kernel_sizes=(3, 5, 7), expand_ratios=(3, 4, 6), act="h_swish", se=se
    )
    _randomise_bn(block)
    block.eval()
    x = torch.randn(2, 16, 7, 7)
    for k in (3, 5, 7):
        for e in (3, 4, 6):
            block.set_active(kernel_size=k, expand_ratio=e)
            static = block.export().eval()
            assert isinstance(static, MBConv) and _no_elastic(static)
            assert static.residual
            assert static.depthwise.conv.weight.shape == (mid_channels(16, e), 1, k, k)
            assert torch.allclose(static(x), block(x), atol=1e-6)


def test_mbconv_rejects_bad_choice() -> None:
    block = ElasticMBConv(8, 8, kernel_sizes=(3, 5), expand_ratios=(2, 4))
    with pytest.raises(ValueError, match="expand_ratio must be one of"):
        block.set_active(kernel_size=3, expand_ratio=3)
    with pytest.raises(ValueError, match="active_kernel_size must be one of"):
        block.set_active(kernel_size=7, expand_ratio=2)


def test_reorganize_keeps_largest_function_and_sorts_importance() -> None:
    block = ElasticMBConv(
        16, 24, kernel_sizes=(3, 5), expand_ratios=(2, 4), stride=2, act="relu", se=True
    )
    _randomise_bn(block)
    with torch.no_grad():
        block.project_conv.weight.mul_(torch.rand(1, block.max_mid_channels, 1, 1) * 3)
    block.eval()
    x = torch.randn(2, 16, 8, 8)
    before = block(x)
    importance_before = block.project_conv.weight.abs().sum((0, 2, 3))
    order = block.reorganize_channels()
    after = block(x)
    assert torch.allclose(before, after, atol=1e-5)
    importance = block.project_conv.weight.abs().sum((0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])
    assert torch.equal(importance, importance_before[order])
    # the narrowest width now keeps the most important channels
    top = torch.topk(importance_before, mid_channels(16, 2)).indices
    assert set(order[: mid_channels(16, 2)].tolist()) == set(top.tolist())


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
