"""Supernet training configuration: :class:`TrainConfig`, progressive-shrinking :class:`Phase`\\s.

Two schedules share one loop (``nas.train``):

* ``sandwich`` (BigNAS/AttentiveNAS): every step trains the largest subnet, ``num_random``
  random ones and the smallest, accumulating their gradients into one optimizer step; the
  largest's predictions are the soft targets of the others (in-place distillation).
* ``progressive`` (Once-for-All): phases that make more dimensions elastic, each with its own
  epochs and learning rate — the full network first, then elastic kernel, depth and expand —
  with distillation from a frozen copy of the full network after the first phase.
* ``sorted`` (SortedNet, Valipour et al. 2023): every step trains ``num_nested`` nested
  sub-models (each no larger than the next in every dimension, the largest always among them;
  see :mod:`nas.nested`), their gradients summed into one optimizer step, the largest
  teaching the others in place as in ``sandwich`` (``kd_ratio=0`` turns that off).

Example:
    >>> config = TrainConfig(schedule="progressive", epochs=8, lr=0.05)
    >>> [p.name for p in config.resolved_phases()]
    ['full', 'kernel', 'depth', 'expand']
    >>> TrainConfig().resolved("language_modelling").optimizer   # the task's default
    'adamw'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace

if TYPE_CHECKING:
    from nas.tasks.base import Task

SCHEDULES = ("sandwich", "progressive", "sorted")
OPTIMIZERS = ("sgd", "adamw")
TEACHERS = ("inplace", "initial")
SAMPLINGS = ("uniform", "balanced")
ELASTIC_KINDS = ("resolution", "kernel", "depth", "expand")
# fields that may change on --resume without changing what is computed
RESUMABLE_CHANGES = ("device", "checkpoint_every", "eval_bn_batches", "eval_max_batches")
# fields whose default (``None``) is the task's (``Task.train_defaults``), set by ``resolved``
TASK_DEFAULTED = ("optimizer", "lr", "weight_decay", "label_smoothing")


@dataclass(frozen=True, kw_only=True)
class Phase:
    """One phase of progressive shrinking.

    Args:
        name: shown in logs and history (``full``, ``kernel``...).
        elastic: kinds of dimensions sampled in this phase (the last component of a dimension's
            dotted name: ``kernel``, ``depth``, ``expand``, or ``resolution``); all others stay
            at their largest value.
        epochs: epochs of this phase.
        lr: peak learning rate of this phase (cosine decay within the phase).
        subnets_per_step: random subnets whose gradients each step accumulates.
        distill: distil from the frozen full network (taken when the first such phase starts).
    """

    name: str
    elastic: tuple[str, ...]
    epochs: int
    lr: float
    subnets_per_step: int = 1
    distill: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(
                f"phase {self.name!r}: epochs must be a positive int, got {self.epochs!r}"
            )
        if not self.lr > 0:
            raise ConfigError(f"phase {self.name!r}: lr must be > 0, got {self.lr!r}")
        if not isinstance(self.subnets_per_step, int) or self.subnets_per_step < 1:
            raise ConfigError(f"phase {self.name!r}: subnets_per_step must be a positive int")
        object.__setattr__(self, "elastic", tuple(self.elastic))

    def sample(self, space: SearchSpace, rng: np.random.Generator) -> ArchConfig:
        """A random architecture whose non-elastic dimensions are at their largest value."""
        row = [
            int(rng.integers(len(c.values)))
            if dim_kind(c.name) in self.elastic
            else len(c.values) - 1
            for c in space.choices
        ]
        return space.from_indices(row)


def dim_kind(name: str) -> str:
    """The kind of a dimension: the last part of its dotted name (``s2.b0.kernel`` → ``kernel``)."""
    return name.rsplit(".", 1)[-1]


def default_phases(epochs: int, lr: float) -> tuple[Phase, ...]:
    """Once-for-All's order, ``epochs`` split over four phases (the full network gets the rest).

    Later phases fine-tune at a lower rate, as in OFA (about a third of the first).
    """
    if epochs < 4:
        raise ConfigError(
            f"epochs must be >= 4 for the progressive schedule's 4 phases, got {epochs}"
        )
    each = epochs // 4
    full = epochs - 3 * each
    return (
        Phase(name="full", elastic=("resolution",), epochs=full, lr=lr, distill=False),
        Phase(name="kernel", elastic=("resolution", "kernel"), epochs=each, lr=lr / 3),
        Phase(
            name="depth",
            elastic=("resolution", "kernel", "depth"),
            epochs=each,
            lr=lr / 3,
            subnets_per_step=2,
        ),
        Phase(name="expand", elastic=ELASTIC_KINDS, epochs=each, lr=lr / 3, subnets_per_step=2),
    )


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train a supernet.

    Args:
        schedule: ``sandwich``, ``progressive`` or ``sorted``.
        epochs: total epochs (``progressive``: split by :func:`default_phases` unless
            ``phases`` is given, in which case the phases' epochs count).
        batch_size: images per step (per worker when data-parallel).
        lr: peak learning rate (``sandwich``; default phases scale from it).
        optimizer: ``sgd`` (Nesterov momentum) or ``adamw``.
        momentum: SGD momentum.
        weight_decay: applied to weights only, never to norms or biases.

            ``lr``, ``optimizer``, ``weight_decay`` and ``label_smoothing`` left ``None`` take
            the task's defaults (:meth:`resolved`, which training calls; the run records the
            values used): classification SGD, lr 0.05, weight decay 3e-5, label smoothing 0.1;
            language modelling AdamW, lr 3e-3, weight decay 0.01, no label smoothing.
        warmup_epochs: linear warm-up of the first phase, then cosine decay to zero.
        label_smoothing: of the cross-entropy on the true labels (default: the task's).
        num_random: random subnets per sandwich step (between the largest and the smallest).
        num_nested: nested sub-models per ``sorted`` step, the largest included (>= 2).
        kd_ratio: weight of the distillation loss (soft cross-entropy to the teacher).
        kd_temperature: softmax temperature of distillation.
        teacher: ``inplace`` (the schedule's own: the largest subnet teaches in place, or
            progressive's frozen full network) or ``initial``: a frozen copy of the supernet as
            it starts (e.g. the imported pretrained model) teaches every subnet.
        phases: explicit progressive phases.
        seed: seeds the initial weights' successors: data order and subnet sampling.
        device: ``cpu``, ``cuda`` or ``cuda:N`` (chosen explicitly, never guessed).
        amp: mixed precision (float16 + loss scaling on CUDA, bfloat16 on CPU).
        checkpoint_every: write a checkpoint every this many steps (and at each epoch end).
        eval_bn_batches: BN recalibration batches for each end-of-epoch evaluation.
        eval_max_batches: validation batches per end-of-epoch evaluation (``None``: all).
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        largest_weight: ``sandwich`` and ``sorted``: the weight of the largest subnet's loss
            in each step's sum (every other subnet weighs 1). Above 1 it keeps the largest,
            the in-place teacher, from being slowed down by the smaller subnets' gradients.
        sampling: how ``sandwich`` draws its ``num_random`` subnets, each dimension
            independently: ``uniform`` (every value alike), or ``balanced``: so that, counting
            the largest and the smallest the step always trains, every value of a dimension
            is trained equally often (a 3-value dimension with ``num_random=2``: the interior
            value with probability 2/3, each end 1/6; where ``num_random + 2`` is below the
            number of values, only interior values are drawn; 2-value dimensions stay
            uniform). Uniform sampling leaves interior values to the random subnets alone,
            so they are trained half as often as the ends (``num_random=2``, 3 values).
        quantization_aware: quantization-aware training (spaces with a quantization
            policy only): each subnet of a step computes fake-quantized by its policy with
            straight-through gradients (:mod:`nas.quantization.qat`); the largest of a
            ``sandwich`` / ``sorted`` step, the in-place teacher, stays float. With
            ``progressive`` a phase must list ``"bits"`` among its elastic kinds (else every
            bits dimension stays at its largest value, float).
    """

    schedule: str = "sandwich"
    epochs: int = 5
    batch_size: int = 64
    lr: float | None = None
    optimizer: str | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    warmup_epochs: float = 1.0
    label_smoothing: float | None = None
    num_random: int = 2
    num_nested: int = 4
    kd_ratio: float = 1.0
    kd_temperature: float = 1.0
    teacher: str = "inplace"
    phases: tuple[Phase, ...] | None = None
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    checkpoint_every: int = 200
    eval_bn_batches: int = 10
    eval_max_batches: int | None = None
    grad_clip: float | None = None
    largest_weight: float = 1.0
    sampling: str = "uniform"
    quantization_aware: bool = False

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        for name in ("epochs", "batch_size", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        for name in ("num_random", "eval_bn_batches"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be an int >= 0, got {value!r}")
        if not isinstance(self.num_nested, int) or isinstance(self.num_nested, bool) or (
            self.num_nested < 2
        ):
            raise ConfigError(
                f"num_nested must be an int >= 2 (the largest and at least one smaller "
                f"sub-model), got {self.num_nested!r}"
            )
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be > 0 (or None: the task's default), got {self.lr!r}")
        for name in ("weight_decay", "warmup_epochs", "kd_ratio", "momentum"):
            value = getattr(self, name)
            if not (value is None and name == "weight_decay") and not value >= 0:
                raise ConfigError(f"{name} must be >= 0, got {value!r}")
        if not self.largest_weight > 0:
            raise ConfigError(f"largest_weight must be > 0, got {self.largest_weight!r}")
        if self.largest_weight != 1.0 and self.schedule == "progressive":
            raise ConfigError("largest_weight is only used by schedule='sandwich' or 'sorted'")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"sampling must be one of {list(SAMPLINGS)}, got {self.sampling!r}")
        if self.sampling != "uniform" and self.schedule != "sandwich":
            raise ConfigError("sampling='balanced' is only used by schedule='sandwich'")
        if not isinstance(self.quantization_aware, bool):
            raise ConfigError(
                f"quantization_aware must be True or False, got {self.quantization_aware!r}")
        if self.quantization_aware and self.schedule == "progressive" and not any(
            "bits" in p.elastic for p in self._phases(1.0)
        ):
            raise ConfigError(
                "quantization_aware with schedule='progressive' needs a phase whose elastic "
                "kinds include 'bits' (the default phases keep every bits dimension at 32)"
            )
        if self.label_smoothing is not None and not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.teacher not in TEACHERS:
            raise ConfigError(f"teacher must be one of {list(TEACHERS)}, got {self.teacher!r}")
        if not self.kd_temperature > 0:
            raise ConfigError(f"kd_temperature must be > 0, got {self.kd_temperature!r}")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.phases is not None:
            if self.schedule != "progressive":
                raise ConfigError("phases are only used by schedule='progressive'")
            object.__setattr__(self, "phases", tuple(self.phases))
        self._phases(1.0)  # validates the progressive split (whatever the lr)

    def resolved(self, task: Task | str) -> TrainConfig:
        """This config with each of :data:`TASK_DEFAULTED` left ``None`` set to ``task``'s
        default (a :class:`~nas.tasks.Task` or its name; see ``Task.train_defaults``).

        Example:
            >>> TrainConfig(lr=1e-3).resolved("language_modelling").optimizer   # 'adamw'
        """
        if isinstance(task, str):
            from nas.tasks.registry import create_task

            task = create_task(task)
        defaults: Mapping[str, Any] = task.train_defaults
        missing = [k for k in TASK_DEFAULTED if defaults.get(k) is None]
        if missing:
            raise ConfigError(f"task {task.name!r}: train_defaults lacks {missing}; it must "
                              f"give {list(TASK_DEFAULTED)}")
        unset = {k: defaults[k] for k in TASK_DEFAULTED if getattr(self, k) is None}
        return dataclasses.replace(self, **unset) if unset else self

    def resolved_phases(self) -> tuple[Phase, ...]:
        """The phases this config trains (``sandwich``, ``sorted``: one, all dimensions elastic).

        Raises:
            ConfigError: ``lr`` is still ``None`` (call :meth:`resolved` first).
        """
        if self.lr is None:
            raise ConfigError("lr is None (the task's default): resolve the config first, "
                              "TrainConfig.resolved(task)")
        return self._phases(self.lr)

    def _phases(self, lr: float) -> tuple[Phase, ...]:
        if self.schedule in ("sandwich", "sorted"):
            return (Phase(name=self.schedule, elastic=(), epochs=self.epochs, lr=lr),)
        if self.phases is not None:
            return self.phases
        return default_phases(self.epochs, lr)

    def total_epochs(self) -> int:
        """Epochs over all phases."""
        return sum(p.epochs for p in self._phases(1.0))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``supernet/config.json``); :meth:`from_dict` reads it back."""
        out = dataclasses.asdict(self)
        if self.phases is not None:
            out["phases"] = [
                {**dataclasses.asdict(p), "elastic": list(p.elastic)} for p in self.phases
            ]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The config of :meth:`to_dict`'s output; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown TrainConfig fields {unknown}; allowed: {sorted(known)}")
        values = dict(data)
        if values.get("phases") is not None:
            values["phases"] = tuple(
                Phase(**{**p, "elastic": tuple(p["elastic"])}) for p in values["phases"]
            )
        return cls(**values)

    def differences(self, other: TrainConfig) -> list[str]:
        """Fields (other than :data:`RESUMABLE_CHANGES`) whose values differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [k for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs[k]]
