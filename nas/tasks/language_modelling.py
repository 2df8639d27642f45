"""Language modelling: next-token cross-entropy, distillation on logits, perplexity.

Data: :func:`nas.text_data.load_text` (``"pydoc"`` embedded, or a ``.txt`` file or folder),
byte-level tokens, windows of ``DataSpec.seq_len`` (default 64); the validation windows are
the last ``val_fraction`` of the text (contiguous, so no validation text is trained on).

Example:
    >>> task = LanguageModellingTask()
    >>> train, val = task.load(DataSpec(data="pydoc", seq_len=64, val_fraction=0.1))
    >>> task.measure(model, val)        # {"perplexity": ..., "loss": ..., "n": ...}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from nas.errors import ConfigError
from nas.tasks.base import DataSpec, Direction, Task
from nas.tasks.classification import soft_cross_entropy

DEFAULT_SEQ_LEN = 64


class LanguageModellingTask(Task):
    """Perplexity (lower is better) of next-token prediction; trained by default with AdamW,
    lr 3e-3, weight decay 0.01 (the language-model benches' recipe) and no label smoothing
    (it would raise the perplexity the model is judged by)."""

    name: ClassVar[str] = "language_modelling"
    metric: ClassVar[str] = "perplexity"
    direction: ClassVar[Direction] = "min"
    metrics: ClassVar[tuple[str, ...]] = ("perplexity", "loss")
    train_defaults: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"optimizer": "adamw", "lr": 3e-3, "weight_decay": 0.01, "label_smoothing": 0.0}
    )

    def load(self, spec: DataSpec) -> tuple[Any, Any]:
        from nas.data import SubsetData
        from nas.text_data import load_text

        if spec.val_split is not None:
            raise ConfigError("language modelling splits by val_fraction, not val_split")
        data = load_text(spec.data, seq_len=spec.seq_len or DEFAULT_SEQ_LEN, limit=spec.limit)
        n_val = max(1, round(spec.val_fraction * len(data)))
        order = np.arange(len(data))
        return SubsetData(data, order[:-n_val]), SubsetData(data, order[-n_val:])

    def num_outputs(self, data: Any) -> int:
        return int(data.num_classes)

    def prepare(self, inputs: torch.Tensor, resolution: int | None) -> torch.Tensor:
        return inputs

    def loss(
        self, outputs: torch.Tensor, targets: torch.Tensor, *, label_smoothing: float = 0.0
    ) -> torch.Tensor:
        return F.cross_entropy(outputs.float().flatten(0, -2), targets.flatten(),
                               label_smoothing=label_smoothing)

    def distillation_loss(
        self, outputs: torch.Tensor, teacher: torch.Tensor, *, temperature: float = 1.0
    ) -> torch.Tensor:
        return soft_cross_entropy(outputs.flatten(0, -2), teacher.flatten(0, -2), temperature)

    def batch_sums(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        loss = F.cross_entropy(outputs.flatten(0, -2), targets.flatten(), reduction="sum")
        return {"loss": float(loss), "n": float(targets.numel())}

    def summarise(self, totals: dict[str, float]) -> dict[str, float]:
        loss = totals.get("loss", 0.0) / max(totals.get("n", 0.0), 1.0)
        return {"perplexity": math.exp(min(loss, 50.0)), "loss": loss, "n": totals.get("n", 0.0)}
