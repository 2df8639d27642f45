"""Fidelity of quantization policies: fake quantization in the supernet vs ONNX Runtime.

Train a ``tiny`` supernet with a block-wise int8/float32 policy (``tiny+q8-32b``) on MNIST
(``../shared/data/images/mnist_png.zip``, read in place) for a short budget. Then for
``--pairs`` random (architecture, policy) pairs with at least one int8 block: BN-recalibrate
and measure on the MNIST test split (1) the float32 subnet, (2) the subnet fake-quantized by
its policy in the supernet (``nas.evaluate``, ranges calibrated on the training data), (3) the
export (:func:`nas.quantization.export_quantized`: QDQ static quantization of exactly the
policy's Conv nodes, calibrated on the same batches) run in ONNX Runtime, and (4) its float
ONNX model. Goal: |(2) - (3)| <= 0.5 point on every pair. ``size_B`` is the counted model
size (weights at their bits), ``float_B`` the float32 one, ``onnx_B``/``fonnx_B`` the bytes of
the quantized/float ONNX files (at this size mostly graph and metadata, not weights). Policy:
bits of the active blocks in order (``--granularity layer``: of each block's expand,
depthwise and project convs, ``tiny+q8-32l``; the column sorts them by name).
``--full-range`` drops ``reduce_range`` (see :mod:`nas.quantization.space`), to show what
VNNI-less int8 kernels do to full-range weights.

``--space vit_mini``: the same check for a ViT (``vit_mini+q4-8-32b``, trained with AdamW,
no BN): weight-only ``MatMulNBits`` policies over the transformer layers (4, 8 or 32 bits per
layer; ``--granularity layer``: per linear layer), exported with no calibration
(:mod:`nas.quantization.weight_only`).

Usage:
    python bench/bench_quant_fidelity.py [--epochs 2] [--train-limit 12000] [--pairs 20]
    python bench/bench_quant_fidelity.py --space vit_mini [--granularity layer]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from quant_common import (
    MNIST,
    RECIPES,
    add_run_arguments,
    onnx_accuracy,
    quantized_space,
    train_config,
)

import nas
from nas.data import load_image_folder
from nas.evaluation import recalibrate_bn
from nas.quantization import export_quantized, policy_of
from nas.train import train_supernet

GOAL_POINTS = 0.5


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--space", default="tiny", choices=sorted(RECIPES))
    p.add_argument("--data", default=str(MNIST))
    p.add_argument("--epochs", type=int, default=None, help="default: 2 (tiny), 6 (ViT)")
    p.add_argument("--train-limit", type=int, default=12000)
    p.add_argument("--test-limit", type=int, default=None, help="default: the whole test split")
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--granularity", default="block", choices=["block", "stage", "layer"])
    add_run_arguments(p, bn_default="20 (tiny), 0 (ViT)")
    return p


def _pairs(space: nas.SearchSpace, n: int, seed: int) -> list[nas.ArchConfig]:
    """``n`` distinct random archs whose policy quantizes at least one block."""
    rng, out = np.random.default_rng(seed), dict[str, nas.ArchConfig]()
    while len(out) < n:
        arch = space.sample(rng)
        if any(b < 32 for b in policy_of(space, arch).values()):
            out.setdefault(arch.key, arch)
    return list(out.values())


def _measure(supernet: Any, arch: Any, train: Any, test: Any, args: Any, tmp: Path) -> dict:
    space, task = supernet.space, nas.create_task("classification")
    floats = arch.replace(space, **{n: 32 for n in space.names if n.endswith(".bits")})
    kw = dict(bn_data=train, n_bn_batches=args.bn_batches, device="cpu", task=task)
    float_acc = nas.evaluate(supernet, [floats], test, **kw)[0]["accuracy"]
    fake_acc = nas.evaluate(supernet, [arch], test, **kw)[0]["accuracy"]
    res = int(supernet.input_resolution(arch))
    supernet.set_active(arch)  # the BN statistics nas.evaluate used (same batches, same seed)
    if args.bn_batches:
        recalibrate_bn(supernet, train, args.bn_batches, resolution=res, task=task)
    supernet.eval()
    out = export_quantized(supernet, arch, tmp / arch.key, train, task=task)
    info = json.loads((out / "arch.json").read_text())["quantization"]
    ort_acc = onnx_accuracy(out / "model.onnx", test, res, task)
    ort_float = onnx_accuracy(out / "model_float.onnx", test, res, task)
    policy = policy_of(space, arch)
    return {"arch": arch.key, "resolution": res,
            "policy": "-".join(str(policy[g]) for g in sorted(policy)),
            "float": float_acc, "fake_quant": fake_acc, "ort_quant": ort_acc,
            "ort_float": ort_float, "diff": abs(fake_acc - ort_acc),
            "size_bytes": info["size_bytes"],
            "float_bytes": 4 * nas.count(space, arch, supernet.num_classes)["params"],
            "onnx_bytes": info["onnx_bytes"], "float_onnx_bytes": info["float_onnx_bytes"],
            "quantized_convs": len(info["quantized_nodes"])}


def _print(rows: list[dict], header: str) -> None:
    print(header)
    cols = ("arch", "res", "policy", "float", "fakeQ", "ortQ", "ortF", "|d|", "size_B",
            "float_B", "onnx_B", "fonnx_B")
    print(("{:<13}{:>4} {:<12}" + "{:>7}" * 5 + "{:>9}" * 4).format(*cols))
    for r in rows:
        print(("{:<13}{:>4} {:<12}" + "{:>7.2f}" * 5 + "{:>9}" * 4).format(
            r["arch"], r["resolution"], r["policy"], r["float"], r["fake_quant"],
            r["ort_quant"], r["ort_float"], r["diff"], r["size_bytes"], r["float_bytes"],
            r["onnx_bytes"], r["float_onnx_bytes"]))
    diffs = [r["diff"] for r in rows]
    ok = sum(d <= GOAL_POINTS for d in diffs)
    print(f"|fake-quant - ONNX Runtime|: max {max(diffs):.2f} pt, mean {np.mean(diffs):.3f} pt; "
          f"{ok}/{len(rows)} pairs within {GOAL_POINTS} pt -> "
          f"{'GOAL MET' if ok == len(rows) else 'GOAL MISSED'}")


def main() -> None:
    args = _parser().parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = load_image_folder(args.data, "train", limit=args.train_limit, seed=args.seed)
    test = load_image_folder(args.data, "test", limit=args.test_limit, seed=args.seed)
    recipe = RECIPES[args.space]
    if args.epochs is None:
        args.epochs = recipe.epochs
    if args.bn_batches is None:
        args.bn_batches = recipe.bn_batches
    space = quantized_space(args.space, granularity=args.granularity,
                            reduce_range=not args.full_range)
    supernet: Any = nas.create_supernet(space.name, num_classes=10)
    config = train_config(args.space, epochs=args.epochs, seed=args.seed,
                          bn_batches=args.bn_batches)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train_supernet(supernet, train, test, config, Path(tmp) / "run")
        trained = time.perf_counter() - t0
        rows = [_measure(supernet, arch, train, test, args, Path(tmp))
                for arch in _pairs(space, args.pairs, args.seed)]
    _print(rows, f"space {space.name}, MNIST {len(train)} train / {len(test)} test, "
                 f"{args.epochs} epochs ({result.steps} steps, {trained:.0f} s), "
                 f"{args.pairs} pairs, {time.perf_counter() - t0 - trained:.0f} s measuring")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
