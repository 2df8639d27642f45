"""Shared parts of the training-quality benches: data, standalone training, measuring subnets.

A *workload* is a task with its data: image classification on an image folder or zip (MNIST:
a seeded subset of the training split to train on, 5% of it held out for the supernet's
end-of-epoch checks, the test split to measure), or language modelling on a text corpus (the
embedded ``pydoc`` by default; the last windows held out to measure, by perplexity).
:func:`train_alone` applies a :class:`~nas.train.TrainConfig`'s recipe to one static network
(same optimizer, weight decay, warm-up + cosine, label smoothing, batch order; no
distillation); :func:`measure_subnet` extracts one subnet of a supernet and measures it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from nas.data import batches, load_image_folder, split, steps_per_epoch
from nas.evaluation import arch_resolution, measure, recalibrate_bn
from nas.space import ArchConfig
from nas.tasks import DataSpec, Task, create_task
from nas.train import TrainConfig
from nas.train_loop import lr_factor, param_groups


@dataclass(frozen=True)
class Workload:
    """A task and its data: ``train`` (trained on), ``val`` (end-of-epoch checks), ``test``."""

    task: Task
    train: Any
    val: Any
    test: Any
    description: str


def load_workload(
    task_name: str, data: str, *, limit: int | None, test_limit: int | None, seq_len: int,
    seed: int,
) -> Workload:
    """The workload of ``task_name`` on ``data`` (see the module docstring)."""
    task = create_task(task_name)
    if task_name == "language_modelling":
        train, test = task.load(DataSpec(data=data, limit=limit, seq_len=seq_len,
                                         val_fraction=0.1, seed=seed))
        text = f"{data}: {len(train)} train / {len(test)} held-out windows of {seq_len} tokens"
        return Workload(task, train, test, test, text)
    full = load_image_folder(data, "train", limit=limit, seed=seed)
    test = load_image_folder(data, "test", limit=test_limit, seed=seed)
    train, val = split(full, 0.05, seed=seed)
    text = f"{data}: {len(train)} train / {len(val)} val images (of {limit}), test {len(test)}"
    return Workload(task, train, val, test, text)


def make_optimizer(model: torch.nn.Module, config: TrainConfig, lr: float) -> Any:
    """The optimizer of the supernet loop (:class:`nas.train_loop.TrainLoop`) for ``model``."""
    assert config.weight_decay is not None, "resolve the config first"
    groups = param_groups(model, config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum,
                               nesterov=config.momentum > 0)
    return torch.optim.AdamW(groups, lr=lr)


def train_alone(
    model: torch.nn.Module, workload: Workload, config: TrainConfig, resolution: int | None
) -> int:
    """Train one static network with ``config``'s recipe; returns the steps taken."""
    config = config.resolved(workload.task)  # the task's optimizer, lr, weight decay if None
    assert config.lr is not None
    model.train()
    opt = make_optimizer(model, config, config.lr)
    n_steps = steps_per_epoch(workload.train, config.batch_size)
    total = config.epochs * n_steps
    warmup = min(round(config.warmup_epochs * n_steps), total - 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup))
    task, steps = workload.task, 0
    for epoch in range(config.epochs):
        for x, y in batches(workload.train, config.batch_size, seed=config.seed, epoch=epoch):
            opt.zero_grad(set_to_none=True)
            outputs = model(task.prepare(x, resolution))
            loss = task.loss(outputs, y, label_smoothing=config.label_smoothing or 0.0)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            steps += 1
    return steps


def measure_subnet(
    supernet: Any, arch: ArchConfig, workload: Workload, *, bn_batches: int, batch_size: int
) -> tuple[float, int]:
    """The task metric of ``arch`` extracted from ``supernet`` (BN recalibrated), and params."""
    res = arch_resolution(supernet.space, arch, supernet)
    sub = supernet.extract(arch)
    if bn_batches > 0:
        recalibrate_bn(sub, workload.train, bn_batches, batch_size=batch_size, resolution=res,
                       task=workload.task)
    metric = workload.task.metric
    value = measure(sub, workload.test, resolution=res, task=workload.task)[metric]
    return float(value), sum(p.numel() for p in sub.parameters())


def gap(task: Task, shared: float, alone: float) -> float:
    """Supernet minus standalone: points of accuracy (``max`` metrics), or percent more
    perplexity (``min`` metrics; positive is worse)."""
    if task.direction == "max":
        return shared - alone
    return 100.0 * (shared / alone - 1.0) if alone > 0 and math.isfinite(alone) else math.inf


def meets_goal(task: Task, value: float, *, max_points: float, max_percent: float) -> bool:
    """Whether a :func:`gap` meets the goal (``>= -max_points``, or ``<= max_percent``)."""
    return value >= -max_points if task.direction == "max" else value <= max_percent


def better(task: Task, a: float, b: float) -> bool:
    """Whether metric value ``a`` beats ``b``."""
    return a > b if task.direction == "max" else a < b
