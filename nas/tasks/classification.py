"""Image classification: cross-entropy, soft-target distillation, top-1 accuracy (percent).

Example:
    >>> task = ClassificationTask()
    >>> train, val = task.load(DataSpec(data="digits", val_fraction=0.2))
    >>> task.measure(model, val, resolution=16)     # {"accuracy": ..., "loss": ..., "n": ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from nas.errors import ConfigError, MissingFileError
from nas.tasks.base import DataSpec, Direction, Task

EMBEDDED = ("digits",)


def soft_cross_entropy(
    logits: torch.Tensor, soft_targets: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Cross-entropy against a teacher's softened distribution (in-place distillation)."""
    target = F.softmax(soft_targets.float() / temperature, dim=-1)
    return -(target * F.log_softmax(logits.float() / temperature, dim=-1)).sum(dim=-1).mean()


class ClassificationTask(Task):
    """Top-1 accuracy on images; data from :func:`nas.data.load_data`."""

    name: ClassVar[str] = "classification"
    metric: ClassVar[str] = "accuracy"
    direction: ClassVar[Direction] = "max"
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "loss")
    unit: ClassVar[str] = "%"

    def load(self, spec: DataSpec) -> tuple[Any, Any]:
        from nas.data import load_data, split

        if spec.data not in EMBEDDED and not Path(spec.data).exists():
            raise MissingFileError(
                f"data {spec.data!r}: no such file or folder (or use one of {list(EMBEDDED)})"
            )
        data = load_data(spec.data, split="train", limit=spec.limit, seed=spec.seed)
        if spec.val_split is None:
            return split(data, spec.val_fraction, seed=spec.seed)
        if spec.data in EMBEDDED:
            raise ConfigError(f"val_split needs an image folder; {spec.data!r} has no splits")
        val = load_data(spec.data, split=spec.val_split, limit=spec.limit, seed=spec.seed)
        return data, val

    def num_outputs(self, data: Any) -> int:
        return int(data.num_classes)

    def prepare(self, inputs: torch.Tensor, resolution: int | None) -> torch.Tensor:
        from nas.data import resize

        return resize(inputs, resolution)

    def loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        return F.cross_entropy(outputs.float(), targets, label_smoothing=label_smoothing)

    def distillation_loss(
        self, outputs: torch.Tensor, teacher: torch.Tensor, *, temperature: float = 1.0
    ) -> torch.Tensor:
        return soft_cross_entropy(outputs, teacher, temperature)

    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {
            "loss": float(F.cross_entropy(outputs, targets, reduction="sum")),
            "correct": float((outputs.argmax(dim=1) == targets).sum()),
            "n": float(len(targets)),
        }

    def summarise(self, totals: dict[str, float]) -> dict[str, float]:
        n = max(totals.get("n", 0.0), 1.0)
        return {"accuracy": 100.0 * totals.get("correct", 0.0) / n,
                "loss": totals.get("loss", 0.0) / n, "n": totals.get("n", 0.0)}
