"""Supernet training: sandwich rule or SortedNet nested sub-models with in-place distillation,
or progressive shrinking.

:func:`train_supernet` runs the schedule of a :class:`~nas.train_config.TrainConfig` and keeps
a run directory: ``supernet/config.json``, ``supernet/checkpoint.pt`` (written atomically
every ``checkpoint_every`` steps, at each epoch end and on Ctrl-C) and
``supernet/history.jsonl`` (per epoch: loss and the validation top-1 of the smallest, a middle
and the largest subnet, BN-recalibrated). ``resume=True`` continues a run exactly: same
weights, optimizer, scheduler, RNG streams, data order and step.

Example:
    >>> import nas
    >>> from nas.data import load_data, split
    >>> train, val = split(load_data("digits"), val_fraction=0.2, seed=0)
    >>> supernet = nas.create_supernet("tiny", num_classes=10)
    >>> result = nas.train_supernet(supernet, train, val, nas.TrainConfig(epochs=2), "runs/demo")
    >>> result.final["largest"]["top1"]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nas.data import ImageData
from nas.errors import ConfigError, RunDirError
from nas.rundir import RunDir, atomic_write_json, read_json
from nas.stop_flag import StopFlag
from nas.tasks import Task, task_for_space
from nas.train_config import Phase, TrainConfig
from nas.train_loop import GradReducer, Progress, TrainLoop

__all__ = ["Phase", "Progress", "TrainConfig", "TrainResult", "train_supernet"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """The outcome of :func:`train_supernet`.

    Attributes:
        run_dir: the run directory.
        steps: optimizer steps taken in total (including before a resume).
        epochs: epochs completed.
        history: one dict per epoch (as in ``history.jsonl``).
        final: ``{"smallest" | "middle" | "largest": {<task metric>: ..., "loss": ...}}`` on
            the validation data after the last epoch (BN recalibrated).
        seconds: wall time of this call.
    """

    run_dir: Path
    steps: int
    epochs: int
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0


def check_resume(run: RunDir, resume: bool) -> None:
    """Refuse to overwrite a trained run, or to resume one that has no checkpoint."""
    checkpoint = run.checkpoint
    if not resume and checkpoint.exists():
        raise RunDirError(
            f"{run.path} already holds a trained supernet ({checkpoint}); "
            "resume it (resume=True / --resume) or choose another run name"
        )
    if resume and not checkpoint.exists():
        raise RunDirError(f"{checkpoint}: no checkpoint to resume from")


def _open_run(
    run_dir: RunDir | str | Path,
    supernet: Any,
    config: TrainConfig,
    task: Task,
    resume: bool,
    world_size: int,
    rank: int,
) -> RunDir:
    if isinstance(run_dir, RunDir):
        run = run_dir
    elif rank == 0:
        run = RunDir.create(run_dir, supernet.space, task=task.name)
    else:
        run = RunDir.open(run_dir, supernet.space)
    if rank != 0:
        return run  # rank 0 checks and writes the run directory
    check_resume(run, resume)
    if not resume:
        info = {
            "space": supernet.space.name,
            "fingerprint": supernet.space.fingerprint(),
            "task": task.name,
            "num_classes": supernet.num_classes,
            "build": supernet.build_kwargs(),
            "world_size": world_size,
            "config": config.to_dict(),
        }
        atomic_write_json(run.supernet_config, info)
    else:
        read_json(run.supernet_config)
    return run


def train_supernet(
    supernet: Any,
    train_data: ImageData,
    val_data: ImageData,
    config: TrainConfig,
    run_dir: RunDir | str | Path,
    *,
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
    task: Task | None = None,
    _rank: int = 0,
    _world_size: int = 1,
    _reduce_grads: GradReducer | None = None,
) -> TrainResult:
    """Train ``supernet`` with ``config``'s schedule, keeping ``run_dir`` up to date.

    ``train_data``/``val_data``: see :mod:`nas.data` (validation: end-of-epoch evaluation of
    the reference subnets). ``resume`` continues from ``supernet/checkpoint.pt`` exactly;
    without it an existing checkpoint is an error. ``progress`` is called after every step;
    ``task`` gives the loss, distillation and metric (default: the space's).

    Returns:
        A :class:`TrainResult`; the trained weights are in ``supernet`` and the checkpoint.

    Raises:
        KeyboardInterrupt: after Ctrl-C, once the checkpoint of the last full step is saved.

    Example:
        >>> result = train_supernet(supernet, train, val, TrainConfig(epochs=3), "runs/tiny")
    """
    task = task or task_for_space(supernet.space)
    config = config.resolved(task)  # the task's optimizer, lr, weight decay where left None
    _check_inputs(supernet, train_data, config, task)
    started = time.perf_counter()
    run = _open_run(run_dir, supernet, config, task, resume, _world_size, _rank)
    trainer = TrainLoop(supernet, train_data, val_data, config, run, rank=_rank,
                        world_size=_world_size, reduce_grads=_reduce_grads, progress=progress,
                        task=task)
    if resume:
        trainer.resume()
    with StopFlag().installed() as stop:
        trainer.fit(stop)
    final = _final_metrics(trainer, task) if _rank == 0 else {}
    supernet.set_active(supernet.space.largest())
    return TrainResult(
        run_dir=run.path,
        steps=trainer.step,
        epochs=trainer.epoch,
        history=list(trainer.history),
        final=final,
        seconds=time.perf_counter() - started,
    )


def _check_inputs(supernet: Any, train_data: Any, config: TrainConfig, task: Task) -> None:
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={config.device!r} but CUDA is not available; use device='cpu'")
    if task.num_outputs(train_data) > supernet.num_classes:
        raise ConfigError(
            f"the data needs {task.num_outputs(train_data)} outputs but the supernet has only "
            f"{supernet.num_classes} (num_classes)"
        )
    if config.quantization_aware:  # before the run directory is written
        from nas.quantization.qat import check_space

        check_space(supernet.space)


def _final_metrics(trainer: TrainLoop, task: Task) -> dict[str, dict[str, float]]:
    """The reference subnets' validation metrics: from the last epoch's history, else now."""
    if not trainer.history:
        return trainer.evaluate_epoch()
    last = trainer.history[-1]
    return {
        name: {task.metric: float(last[f"val_{task.metric}_{name}"]),
               "loss": float(last[f"val_loss_{name}"])}
        for name in ("smallest", "middle", "largest")
    }
