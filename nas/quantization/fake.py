"""Fake quantization of a supernet's active subnet, exactly where a QDQ ONNX graph quantizes.

For each convolution the policy quantizes (:class:`~nas.quantization.support.QuantLayer`):
its active weight per output channel, symmetric int8 (``[-127, 127]``, scale ``absmax/127``);
its input and its (BN-folded) output per tensor, asymmetric int8 with MinMax ranges that
:func:`calibrate` measures on a few batches of the user's data with the float network, the
formulas of ONNX Runtime's ``quantize_static``. The ranges live in a :class:`Ranges` object,
the hooks only inside :func:`fake_quantized`; nothing stays behind.

Weight-only spaces (transformers, ``MatMulNBits``) need no calibration: :func:`calibrate`
returns empty ranges and :func:`fake_quantized` / :func:`policy_applied` fake-quantize the
policy's linear weights block-wise (:mod:`nas.quantization.weight_only`).

Example:
    >>> inputs = calibration_inputs(train, resolution=arch["resolution"])
    >>> ranges = calibrate(supernet, arch, inputs)
    >>> with fake_quantized(supernet, arch, ranges):
    ...     logits = supernet(x)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.data import ImageData, batches
from nas.errors import ConfigError
from nas.quantization import weight_only as wo
from nas.quantization.space import is_quantized, policy_of, reduce_range, weight_only
from nas.quantization.support import FLOAT_BITS, QuantLayer, quant_layers
from nas.space import ArchConfig

ACT_QMIN, ACT_QMAX = -128, 127
W_QMAX, W_QMAX_REDUCED = 127, 64
MIN_CALIBRATION_IMAGES = 16


@dataclass
class Ranges:
    """Calibrated ``(min, max)`` per quantization point (``"<layer>:in"``/``":out"``)."""

    arch_key: str
    values: dict[str, tuple[float, float]] = field(default_factory=dict)


def layer_bits(supernet: Any, arch: ArchConfig) -> list[tuple[QuantLayer, int]]:
    """``(layer, bits)`` of the layers of ``arch`` its policy quantizes (bits below 32)."""
    policy = policy_of(supernet.space, arch)
    out = []
    for group, layers in quant_layers(supernet, arch).items():
        for layer in layers:  # a per-layer policy names the layer, the others its group
            bits = policy.get(layer.name, policy.get(group, FLOAT_BITS))
            if bits < FLOAT_BITS:
                out.append((layer, bits))
    return out


def quantized_layers(supernet: Any, arch: ArchConfig) -> list[QuantLayer]:
    """The layers of ``arch`` its policy quantizes (bits below 32)."""
    return [layer for layer, _ in layer_bits(supernet, arch)]


def calibration_inputs(
    data: ImageData, *, n_batches: int = 4, batch_size: int = 64,
    resolution: int | None = None, task: Any = None, min_images: int = MIN_CALIBRATION_IMAGES,
) -> list[torch.Tensor]:
    """The first ``n_batches`` batches of ``data`` (seed 0), prepared as the network's input.

    Raises:
        ConfigError: ``data`` has fewer than ``min_images`` images.
    """
    if len(data) < min_images:
        raise ConfigError(f"calibration set too small: {len(data)} images; quantization "
                          f"calibrates on at least {min_images}")
    if task is None:
        from nas.tasks import create_task

        task = create_task("classification")
    out = []
    for i, (x, _) in enumerate(batches(data, min(batch_size, len(data)), seed=0, epoch=0)):
        if i >= n_batches:
            break
        out.append(task.prepare(x, resolution))
    return out


def _points(layers: Sequence[QuantLayer]) -> list[tuple[str, nn.Module, bool]]:
    """``(point name, module, is_input)``, one per distinct (module, side)."""
    seen: set[tuple[int, bool]] = set()
    out = []
    for layer in layers:
        for module, is_input in ((layer.input_at, True), (layer.output_at, False)):
            if (id(module), is_input) not in seen:
                seen.add((id(module), is_input))
                out.append((f"{layer.name}:{'in' if is_input else 'out'}", module, is_input))
    return out


@torch.no_grad()
def calibrate(supernet: Any, arch: ArchConfig, inputs: Sequence[torch.Tensor]) -> Ranges:
    """MinMax ranges of every quantization point of ``arch``, from the float network."""
    if weight_only(supernet.space):
        return Ranges(arch.key)  # weights only: nothing to calibrate
    if not inputs:
        raise ConfigError("calibration needs at least one batch")
    supernet.set_active(arch)
    was_training = supernet.training
    supernet.eval()
    ranges = Ranges(arch.key)
    handles = [_observer(module, name, is_input, ranges)
               for name, module, is_input in _points(quantized_layers(supernet, arch))]
    device = next(supernet.parameters()).device
    try:
        for x in inputs:
            supernet(x.to(device))
    finally:
        for h in handles:
            h.remove()
        supernet.train(was_training)
    return ranges


def _observer(module: nn.Module, name: str, is_input: bool, ranges: Ranges) -> Any:
    def observe(t: torch.Tensor) -> None:
        lo, hi = float(t.min()), float(t.max())
        old = ranges.values.get(name)
        ranges.values[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

    if is_input:
        return module.register_forward_pre_hook(lambda _m, args: observe(args[0]))
    return module.register_forward_hook(lambda _m, _a, out: observe(out))


def act_qparams(lo: float, hi: float) -> tuple[float, int]:
    """``(scale, zero_point)`` of asymmetric int8 over ``[lo, hi]`` (as ONNX Runtime)."""
    rmin, rmax = np.float32(min(lo, 0.0)), np.float32(max(hi, 0.0))
    scale = (np.float64(rmax) - np.float64(rmin)) / (ACT_QMAX - ACT_QMIN)
    if scale < np.finfo(np.float32).tiny:
        return 1.0, 0
    zero = int(np.round(ACT_QMIN - rmin / scale))
    return float(np.float32(scale)), zero


def fake_quant_act(x: torch.Tensor, scale: float, zero: int) -> torch.Tensor:
    """QuantizeLinear then DequantizeLinear of ``x`` (round half to even, saturating)."""
    q = torch.clamp(torch.round(x / scale) + zero, ACT_QMIN, ACT_QMAX)
    return (q - zero) * scale


def fake_quant_weight(w: torch.Tensor, qmax: int = W_QMAX) -> torch.Tensor:
    """Per-output-channel symmetric int8 of ``w`` in ``[-qmax, qmax]`` (scale
    ``2 absmax / (2 qmax)``, as ONNX Runtime; ``qmax=64`` is its ``reduce_range``)."""
    absmax = w.detach().abs().flatten(1).amax(1).to(torch.float64)
    scale = (2 * absmax / (2 * qmax)).to(torch.float32)
    scale = torch.where(scale < torch.finfo(torch.float32).tiny, torch.ones_like(scale), scale)
    shape = (-1,) + (1,) * (w.dim() - 1)
    q = torch.clamp(torch.round(w / scale.view(shape)), -qmax, qmax)
    return q * scale.view(shape)


@contextlib.contextmanager
def fake_quantized(supernet: Any, arch: ArchConfig, ranges: Ranges) -> Iterator[None]:
    """Within the block, ``supernet`` computes ``arch`` fake-quantized by its policy."""
    if ranges.arch_key != arch.key:
        raise ConfigError(f"ranges were calibrated for arch {ranges.arch_key}, not {arch.key}")
    if weight_only(supernet.space):
        supernet.set_active(arch)
        with wo.fake_quantized(layer_bits(supernet, arch)):
            yield
        return
    supernet.set_active(arch)
    layers = quantized_layers(supernet, arch)
    qmax = W_QMAX_REDUCED if reduce_range(supernet.space) else W_QMAX
    handles = []
    for name, module, is_input in _points(layers):
        if name not in ranges.values:
            raise ConfigError(f"no calibrated range for {name}; calibrate this arch first")
        scale, zero = act_qparams(*ranges.values[name])
        if is_input:
            handles.append(module.register_forward_pre_hook(
                lambda _m, args, s=scale, z=zero: (fake_quant_act(args[0], s, z), *args[1:])))
        else:
            handles.append(module.register_forward_hook(
                lambda _m, _a, out, s=scale, z=zero: fake_quant_act(out, s, z)))
    for layer in layers:
        original = layer.conv.active_weight
        layer.conv.active_weight = (  # an instance attribute, removed on exit
            lambda *a, _f=original, **k: fake_quant_weight(_f(*a, **k), qmax))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for layer in layers:
            if "active_weight" in vars(layer.conv):
                del layer.conv.active_weight


@contextlib.contextmanager
def policy_applied(
    supernet: Any, arch: ArchConfig, data: ImageData, *, task: Any = None,
    resolution: int | None = None, device: Any = "cpu", n_batches: int = 4,
) -> Iterator[None]:
    """Fake-quantize ``arch`` by its policy (calibrated on ``data``; weight-only policies
    need no data) within the block; does nothing for a space without a policy or an all-float
    policy."""
    if not is_quantized(supernet.space) or not quantized_layers(supernet, arch):
        yield
        return
    if weight_only(supernet.space):
        supernet.set_active(arch)
        with wo.fake_quantized(layer_bits(supernet, arch)):
            yield
        return
    inputs = calibration_inputs(data, n_batches=n_batches, resolution=resolution, task=task)
    ranges = calibrate(supernet, arch, [x.to(device) for x in inputs])
    with fake_quantized(supernet, arch, ranges):
        yield
