"""Helpers for tests that build networks: non-trivial BN statistics, MACs seen by hooks."""

from __future__ import annotations

import torch
from torch import nn


def randomize_bn(model: nn.Module, seed: int) -> None:
    """Random running statistics and affine parameters, so eval-mode BN is not the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.3)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)


def hooked_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs of convolutions and linear layers, counted from the shapes seen in a forward."""
    total = 0

    def conv_hook(m: nn.Module, _: object, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(m, nn.Conv2d)
        k = m.kernel_size[0] * m.kernel_size[1]
        total += out[0].numel() * m.in_channels // m.groups * k

    def linear_hook(m: nn.Module, _: object, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(m, nn.Linear)
        total += out[0].numel() * m.in_features

    handles = [
        m.register_forward_hook(conv_hook if isinstance(m, nn.Conv2d) else linear_hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(x[:1])
    for h in handles:
        h.remove()
    return total
