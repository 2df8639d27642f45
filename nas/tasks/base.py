"""A task: what a supernet is trained and measured for.

A :class:`Task` owns the loss, the distillation loss, the metric and how a batch is fed to the
network; the steps of the flow (training, sample collection, predictors, search, export,
report) name metrics through it and never assume image classification. A run records its
task's name in ``run.json``; :func:`nas.tasks.task_for_space` gives a space's default.

Example:
    >>> task = nas.tasks.create_task("classification")
    >>> task.metric, task.direction          # ('accuracy', 'max')
    >>> train, val = task.load(DataSpec(data="digits", val_fraction=0.2))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from nas.errors import ConfigError

if TYPE_CHECKING:  # torch is needed by the implementations only
    import torch
    from torch import nn

Direction = Literal["max", "min"]


@dataclass(frozen=True, kw_only=True)
class DataSpec:
    """Where a run's data comes from; stored in ``run.json`` so every step reloads the same.

    Args:
        data: an embedded dataset name (``"digits"``; ``"pydoc"`` for text) or a path.
        limit: use a random subset of this many examples.
        seed: seed of the subset and of the train/validation split.
        val_fraction: share held out for validation when ``val_split`` is not given.
        val_split: validate on this split of the data (e.g. an image folder's ``test``).
        seq_len: tokens per example (language modelling; ``None``: the task's default).
    """

    data: str = "digits"
    limit: int | None = None
    seed: int = 0
    val_fraction: float = 0.1
    val_split: str | None = None
    seq_len: int | None = None

    def __post_init__(self) -> None:
        if self.seq_len is not None and (isinstance(self.seq_len, bool) or self.seq_len < 1):
            raise ConfigError(f"seq_len must be a positive int or None, got {self.seq_len!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 2):
            raise ConfigError(f"limit must be an int >= 2 or None, got {self.limit!r}")
        if self.val_split is None and not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "data") -> DataSpec:
        """The spec stored by :meth:`to_dict`; errors name ``source`` and the bad field."""
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {unknown}; allowed {sorted(allowed)}")
        return cls(**dict(data))


class Task(ABC):
    """The loss, distillation loss, metric and batch feeding of one kind of problem.

    Subclasses set the class attributes and implement the hooks. ``measure`` returns at least
    :attr:`metric` and ``loss``; :attr:`metrics` lists every metric it returns, in order.
    :attr:`train_defaults` are the optimizer, peak learning rate, weight decay and label
    smoothing a
    :class:`~nas.train_config.TrainConfig` takes when it leaves them ``None``.
    """

    name: ClassVar[str]
    metric: ClassVar[str]
    direction: ClassVar[Direction]
    metrics: ClassVar[tuple[str, ...]]
    unit: ClassVar[str] = ""
    train_defaults: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"optimizer": "sgd", "lr": 0.05, "weight_decay": 3e-5, "label_smoothing": 0.1}
    )

    def objectives(self, latency: str = "latency_ms") -> dict[str, str]:
        """The default search objectives: the task metric and ``latency``."""
        return {self.metric: self.direction, latency: "min"}

    def label(self, metric: str) -> str:
        """``metric`` with its unit, for tables and plots."""
        return f"{metric} ({self.unit})" if metric == self.metric and self.unit else metric

    @abstractmethod
    def load(self, spec: DataSpec) -> tuple[Any, Any]:
        """The training and validation data of ``spec``."""

    @abstractmethod
    def num_outputs(self, data: Any) -> int:
        """The network's output width for ``data`` (classes, or vocabulary size)."""

    @abstractmethod
    def prepare(self, inputs: torch.Tensor, resolution: int | None) -> torch.Tensor:
        """A batch's inputs as the network of ``resolution`` takes them."""

    @abstractmethod
    def loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        """The training loss of ``outputs`` against ``targets`` (a scalar)."""

    @abstractmethod
    def distillation_loss(
        self, outputs: torch.Tensor, teacher: torch.Tensor, *, temperature: float = 1.0
    ) -> torch.Tensor:
        """The loss of ``outputs`` against a teacher's outputs (in-place distillation)."""

    @abstractmethod
    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Sums over one evaluation batch (e.g. summed loss, correct count, examples)."""

    @abstractmethod
    def summarise(self, totals: dict[str, float]) -> dict[str, float]:
        """The task's metrics (and ``n``) from the sums over every batch."""

    def measure(
        self,
        model: nn.Module,
        data: Any,
        *,
        batch_size: int = 256,
        resolution: int | None = None,
        device: str | torch.device = "cpu",
        max_batches: int | None = None,
    ) -> dict[str, float]:
        """The task's metrics of ``model`` (in eval mode, restored after) on ``data``."""
        import torch

        from nas.data import eval_batches

        was_training = model.training
        model.eval()
        totals: dict[str, float] = {}
        try:
            with torch.no_grad():
                for x, y in eval_batches(data, batch_size, limit=max_batches):
                    outputs = model(self.prepare(x.to(device), resolution)).float()
                    for key, value in self.batch_sums(outputs, y.to(device)).items():
                        totals[key] = totals.get(key, 0.0) + value
        finally:
            model.train(was_training)
        return self.summarise(totals)
