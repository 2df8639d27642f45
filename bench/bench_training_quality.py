"""Quality: subnets extracted from a trained supernet vs the same architectures trained alone.

On MNIST (read in place from ``../shared/data/images/mnist_png.zip``, a seeded subset of the
training split; the full 10,000-image test split for measuring), train the ``tiny`` supernet
with the sandwich rule (largest + N random + smallest, in-place distillation) for E epochs;
then extract the smallest, a middle and the largest subnet, recalibrate their BN statistics on
training images and measure top-1 on the test split. Train the same three architectures alone
(static networks, fresh initialisation, the same recipe: optimizer, label smoothing, weight
decay, warm-up + cosine, batch order; no distillation) for the same E epochs, and print the
gap. Target: supernet subnet >= standalone - 1.0 point, for each of the three. So as not to
flatter the supernet, each standalone network gets the best of ``--alone-lrs`` learning rates
(a supernet step sums the gradients of several subnets, so its shared weights move faster).

Everything runs in this process on ``--threads`` torch threads; the printed budget is the
measured CPU wall time of each part.

Usage:
    python bench/bench_training_quality.py [--train-limit 8000] [--epochs 6] [--lr 0.15]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import nas
from nas.data import ImageData, batches, load_image_folder, resize, split, steps_per_epoch
from nas.evaluation import arch_resolution, measure, recalibrate_bn, reference_archs
from nas.train import TrainConfig, train_supernet
from nas.train_loop import lr_factor, param_groups

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "mnist_png.zip"


def train_alone(
    model: torch.nn.Module, train: ImageData, config: TrainConfig, resolution: int | None
) -> None:
    """The supernet recipe applied to one static network (no distillation)."""
    model.train()
    opt = torch.optim.SGD(
        param_groups(model, config.weight_decay),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
    )
    n_steps = steps_per_epoch(train, config.batch_size)
    total, warmup = config.epochs * n_steps, round(config.warmup_epochs * n_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warmup))
    for epoch in range(config.epochs):
        for x, y in batches(train, config.batch_size, seed=config.seed, epoch=epoch):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(
                model(resize(x, resolution)), y, label_smoothing=config.label_smoothing
            )
            loss.backward()
            opt.step()
            sched.step()


def _schedule(args: argparse.Namespace) -> str:
    if args.schedule == "sandwich":
        return f"sandwich (largest + {args.num_random} random + smallest)"
    return "progressive shrinking (default phases)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(MNIST))
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--train-limit", type=int, default=8000)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--schedule", choices=("sandwich", "progressive"), default="sandwich")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.15)
    parser.add_argument("--num-random", type=int, default=2)
    parser.add_argument("--alone-lrs", default="0.05,0.15", help="standalone lrs; best counts")
    parser.add_argument("--bn-batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    data = load_image_folder(args.data, "train", limit=args.train_limit, seed=args.seed)
    test = load_image_folder(args.data, "test", limit=args.test_limit, seed=args.seed)
    train, val = split(data, 0.05, seed=args.seed)
    t_data = time.perf_counter() - t0
    config = TrainConfig(
        schedule=args.schedule,
        epochs=args.epochs,
        batch_size=args.batch,
        lr=args.lr,
        num_random=args.num_random,
        seed=args.seed,
        eval_bn_batches=5,
        checkpoint_every=10_000,
    )

    torch.manual_seed(args.seed)
    supernet: Any = nas.create_supernet(args.space, num_classes=data.num_classes)
    space = supernet.space
    refs = reference_archs(space)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        train_supernet(supernet, train, val, config, Path(tmp) / "run")
    t_super = time.perf_counter() - t0

    rows = []
    t_alone = 0.0
    for name, arch in refs.items():
        res = arch_resolution(space, arch)
        sub = supernet.extract(arch)
        recalibrate_bn(sub, train, args.bn_batches, batch_size=args.batch, resolution=res)
        shared = measure(sub, test, resolution=res)["accuracy"]
        alone, best_lr = -1.0, 0.0
        for lr in [float(v) for v in args.alone_lrs.split(",")]:
            torch.manual_seed(args.seed + 1)
            fresh: Any = nas.create_supernet(args.space, num_classes=data.num_classes)
            alone_model = fresh.extract(arch)  # same architecture, fresh initialisation
            t1 = time.perf_counter()
            train_alone(alone_model, train, dataclasses.replace(config, lr=lr), res)
            t_alone += time.perf_counter() - t1
            top1 = measure(alone_model, test, resolution=res)["accuracy"]
            if top1 > alone:
                alone, best_lr = top1, lr
        params = sum(p.numel() for p in sub.parameters())
        rows.append((name, arch.key, res, params, shared, alone, best_lr, shared - alone))

    print(
        f"MNIST ({len(train)} train / {len(val)} val images from {args.train_limit}, "
        f"test {len(test)}), space {args.space}, {_schedule(args)}, "
        f"{args.epochs} epochs, batch {args.batch}, lr {args.lr}, "
        f"{args.threads} torch thread(s), seed {args.seed}"
    )
    print(
        f"budget: data {t_data:.0f} s, supernet training {t_super:.0f} s, standalone "
        f"trainings (3 archs x lrs {args.alone_lrs}) {t_alone:.0f} s; CPU, shared machine"
    )
    print(
        f"{'subnet':<10}{'arch':<14}{'res':>5}{'params':>9}{'supernet %':>12}"
        f"{'alone %':>10}{'(lr)':>7}{'gap':>8}  (target gap >= -1.0)"
    )
    for name, key, res, params, shared, alone, best_lr, gap in rows:
        ok = "OK" if gap >= -1.0 else "MISSED"
        print(
            f"{name:<10}{key:<14}{res!s:>5}{params:>9}{shared:>12.2f}{alone:>10.2f}"
            f"{best_lr:>7.2f}{gap:>+8.2f}  {ok}"
        )


if __name__ == "__main__":
    main()
