"""Throughput: one sandwich step vs the same subnets trained as extracted static networks.

Part 1 (always): on one batch, time one sandwich step of the supernet (largest + N random +
smallest, gradients accumulated, the largest teaching the others in place, one optimizer step
over the supernet) against the sum of one plain step (forward, cross-entropy, backward, SGD
step) of each of the same subnets extracted as static networks. The ratio is the price of
weight sharing and distillation (target <= 1.2).

Part 2 (``--ray``): Ray Train data-parallel, 1 worker vs 2 workers, same data and per-worker
batch, reporting steady-state images/s and wall time (a 2-core machine shared with other jobs
gives little or no speedup: each worker needs its own core).

Usage:
    python bench/bench_sandwich_throughput.py [--space tiny] [--batch 64] [--num-random 2]
        [--repeats 20] [--ray]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import nas
from nas.data import load_data, resize, split
from nas.evaluation import arch_resolution
from nas.rundir import RunDir
from nas.train import TrainConfig
from nas.train_loop import TrainLoop


def _static_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> None:
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
    loss.backward()
    opt.step()


def sandwich_vs_static(space_name: str, batch: int, num_random: int, repeats: int) -> dict:
    torch.manual_seed(0)
    data = load_data("digits")
    supernet: Any = nas.create_supernet(space_name, num_classes=10)
    space = supernet.space
    config = TrainConfig(batch_size=batch, num_random=num_random, epochs=1000, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir.create(Path(tmp) / "run", space)
        trainer = TrainLoop(
            supernet,
            data,
            data,
            config,
            run,
            rank=0,
            world_size=1,
            reduce_grads=None,
            progress=None,
        )
        trainer._start_phase(0)
        phase = trainer.phases[0]
        x, y = data.batch(np.arange(batch))
        archs = trainer._step_archs(phase, np.random.default_rng([config.seed, 7, 0]))
        statics = []
        for arch in archs:
            model = supernet.extract(arch)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
            statics.append((model, opt, resize(x, arch_resolution(space, arch))))
        sandwich_times, static_times = [], []
        for r in range(repeats + 3):
            trainer.step = 0  # same subnets every repeat
            t0 = time.perf_counter()
            trainer.train_step(x, y, phase)
            t1 = time.perf_counter()
            for model, opt, xr in statics:
                _static_step(model, opt, xr, y)
            t2 = time.perf_counter()
            if r >= 3:  # warm-up
                sandwich_times.append(t1 - t0)
                static_times.append(t2 - t1)
    sandwich, static = statistics.median(sandwich_times), statistics.median(static_times)
    return {
        "subnets": len(archs),
        "resolutions": [arch_resolution(space, a) for a in archs],
        "sandwich_ms": 1000 * sandwich,
        "static_ms": 1000 * static,
        "ratio": sandwich / static,
    }


def ray_speedup(space_name: str, batch: int, epochs: int) -> list[dict]:
    from nas.distributed.train import train_supernet_distributed

    train, val = split(load_data("digits"), 0.2, seed=0)
    rows = []
    for workers in (1, 2):
        torch.manual_seed(0)
        supernet: Any = nas.create_supernet(space_name, num_classes=10)
        config = TrainConfig(
            batch_size=batch,
            epochs=epochs,
            num_random=2,
            eval_bn_batches=1,
            eval_max_batches=1,
            seed=0,
        )
        seen: list[Any] = []
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = train_supernet_distributed(
                supernet, train, val, config, Path(tmp) / "r", workers=workers, progress=seen.append
            )
            wall = time.perf_counter() - t0
        rows.append(
            {
                "workers": workers,
                "steps": result.steps,
                "wall_s": wall,
                "images_per_s": seen[-1].images_per_second if seen else float("nan"),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--num-random", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ray", action="store_true", help="also compare Ray Train 1 vs 2 workers")
    parser.add_argument("--ray-epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    row = sandwich_vs_static(args.space, args.batch, args.num_random, args.repeats)
    print(
        f"space {args.space}, batch {args.batch}, {row['subnets']} subnets per step "
        f"(largest + {args.num_random} random + smallest), resolutions {row['resolutions']}, "
        f"{args.threads} thread(s), median of {args.repeats}"
    )
    print(f"{'':<40}{'ms/step':>10}")
    print(f"{'sandwich step (supernet, in-place KD)':<40}{row['sandwich_ms']:>10.1f}")
    print(f"{'sum of static extracted subnet steps':<40}{row['static_ms']:>10.1f}")
    verdict = "OK" if row["ratio"] <= 1.2 else "ABOVE TARGET"
    print(f"{'ratio (target <= 1.2)':<40}{row['ratio']:>10.2f}  {verdict}")

    if args.ray:
        rows = ray_speedup(args.space, args.batch, args.ray_epochs)
        print()
        print(
            f"Ray Train data-parallel, {args.ray_epochs} epochs of digits, "
            f"batch {args.batch} per worker"
        )
        print(f"{'workers':>8}{'steps':>8}{'wall s':>10}{'images/s':>12}{'speedup':>10}")
        base = rows[0]["images_per_s"]
        for r in rows:
            print(
                f"{r['workers']:>8}{r['steps']:>8}{r['wall_s']:>10.1f}{r['images_per_s']:>12.1f}"
                f"{r['images_per_s'] / base:>10.2f}"
            )


if __name__ == "__main__":
    main()
