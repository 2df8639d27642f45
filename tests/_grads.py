"""The gradients one training step should leave, summed by hand (sandwich and sorted tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nas.data import resize
from nas.evaluation import arch_resolution
from nas.space import ArchConfig
from nas.tasks.classification import soft_cross_entropy


def assert_grads_are_the_hand_sum(
    net: Any, twin: Any, archs: Sequence[ArchConfig], x: torch.Tensor, y: torch.Tensor,
    kd_ratio: float,
) -> None:
    """``net``'s gradients equal ``twin``'s after summing, subnet by subnet in ``archs``'s
    order, cross entropy (label smoothing 0.1) plus ``kd_ratio`` x distillation to the first
    subnet's logits. Call with the same ``torch.manual_seed`` as the step (dropout masks)."""
    teacher = None
    for arch in archs:
        twin.set_active(arch)
        logits = twin(resize(x, arch_resolution(twin.space, arch)))
        loss = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
        if teacher is not None:
            loss = loss + kd_ratio * soft_cross_entropy(logits, teacher, 1.0)
        loss.backward()
        teacher = logits.detach() if teacher is None else teacher
    for (name, p), q in zip(net.named_parameters(), twin.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None and q.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-6), name
