"""What the quantization benches share: MNIST, each space's policy bits and training recipe,
and accuracy of an exported model in ONNX Runtime.

Example:
    >>> recipe = RECIPES["vit_mini"]
    >>> qspace = quantized_space("vit_mini", granularity="block")      # vit_mini+q4-8-32b
    >>> config = train_config("vit_mini", epochs=6, seed=0)
    >>> onnx_accuracy(out / "model.onnx", test, resolution=28, task=task)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nas
from nas.data import eval_batches
from nas.quantization import quantized
from nas.train import TrainConfig

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "mnist_png.zip"


@dataclass(frozen=True)
class Recipe:
    """A base space's policy bits and how the benches train it on MNIST."""

    bits: tuple[int, ...]
    epochs: int
    lr: float
    optimizer: str | None = None  # None: the task's default (SGD for images)
    weight_decay: float | None = None
    bn_batches: int = 20  # BN recalibration batches (0: the space has no BN)


RECIPES: dict[str, Recipe] = {
    "tiny": Recipe(bits=(8, 32), epochs=2, lr=0.05),
    "vit_mini": Recipe(bits=(4, 8, 32), epochs=6, lr=2e-3, optimizer="adamw",
                       weight_decay=0.05, bn_batches=0),
}


def add_run_arguments(p: argparse.ArgumentParser, *, bn_default: str) -> None:
    """The options every quantization bench ends with: range, BN batches, seed, threads,
    JSON output."""
    p.add_argument("--full-range", action="store_true",
                   help="int8 weights in [-127, 127] instead of ONNX Runtime's reduce_range")
    p.add_argument("--bn-batches", type=int, default=None, help=f"default: {bn_default}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write the rows here")


def quantized_space(base: str, *, granularity: str = "block",
                    reduce_range: bool = True) -> nas.SearchSpace:
    """``base`` with its recipe's policy bits as search dimensions."""
    return quantized(nas.create_space(base), granularity=granularity, bits=RECIPES[base].bits,
                     reduce_range=reduce_range)


def train_config(base: str, *, epochs: int, seed: int, bn_batches: int | None = None) -> Any:
    """The :class:`TrainConfig` the benches train ``base``'s supernet with."""
    recipe = RECIPES[base]
    bn = recipe.bn_batches if bn_batches is None else bn_batches
    return TrainConfig(epochs=epochs, batch_size=64, lr=recipe.lr, seed=seed,
                       optimizer=recipe.optimizer, weight_decay=recipe.weight_decay,
                       eval_bn_batches=5 if bn else 0, eval_max_batches=4,
                       checkpoint_every=100_000)


def onnx_accuracy(path: Path, data: Any, resolution: int, task: Any, *,
                  threads: int = 1) -> float:
    """Top-1 (%) of the ONNX model at ``path`` on ``data`` in ONNX Runtime (one session)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name, correct = session.get_inputs()[0].name, 0
    for x, y in eval_batches(data, 256):
        logits = session.run(None, {name: task.prepare(x, resolution).numpy()})[0]
        correct += int((logits.argmax(1) == y.numpy()).sum())
    return 100.0 * correct / len(data)
