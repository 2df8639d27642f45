"""Quantization-aware fine-tuning: quantized accuracy after fine-tuning with and without QAT.

Train a ``tiny+q8-32b`` supernet (block-wise int8/float32 policy) on MNIST
(``../shared/data/images/mnist_png.zip``, read in place) in float for ``--pretrain-epochs``,
then fine-tune copies of it for ``--finetune-epochs`` at ``--finetune-lr`` twice, with the
same seed and data order: ``TrainConfig(quantization_aware=False)`` and ``=True``
(:mod:`nas.quantization.qat`: each step's random and smallest subnets train fake-quantized
by their policies, straight-through gradients; the largest stays float). Each model is then
measured on the MNIST test split (``nas.evaluate``: BN recalibrated, int8 ranges calibrated on
the training data, as everywhere): the smallest, a middle and the largest architecture with
every block int8 and in float32, and ``--pairs`` random (architecture, policy) pairs with at
least one int8 block. ``drop`` = float32 - quantized accuracy of the same architecture (points).

``--space vit_mini``: the same for ``vit_mini+q4-8-32b`` (weight-only ``MatMulNBits`` 4/8-bit
linear layers; AdamW, no BN): the reference architectures are measured all-int4, where
rounding costs more than int8 does.

Usage:
    python bench/bench_quant_qat.py [--train-limit 6000] [--pretrain-epochs 2]
        [--finetune-epochs 1] [--pairs 8] [--full-range]
    python bench/bench_quant_qat.py --space vit_mini [--pretrain-epochs 6]
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
from quant_common import MNIST, RECIPES, add_run_arguments, quantized_space

import nas
from nas.data import load_image_folder
from nas.evaluation import reference_archs
from nas.quantization import policy_of
from nas.train import TrainConfig, train_supernet

LOW_BITS = {"tiny": 8, "vit_mini": 4}  # the bits of the reference rows, per space


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--space", default="tiny", choices=sorted(RECIPES))
    p.add_argument("--data", default=str(MNIST))
    p.add_argument("--train-limit", type=int, default=6000)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=None,
                   help="pre-training peak learning rate (default: 0.05 tiny, 2e-3 ViT)")
    p.add_argument("--finetune-lr", type=float, default=None, help="default: lr / 5")
    p.add_argument("--pairs", type=int, default=8, help="random (arch, policy) pairs")
    add_run_arguments(p, bn_default="20 tiny, 0 ViT")
    return p


def _with_bits(space: nas.SearchSpace, arch: nas.ArchConfig, bits: int) -> nas.ArchConfig:
    return arch.replace(space, **{n: bits for n in space.names if n.endswith(".bits")})


def _archs(
    space: nas.SearchSpace, low: int, pairs: int, seed: int,
) -> dict[str, nas.ArchConfig]:
    """The reference architectures all at ``low`` bits, then ``pairs`` random policies with a
    quantized block."""
    out = {f"{name} int{low}": _with_bits(space, arch, low)
           for name, arch in reference_archs(space).items()}
    rng = np.random.default_rng(seed + 1)
    while len(out) < 3 + pairs:
        arch = space.sample(rng)
        if any(b < 32 for b in policy_of(space, arch).values()):
            out.setdefault(f"random {arch.key}", arch)
    return out


def _measure(supernet: Any, archs: dict[str, nas.ArchConfig], train: Any, test: Any,
             bn_batches: int) -> dict[str, dict[str, float]]:
    space = supernet.space
    names = list(archs)
    quant = [archs[n] for n in names]
    floats = [_with_bits(space, a, 32) for a in quant]
    rows = nas.evaluate(supernet, quant + floats, test, bn_data=train, n_bn_batches=bn_batches)
    out = {}
    for i, name in enumerate(names):
        q, f = rows[i]["accuracy"], rows[len(names) + i]["accuracy"]
        out[name] = {"quant": q, "float": f, "drop": f - q}
    return out


def _config(args: argparse.Namespace, *, pretrain: bool, qat: bool = False) -> TrainConfig:
    """Pre-training: ``--pretrain-epochs`` at ``--lr`` with warm-up; fine-tuning:
    ``--finetune-epochs`` at ``--finetune-lr``, no warm-up."""
    return TrainConfig(epochs=args.pretrain_epochs if pretrain else args.finetune_epochs,
                       lr=args.lr if pretrain else args.finetune_lr, batch_size=64,
                       seed=args.seed, warmup_epochs=1.0 if pretrain else 0.0,
                       optimizer=RECIPES[args.space].optimizer,
                       weight_decay=RECIPES[args.space].weight_decay,
                       eval_bn_batches=2 if args.bn_batches else 0, eval_max_batches=2,
                       checkpoint_every=100_000,
                       quantization_aware=qat)


def _print(results: dict[str, dict[str, dict[str, float]]], header: str) -> None:
    print(header)
    arms = list(results)
    names = list(results[arms[0]])
    print(f"{'architecture':<28}" + "".join(f"{a + ' quant':>17}{'drop':>7}" for a in arms))
    for name in names:
        cells = "".join(f"{results[a][name]['quant']:>17.2f}{results[a][name]['drop']:>7.2f}"
                        for a in arms)
        print(f"{name:<28}{cells}")
    means = "".join(
        f"{np.mean([r['quant'] for r in results[a].values()]):>17.2f}"
        f"{np.mean([r['drop'] for r in results[a].values()]):>7.2f}" for a in arms)
    print(f"{'mean':<28}{means}")


def main() -> None:
    args = _parser().parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = load_image_folder(args.data, "train", limit=args.train_limit, seed=args.seed)
    test = load_image_folder(args.data, "test", limit=args.test_limit, seed=args.seed)
    recipe = RECIPES[args.space]
    args.lr = recipe.lr if args.lr is None else args.lr
    args.finetune_lr = args.lr / 5 if args.finetune_lr is None else args.finetune_lr
    args.bn_batches = recipe.bn_batches if args.bn_batches is None else args.bn_batches
    space = quantized_space(args.space, reduce_range=not args.full_range)
    archs = _archs(space, LOW_BITS[args.space], args.pairs, args.seed)
    results: dict[str, dict[str, dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        supernet: Any = nas.create_supernet(space.name, num_classes=10)
        t0 = time.perf_counter()
        train_supernet(supernet, train, test, _config(args, pretrain=True),
                       Path(tmp) / "pretrain")
        seconds["pretrained"] = time.perf_counter() - t0
        pretrained = {k: v.clone() for k, v in supernet.state_dict().items()}
        results["pretrained"] = _measure(supernet, archs, train, test, args.bn_batches)
        for arm, qat in (("float-FT", False), ("QAT-FT", True)):
            net: Any = nas.create_supernet(space.name, num_classes=10)
            net.load_state_dict(pretrained)
            torch.manual_seed(args.seed + 1)
            t0 = time.perf_counter()
            train_supernet(net, train, test,
                           _config(args, pretrain=False, qat=qat),
                           Path(tmp) / arm)
            seconds[arm] = time.perf_counter() - t0
            results[arm] = _measure(net, archs, train, test, args.bn_batches)
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    _print(results, f"space {space.name}, MNIST {len(train)} train / {len(test)} test; "
                    f"pre-training {args.pretrain_epochs} epochs, fine-tuning "
                    f"{args.finetune_epochs} at lr {args.finetune_lr} ({timing})")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "seconds": seconds},
                                              indent=1))


if __name__ == "__main__":
    main()
