"""Quantization-aware training (QAT): a subnet's forward fake-quantized by its policy, with
straight-through estimators, for ``TrainConfig(quantization_aware=True)``.

:func:`quantization_aware` installs, for the active subnet, the fake quantization of
:mod:`nas.quantization.fake` at the same points and with the same formulas, but
differentiable:

* weights: per-output-channel symmetric int8 (:func:`~nas.quantization.fake.fake_quant_weight`,
  ``reduce_range`` as the space says) or, weight-only spaces, ``MatMulNBits``' block-wise
  asymmetric 4/8 bits (:func:`~nas.quantization.weight_only.fake_quant_blockwise`); the
  gradient passes straight through (the scale comes from the weight itself, so no value is
  ever clipped);
* activations (static spaces: each quantized conv's input and BN output): per-tensor
  asymmetric int8 whose range is the *current batch's* min/max (the formulas of
  :func:`~nas.quantization.fake.act_qparams`, computed on the device, no host sync); the
  gradient passes where the value is inside the range (``qmin <= round(x/s) + z <= qmax``),
  zero outside.

Ranges from the current batch, not an EMA: nothing to keep between steps, so checkpoints
and exact resume are unchanged, and no running range is shared between the weight-shared
subnets of different widths that pass through the same module. Data-parallel ranks each use
their own batch's range. Evaluation (``evaluate``, ``policy_applied``) is unchanged: it uses
ranges calibrated on the user's data.

The training loop keeps the largest subnet of a ``sandwich`` / ``sorted`` step float (the
in-place teacher): its predictions are the soft targets of every other subnet, and the float
network teaches best; quantization noise in the targets would reach every student.

Example:
    >>> with quantization_aware(supernet, arch):      # arch of a quantized space
    ...     loss = criterion(supernet(x), y)
    >>> loss.backward()                                 # hooks are gone, gradients flow
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import torch

from nas.errors import ConfigError
from nas.quantization import weight_only as wo
from nas.quantization.fake import (
    ACT_QMAX,
    ACT_QMIN,
    W_QMAX,
    W_QMAX_REDUCED,
    _points,
    fake_quant_weight,
    layer_bits,
)
from nas.quantization.space import is_quantized, reduce_range, weight_only
from nas.space import ArchConfig, SearchSpace


def check_space(space: SearchSpace) -> None:
    """:class:`ConfigError` unless ``space`` carries a quantization policy."""
    if not is_quantized(space):
        raise ConfigError(
            f"quantization-aware training needs a space with a quantization policy; "
            f"{space.name!r} has none (use a quantized space, e.g. 'tiny+q8-32b', "
            "'vit_mini+q4-8-32b', or nas.quantized(space))"
        )


def _straight_through(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Exactly ``value`` forward, gradient 1 with respect to ``x`` backward."""
    return value.detach() + (x - x.detach())


def ste_weight(w: torch.Tensor, qmax: int = W_QMAX) -> torch.Tensor:
    """:func:`~nas.quantization.fake.fake_quant_weight` of ``w``, gradient passed through."""
    return _straight_through(fake_quant_weight(w, qmax), w)


def ste_blockwise(w: torch.Tensor, bits: int) -> torch.Tensor:
    """:func:`~nas.quantization.weight_only.fake_quant_blockwise` of ``w``, gradient passed
    through."""
    return _straight_through(wo.fake_quant_blockwise(w, bits), w)


def act_qparams_t(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, zero_point)`` float32 tensors of asymmetric int8 over ``[lo, hi]``:
    :func:`~nas.quantization.fake.act_qparams` on the device."""
    rmin = torch.clamp(lo.detach().float(), max=0.0).double()
    rmax = torch.clamp(hi.detach().float(), min=0.0).double()
    scale = (rmax - rmin) / (ACT_QMAX - ACT_QMIN)
    degenerate = scale < torch.finfo(torch.float32).tiny
    safe = torch.where(degenerate, torch.ones_like(scale), scale)
    zero = torch.where(degenerate, torch.zeros_like(scale), torch.round(ACT_QMIN - rmin / safe))
    return safe.float(), zero.float()


def ste_act(
    x: torch.Tensor, lo: torch.Tensor | None = None, hi: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x`` fake-quantized per tensor (asymmetric int8) over ``[lo, hi]`` (default: the
    batch's own min/max); gradient 1 where ``x`` is inside the range, 0 where it saturates.
    Computed in float32 whatever ``x``'s dtype (autocast), returned in ``x``'s."""
    xf = x.float()
    if lo is None or hi is None:
        lo, hi = xf.detach().amin(), xf.detach().amax()
    scale, zero = act_qparams_t(lo, hi)
    shifted = torch.round(xf.detach() / scale) + zero
    inside = (shifted >= ACT_QMIN) & (shifted <= ACT_QMAX)
    value = (torch.clamp(shifted, ACT_QMIN, ACT_QMAX) - zero) * scale
    return (value + (xf - xf.detach()) * inside).to(x.dtype)


@contextlib.contextmanager
def quantization_aware(supernet: Any, arch: ArchConfig) -> Iterator[None]:
    """Within the block, ``supernet`` computes ``arch`` fake-quantized by its policy with
    straight-through gradients (see the module docstring); every hook and weight override
    is removed on exit (the autograd graph built inside keeps them for ``backward``).

    Raises:
        ConfigError: the space has no policy, or a layer is fake-quantized already (e.g.
            inside :func:`~nas.quantization.fake.fake_quantized`).
    """
    check_space(supernet.space)
    supernet.set_active(arch)
    bits = layer_bits(supernet, arch)
    taken = [layer.name for layer, _ in bits if "active_weight" in vars(layer.conv)]
    if taken:
        raise ConfigError(f"layers {taken} are fake-quantized already; quantization-aware "
                          "training cannot nest inside fake_quantized / policy_applied")
    handles: list[Any] = []
    overridden: list[Any] = []
    try:
        if weight_only(supernet.space):
            for layer, b in bits:
                original = layer.conv.active_weight
                layer.conv.active_weight = (  # an instance attribute, removed on exit
                    lambda *a, _f=original, _b=b, **k: ste_blockwise(_f(*a, **k), _b))
                overridden.append(layer.conv)
        else:
            qmax = W_QMAX_REDUCED if reduce_range(supernet.space) else W_QMAX
            layers = [layer for layer, _ in bits]
            for _name, module, is_input in _points(layers):
                if is_input:
                    handles.append(module.register_forward_pre_hook(
                        lambda _m, args: (ste_act(args[0]), *args[1:])))
                else:
                    handles.append(module.register_forward_hook(
                        lambda _m, _a, out: ste_act(out)))
            for layer in layers:
                original = layer.conv.active_weight
                layer.conv.active_weight = (
                    lambda *a, _f=original, **k: ste_weight(_f(*a, **k), qmax))
                overridden.append(layer.conv)
        yield
    finally:
        for h in handles:
            h.remove()
        for conv in overridden:
            if "active_weight" in vars(conv):
                del conv.active_weight


def qat_step(supernet: Any, arch: ArchConfig, enabled: bool) -> AbstractContextManager[None]:
    """:func:`quantization_aware` of ``arch`` if ``enabled`` (a training step's subnet), else
    nothing (float)."""
    return quantization_aware(supernet, arch) if enabled else contextlib.nullcontext()
