"""Supernet training: sandwich rule with in-place distillation, or progressive shrinking.

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
from nas.rundir import RunDir, atomic_write_json, read_json
from nas.train_config import Phase, TrainConfig
from nas.train_loop import GradReducer, Progress, StopFlag, TrainLoop

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
        final: ``{"smallest" | "middle" | "largest": {"top1": %, "loss": ...}}`` on the
            validation data after the last epoch (BN recalibrated).
        seconds: wall time of this call.
    """

    run_dir: Path
    steps: int
    epochs: int
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0


def check_resume(path: Path, resume: bool) -> None:
    """Refuse to overwrite a trained run, or to resume one that has no checkpoint."""
    checkpoint = path / "supernet" / "checkpoint.pt"
    if not resume and checkpoint.exists():
        raise ValueError(
            f"{path} already holds a trained supernet ({checkpoint}); "
            "resume it (resume=True / --resume) or choose another run name"
        )
    if resume and not checkpoint.exists():
        raise FileNotFoundError(f"{checkpoint}: no checkpoint to resume from")


def _open_run(
    run_dir: RunDir | str | Path,
    supernet: Any,
    config: TrainConfig,
    resume: bool,
    world_size: int,
    rank: int,
) -> RunDir:
    if isinstance(run_dir, RunDir):
        run = run_dir
    elif rank == 0:
        run = RunDir.create(run_dir, supernet.space, kind="supernet-training")
    else:
        run = RunDir.open(run_dir, supernet.space)
    if rank != 0:
        return run  # rank 0 checks and writes the run directory
    check_resume(run.path, resume)
    config_path = run.path / "supernet" / "config.json"
    if not resume:
        info = {
            "space": supernet.space.name,
            "fingerprint": supernet.space.fingerprint(),
            "num_classes": supernet.num_classes,
            "world_size": world_size,
            "config": config.to_dict(),
        }
        atomic_write_json(config_path, info)
    else:
        read_json(config_path)
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
    _rank: int = 0,
    _world_size: int = 1,
    _reduce_grads: GradReducer | None = None,
) -> TrainResult:
    """Train ``supernet`` with ``config``'s schedule, keeping ``run_dir`` up to date.

    Args:
        supernet: a :class:`nas.supernet.Supernet` (moved to ``config.device``).
        train_data: training images (see :mod:`nas.data`).
        val_data: validation images (end-of-epoch evaluation of reference subnets).
        config: the schedule and its hyper-parameters.
        run_dir: the run directory (created if missing).
        resume: continue from ``supernet/checkpoint.pt`` exactly; without it an existing
            checkpoint is an error (no silent overwrite).
        progress: called after every step with a :class:`Progress`.

    Returns:
        A :class:`TrainResult`; the trained weights are in ``supernet`` and the checkpoint.

    Raises:
        KeyboardInterrupt: after Ctrl-C, once the checkpoint of the last full step is saved.

    Example:
        >>> result = train_supernet(supernet, train, val, TrainConfig(epochs=3), "runs/tiny")
    """
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={config.device!r} but CUDA is not available; use device='cpu'")
    if train_data.num_classes > supernet.num_classes:
        raise ValueError(
            f"the data has {train_data.num_classes} classes but the supernet only "
            f"{supernet.num_classes} outputs (num_classes)"
        )
    started = time.perf_counter()
    run = _open_run(run_dir, supernet, config, resume, _world_size, _rank)
    trainer = TrainLoop(
        supernet,
        train_data,
        val_data,
        config,
        run,
        rank=_rank,
        world_size=_world_size,
        reduce_grads=_reduce_grads,
        progress=progress,
    )
    if resume:
        trainer.resume()
    with StopFlag().installed() as stop:
        trainer.fit(stop)
    last = trainer.history[-1] if trainer.history else {}
    final = {}
    if _rank == 0:
        final = (
            trainer.evaluate_epoch()
            if not last
            else {
                name: {
                    "top1": float(last[f"val_top1_{name}"]),
                    "loss": float(last[f"val_loss_{name}"]),
                }
                for name in ("smallest", "middle", "largest")
            }
        )
    supernet.set_active(supernet.space.largest())
    return TrainResult(
        run_dir=run.path,
        steps=trainer.step,
        epochs=trainer.epoch,
        history=list(trainer.history),
        final=final,
        seconds=time.perf_counter() - started,
    )
