"""Evaluating subnets of a supernet: BN recalibration, then the task's metrics per architecture.

A subnet's batch-norm running statistics are not those of the supernet (they were averaged
over whichever subnets were trained); :func:`recalibrate_bn` recomputes them exactly as the
cumulative average over ``n_batches`` batches (BN ``momentum=None``), and :func:`evaluate` does
so for each architecture before measuring it, then restores the supernet's own statistics so
that evaluating mid-training leaves training untouched.

Example:
    >>> supernet = nas.create_supernet("tiny", num_classes=10)
    >>> archs = list(reference_archs(supernet.space).values())
    >>> rows = nas.evaluate(supernet, archs, val, bn_data=train, n_bn_batches=20, device="cpu")
    >>> rows[0]["accuracy"], rows[0]["loss"]       # the task's metrics (classification here)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nas.data import ImageData, batches
from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace
from nas.tasks import Task, task_for_space

log = logging.getLogger(__name__)


def arch_resolution(
    space: SearchSpace, arch: ArchConfig | None, supernet: Any = None
) -> int | None:
    """The input resolution of ``arch``: its ``resolution`` dimension, else the supernet's
    (:meth:`nas.supernet.Supernet.input_resolution`), else the space's meta."""
    if supernet is not None and arch is not None and hasattr(supernet, "input_resolution"):
        return supernet.input_resolution(arch)  # type: ignore[no-any-return]
    if arch is not None and "resolution" in space.names:
        return int(arch["resolution"])
    value = space.meta.get("resolution")
    return None if value is None else int(value)


def reference_archs(space: SearchSpace) -> dict[str, ArchConfig]:
    """The smallest, a middle and the largest architecture of ``space``.

    The middle one takes each dimension's central value; where a dimension has an even number
    of values, the lower and upper centre alternate from one dimension to the next.
    """
    row = []
    for i, c in enumerate(space.choices):
        half = (len(c.values) - 1) / 2
        row.append(int(half) if half.is_integer() or i % 2 == 0 else int(half) + 1)
    return {
        "smallest": space.smallest(),
        "middle": space.from_indices(row),
        "largest": space.largest(),
    }


def _bn_layers(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    data: ImageData,
    n_batches: int,
    *,
    batch_size: int = 64,
    resolution: int | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    task: Task | None = None,
) -> None:
    """Recompute every BN layer's running statistics from ``n_batches`` batches of ``data``.

    Statistics are reset and averaged cumulatively (``momentum=None``): the exact mean of the
    per-batch statistics. Momenta and train/eval modes are restored afterwards. On a supernet
    this resets the channels the active subnet does not use; :func:`evaluate` saves and
    restores them, so prefer it during training.

    Args:
        model: a supernet (with its active subnet set) or any module with BN layers.
        data: images to compute statistics on (usually training images).
        n_batches: number of batches (at most one epoch's worth are used).
        batch_size: images per batch.
        resolution: resize the images to this size (``None``: as they are).
        device: where ``model`` lives.
        seed: picks which images (the same for every call with the same seed).
        task: feeds the batches (default: classification; a model without BN needs none).

    Example:
        >>> supernet.set_active(arch)
        >>> recalibrate_bn(supernet, train, n_batches=20, resolution=arch["resolution"])
    """
    if not isinstance(n_batches, int) or n_batches < 1:
        raise ConfigError(f"n_batches must be a positive int, got {n_batches!r}")
    layers = _bn_layers(model)
    if not layers:
        return
    if task is None:
        from nas.tasks import create_task

        task = create_task("classification")
    modes = {m: m.training for m in model.modules()}
    momenta = [m.momentum for m in layers]
    batch_size = min(batch_size, len(data))
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
        model.eval()
        for m in layers:
            m.train()
        for i, (x, _) in enumerate(batches(data, batch_size, seed=seed, epoch=0)):
            if i >= n_batches:
                break
            model(task.prepare(x.to(device), resolution))
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        for module, mode in modes.items():
            module.training = mode


def _bn_state(model: nn.Module) -> list[dict[str, torch.Tensor]]:
    return [
        {
            name: buf.detach().clone()
            for name, buf in m.named_buffers(recurse=False)
            if buf is not None
        }
        for m in _bn_layers(model)
    ]


def _restore_bn_state(model: nn.Module, state: list[dict[str, torch.Tensor]]) -> None:
    with torch.no_grad():
        for m, saved in zip(_bn_layers(model), state):
            for name, buf in m.named_buffers(recurse=False):
                if buf is not None and name in saved:
                    buf.copy_(saved[name])


def measure(
    model: nn.Module,
    data: ImageData,
    *,
    batch_size: int = 256,
    resolution: int | None = None,
    device: str | torch.device = "cpu",
    max_batches: int | None = None,
    task: Task | None = None,
) -> dict[str, float]:
    """The task's metrics of ``model`` (in eval mode) on ``data`` (default task:
    classification, ``accuracy`` top-1 percent and ``loss``)."""
    if task is None:
        from nas.tasks import create_task

        task = create_task("classification")
    return task.measure(model, data, batch_size=batch_size, resolution=resolution,
                        device=device, max_batches=max_batches)


def evaluate(
    supernet: Any,
    archs: Sequence[ArchConfig],
    data: ImageData,
    *,
    bn_data: ImageData | None = None,
    n_bn_batches: int = 20,
    batch_size: int = 256,
    bn_batch_size: int = 64,
    device: str | torch.device = "cpu",
    max_batches: int | None = None,
    task: Task | None = None,
) -> list[dict[str, float]]:
    """BN-recalibrate and measure each architecture of ``supernet``.

    The supernet's BN statistics, active architecture and train/eval mode are restored
    afterwards, so this is safe to call during training.

    Args:
        supernet: a :class:`nas.supernet.Supernet`.
        archs: architectures to evaluate (of the supernet's space).
        data: images to measure on (validation or test).
        bn_data: images for BN recalibration (default: ``data``; training images are better).
        n_bn_batches: recalibration batches per architecture (0: keep the running statistics).
        batch_size: measuring batch size.
        bn_batch_size: recalibration batch size.
        device: where the supernet lives.
        max_batches: measure on at most this many batches.
        task: what is measured (default: the space's task, see :func:`nas.tasks.task_for_space`).

    Returns:
        One dict per architecture, in order: the task's metrics (classification:
        ``accuracy`` in percent, ``loss``) and ``n``.

    Example:
        >>> rows = nas.evaluate(supernet, [space.smallest(), space.largest()], val, device="cpu")
    """
    space = supernet.space
    task = task or task_for_space(space)
    for arch in archs:
        space.validate(arch)
    if not isinstance(n_bn_batches, int) or n_bn_batches < 0:
        raise ConfigError(f"n_bn_batches must be an int >= 0, got {n_bn_batches!r}")
    saved = _bn_state(supernet)
    previous = supernet.active
    was_training = supernet.training
    try:
        return [
            _evaluate_one(supernet, arch, data, bn_data if bn_data is not None else data,
                          task, n_bn_batches=n_bn_batches, batch_size=batch_size,
                          bn_batch_size=bn_batch_size, device=device, max_batches=max_batches)
            for arch in archs
        ]
    finally:
        _restore_bn_state(supernet, saved)
        supernet.set_active(previous)
        supernet.train(was_training)


def _evaluate_one(
    supernet: Any, arch: ArchConfig, data: ImageData, bn_data: ImageData, task: Task, *,
    n_bn_batches: int, batch_size: int, bn_batch_size: int, device: str | torch.device,
    max_batches: int | None,
) -> dict[str, float]:
    """Activate ``arch``, recalibrate BN on ``bn_data`` and measure it on ``data``."""
    supernet.set_active(arch)
    res = arch_resolution(supernet.space, arch, supernet)
    if n_bn_batches:
        recalibrate_bn(supernet, bn_data, n_bn_batches, batch_size=bn_batch_size,
                       resolution=res, device=device, task=task)
    from nas.quantization.fake import policy_applied  # fake-quantized under a bits policy

    with policy_applied(supernet, arch, bn_data, task=task, resolution=res, device=device):
        row = task.measure(supernet, data, batch_size=batch_size, resolution=res,
                           device=device, max_batches=max_batches)
    log.debug("evaluated %s: %s", arch.key, row)
    return row
