"""The training loop behind :func:`nas.train.train_supernet` (one rank of a run).

:class:`TrainLoop` owns the optimizer, schedule, teacher and position of one run; one step
trains this step's subnets (sandwich: largest, random, smallest; sorted: nested sub-models,
largest first; progressive: the phase's samples), accumulating their gradients into one
optimizer step. Subnets are drawn from a generator seeded by ``(seed, step)``, so
data-parallel ranks and resumed runs draw the same.
Checkpoints hold everything the loop needs to continue bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from nas.data import ImageData, batches, steps_per_epoch
from nas.errors import ConfigError
from nas.evaluation import arch_resolution, evaluate, reference_archs
from nas.nested import balanced_probabilities, nested_archs
from nas.quantization.qat import check_space, qat_step
from nas.rundir import RunDir, atomic_write_text
from nas.space import ArchConfig
from nas.stop_flag import StopFlag
from nas.tasks import Task
from nas.train_config import Phase, TrainConfig

log = logging.getLogger(__name__)
GradReducer = Callable[[list[torch.Tensor]], None]


@dataclass(frozen=True, kw_only=True)
class Progress:
    """What the progress callback receives after every step."""

    step: int
    total_steps: int
    epoch: int
    phase: str
    loss: float
    lr: float
    images_per_second: float


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weights only: parameters of one dimension are norms' and biases'."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier at ``step`` of ``total``: linear warm-up, then cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + float(np.cos(np.pi * min(1.0, progress))))


class TrainLoop:
    """One training run (one rank of it when data-parallel)."""

    def __init__(
        self,
        supernet: Any,
        train_data: ImageData,
        val_data: ImageData,
        config: TrainConfig,
        run: RunDir,
        *,
        rank: int,
        world_size: int,
        reduce_grads: GradReducer | None,
        progress: Callable[[Progress], None] | None,
        task: Task,
    ) -> None:
        self.net = supernet
        self.task = task
        self.space = supernet.space
        self.train_data, self.val_data = train_data, val_data
        self.config = config = config.resolved(task)
        self.run = run
        self.rank, self.world_size = rank, world_size
        self.reduce_grads = reduce_grads
        self.progress = progress
        self.device = torch.device(config.device)
        self.phases = config.resolved_phases()
        if config.quantization_aware:
            check_space(self.space)
        self.steps_per_epoch = steps_per_epoch(train_data, config.batch_size, world_size)
        self.total_steps = config.total_epochs() * self.steps_per_epoch
        self.teacher: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        amp_cuda = config.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp_cuda)
        self.step = 0
        self.epoch = 0
        self.batch = 0
        self.phase_index = -1  # the phase whose optimizer exists
        self.loss_sum, self.loss_n = 0.0, 0
        self.history: list[dict[str, Any]] = []
        self.images_seen, self.started = 0, time.perf_counter()

    # ------------------------------------------------------------------ files
    @property
    def checkpoint_path(self) -> Path:
        return self.run.checkpoint

    @property
    def history_path(self) -> Path:
        return self.run.history

    def _state(self) -> dict[str, Any]:
        assert self.optimizer is not None and self.scheduler is not None
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch": self.batch,
            "phase": self.phase_index,
            "world_size": self.world_size,
            "loss_sum": self.loss_sum,
            "loss_n": self.loss_n,
            "model": self.net.state_dict(),
            "teacher": None if self.teacher is None else self.teacher.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(self.device),
            "config": json.dumps(self.config.to_dict()),
        }

    def save(self) -> None:
        if self.rank == 0:
            save_checkpoint(self.checkpoint_path, self._state(), space=self.space)

    def _write_history(self) -> None:
        if self.rank == 0:
            text = "".join(json.dumps(row) + "\n" for row in self.history)
            atomic_write_text(self.history_path, text)

    # ------------------------------------------------------------------ phases
    def _phase_at(self, epoch: int) -> int:
        bound = 0
        for i, phase in enumerate(self.phases):
            bound += phase.epochs
            if epoch < bound:
                return i
        return len(self.phases)

    def _start_phase(self, index: int) -> None:
        """Teacher snapshot and channel reorganisation if due, then a fresh optimizer."""
        phase = self.phases[index]
        progressive = self.config.schedule == "progressive"
        initial = self.config.teacher == "initial"  # the starting network teaches throughout
        if ((progressive and phase.distill) or initial) and self.teacher is None:
            self.teacher = self._make_teacher()
        expands = "expand" in phase.elastic
        expanded_before = index > 0 and "expand" in self.phases[index - 1].elastic
        if progressive and expands and not expanded_before:
            reorganize = getattr(self.net, "reorganize_channels", None)
            if callable(reorganize):
                log.info("phase %s: reorganising channels by importance", phase.name)
                reorganize()
        self._make_optimizer(index)

    def _make_optimizer(self, index: int) -> None:
        """The phase's optimizer and warm-up + cosine schedule (momentum starts afresh)."""
        phase = self.phases[index]
        config = self.config
        assert config.weight_decay is not None  # resolved in __init__
        groups = param_groups(self.net, config.weight_decay)
        if config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(
                groups, lr=phase.lr, momentum=config.momentum, nesterov=config.momentum > 0
            )
        else:
            self.optimizer = torch.optim.AdamW(groups, lr=phase.lr)
        total = phase.epochs * self.steps_per_epoch
        warmup = round(config.warmup_epochs * self.steps_per_epoch) if index == 0 else 0
        warmup = min(warmup, total - 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, total, warmup)
        )
        self.phase_index = index

    def _make_teacher(self) -> nn.Module:
        teacher = copy.deepcopy(self.net)
        teacher.set_active(self.space.largest())
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    # ------------------------------------------------------------------ resume
    def resume(self) -> None:
        state = load_checkpoint(self.checkpoint_path, space=self.space, map_location=self.device)
        if state.get("world_size", 1) != self.world_size:
            raise ConfigError(
                f"{self.checkpoint_path}: written with {state['world_size']} worker(s); "
                f"resume with workers={state['world_size']}, not {self.world_size}"
            )
        saved = TrainConfig.from_dict(json.loads(state["config"]))
        changed = saved.differences(self.config)
        if changed:
            raise ConfigError(
                f"{self.checkpoint_path}: the run was trained with other settings for {changed}; "
                "resume with the same configuration or start a new run"
            )
        self.net.load_state_dict(state["model"])
        if state["teacher"] is not None:
            self.teacher = self._make_teacher()
            self.teacher.load_state_dict(state["teacher"])
        self.step, self.epoch, self.batch = (
            int(state["step"]),
            int(state["epoch"]),
            int(state["batch"]),
        )
        self.loss_sum, self.loss_n = float(state["loss_sum"]), int(state["loss_n"])
        if self._phase_at(self.epoch) == int(state["phase"]):
            self._make_optimizer(int(state["phase"]))
            assert self.optimizer is not None and self.scheduler is not None
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
        else:
            self.phase_index = int(state["phase"])  # the next phase starts afresh
        set_rng_state(state["rng"])
        if self.history_path.exists():
            rows = [json.loads(line) for line in self.history_path.read_text().splitlines() if line]
            self.history = [r for r in rows if r["epoch"] < self.epoch]
        log.info(
            "resumed %s at step %d (epoch %d, batch %d)",
            self.run.path,
            self.step,
            self.epoch,
            self.batch,
        )

    # ------------------------------------------------------------------ steps
    def _step_archs(self, phase: Phase, rng: np.random.Generator) -> list[ArchConfig]:
        if self.config.schedule == "sandwich":
            n = self.config.num_random
            balanced = self.config.sampling == "balanced"
            probs = balanced_probabilities(self.space, n) if balanced else None
            middle = [self.space.sample(rng) if probs is None else self.space.from_indices(
                [int(rng.choice(len(p), p=p)) for p in probs]) for _ in range(n)]
            return [self.space.largest(), *middle, self.space.smallest()]
        if self.config.schedule == "sorted":
            return nested_archs(self.space, self.config.num_nested, rng)
        return [phase.sample(self.space, rng) for _ in range(phase.subnets_per_step)]

    def _autocast(self) -> Any:
        if not self.config.amp:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, phase: Phase) -> float:
        """One optimizer step over this step's subnets; returns their mean loss."""
        assert self.optimizer is not None and self.scheduler is not None
        config = self.config
        rng = np.random.default_rng([config.seed, 7, self.step])  # same on every rank
        archs = self._step_archs(phase, rng)
        self.optimizer.zero_grad(set_to_none=True)
        soft_targets = None
        if self.teacher is not None and phase.distill:
            with torch.no_grad(), self._autocast():
                res = arch_resolution(self.space, self.space.largest(), self.net)
                soft_targets = self.teacher(self.task.prepare(x, res)).detach()
        losses = []
        for i, arch in enumerate(archs):
            self.net.set_active(arch)
            teaches = i == 0 and config.schedule != "progressive" and config.teacher != "initial"
            qat = config.quantization_aware and not teaches  # the in-place teacher stays float
            with self._autocast(), qat_step(self.net, arch, qat):
                res = arch_resolution(self.space, arch, self.net)
                logits = self.net(self.task.prepare(x, res))
                loss = self.task.loss(logits, y, label_smoothing=config.label_smoothing or 0.0)
                if soft_targets is not None and config.kd_ratio > 0:
                    loss = loss + config.kd_ratio * self.task.distillation_loss(
                        logits, soft_targets, temperature=config.kd_temperature
                    )
            weight = config.largest_weight if i == 0 and config.schedule != "progressive" else 1.0
            self.scaler.scale(loss * weight if weight != 1.0 else loss).backward()
            losses.append(loss.detach())
            if teaches:
                soft_targets = logits.detach()  # the largest teaches the rest in place
        params = [p for p in self.net.parameters() if p.grad is not None]
        if self.reduce_grads is not None:
            self.reduce_grads([p.grad for p in params])
        if config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(params, config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(torch.stack(losses).mean())  # one device sync per step

    # ------------------------------------------------------------------ loop
    def evaluate_epoch(self) -> dict[str, dict[str, float]]:
        refs = reference_archs(self.space)
        rows = evaluate(
            self.net,
            list(refs.values()),
            self.val_data,
            bn_data=self.train_data,
            n_bn_batches=self.config.eval_bn_batches,
            batch_size=max(self.config.batch_size, 128),
            bn_batch_size=self.config.batch_size,
            device=self.device,
            max_batches=self.config.eval_max_batches,
            task=self.task,
        )
        return dict(zip(refs, rows))

    def _end_epoch(self, phase: Phase) -> None:
        assert self.scheduler is not None
        row: dict[str, Any] = {
            "epoch": self.epoch,
            "phase": phase.name,
            "step": self.step,
            "loss": self.loss_sum / max(1, self.loss_n),
            "lr": self.scheduler.get_last_lr()[0],
        }
        if self.rank == 0:
            for name, metrics in self.evaluate_epoch().items():
                row[f"val_{self.task.metric}_{name}"] = metrics[self.task.metric]
                row[f"val_loss_{name}"] = metrics["loss"]
        self.history.append(row)
        self._write_history()
        self.epoch, self.batch, self.loss_sum, self.loss_n = self.epoch + 1, 0, 0.0, 0
        self.save()
        log.info("epoch %d (%s): %s", row["epoch"], phase.name, row)

    def fit(self, stop: StopFlag) -> None:
        self.net.to(self.device)
        self.net.train()
        total_epochs = self.config.total_epochs()
        while self.epoch < total_epochs:
            index = self._phase_at(self.epoch)
            if index != self.phase_index:
                self._start_phase(index)
            phase = self.phases[index]
            data = batches(
                self.train_data,
                self.config.batch_size,
                seed=self.config.seed,
                epoch=self.epoch,
                start=self.batch,
                rank=self.rank,
                world_size=self.world_size,
            )
            for x, y in data:
                loss = self.train_step(x.to(self.device), y.to(self.device), phase)
                self.step, self.batch = self.step + 1, self.batch + 1
                self.loss_sum, self.loss_n = self.loss_sum + loss, self.loss_n + 1
                self.images_seen += len(y) * self.world_size
                self._report(loss, phase)
                if stop.raised:
                    self.save()
                    raise KeyboardInterrupt(f"interrupted at step {self.step}; checkpoint saved")
                if (
                    self.step % self.config.checkpoint_every == 0
                    and self.batch < self.steps_per_epoch
                ):
                    self.save()
            self._end_epoch(phase)

    def _report(self, loss: float, phase: Phase) -> None:
        if self.progress is None:
            return
        assert self.scheduler is not None
        elapsed = max(1e-9, time.perf_counter() - self.started)
        self.progress(
            Progress(
                step=self.step,
                total_steps=self.total_steps,
                epoch=self.epoch,
                phase=phase.name,
                loss=loss,
                lr=float(self.scheduler.get_last_lr()[0]),
                images_per_second=self.images_seen / elapsed,
            )
        )
