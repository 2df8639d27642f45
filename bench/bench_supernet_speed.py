"""Supernet speed: a training step with an arch active vs its extracted static subnet.

Measures, in one run, for the largest, a middle and the smallest ``ofa_mbv3_w1.0`` arch:

(a) one SGD training step (forward + backward + step) of the supernet with the arch active vs
    the extracted static subnet (goal: ratio <= 1.15);
(b) the time to ``extract`` the largest subnet (goal: < 100 ms);
(c) with ``--ofa`` (run it with bench/.ofa-env/bin/python, see bench/ofa_reference/), the same
    training step of the reference ``ofa`` package's ``OFAMobileNetV3`` (goal: ratio <= 1.0).

Usage:
    python bench/bench_supernet_speed.py [--batch 16] [--steps 5] [--threads 1] [--json OUT]
    bench/.ofa-env/bin/python bench/bench_supernet_speed.py --ofa     # with column (c)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nas
from nas.supernet import Supernet

HERE = Path(__file__).resolve().parent


class Stepper:
    """One SGD training step (forward, cross-entropy, backward, update) of a model, timed."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model = model.train()
        self.x, self.y = x, y
        params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
        self.loss = nn.CrossEntropyLoss()

    def __call__(self) -> float:
        start = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        self.loss(self.model(self.x), self.y).backward()
        self.opt.step()
        return time.perf_counter() - start


def interleaved(steppers: dict[str, Callable[[], float]], steps: int, warmup: int = 2
                ) -> dict[str, float]:
    """Median step time of each model, the models' steps alternating (fair under load)."""
    for _ in range(warmup):
        for fn in steppers.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in steppers}
    for _ in range(steps):
        for k, fn in steppers.items():
            times[k].append(fn())
    return {k: statistics.median(v) for k, v in times.items()}


def archs(space: nas.SearchSpace) -> dict[str, nas.ArchConfig]:
    """The largest, the middle (every dimension at its middle value) and the smallest arch."""
    middle = space.from_indices([len(c.values) // 2 for c in space.choices])
    return {"largest": space.largest(), "middle": middle, "smallest": space.smallest()}


def ofa_reference(arch_ofa: dict, num_classes: int) -> nn.Module:
    """The ``ofa`` package's OFAMobileNetV3 (w1.0, k357, e346, d234) with ``arch`` active."""
    sys.path.insert(0, str(HERE / "ofa_reference" / "stubs"))
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

    net = OFAMobileNetV3(n_classes=num_classes, dropout_rate=0.1, width_mult=1.0,
                         ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    net.set_active_subnet(ks=arch_ofa["ks"], e=arch_ofa["e"], d=arch_ofa["d"])
    return net


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ofa", action="store_true", help="also time the ofa reference package")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = nas.create_space("ofa_mbv3_w1.0")
    supernet = nas.create_supernet("ofa_mbv3_w1.0", num_classes=1000)
    if not isinstance(supernet, Supernet):
        raise TypeError("ofa_mbv3_w1.0 did not build a nas.Supernet")
    results: list[dict[str, Any]] = []
    for label, arch in archs(space).items():
        r = int(arch["resolution"])
        x = torch.randn(args.batch, 3, r, r)
        y = torch.randint(0, 1000, (args.batch,))
        supernet.set_active(arch)
        static = supernet.extract(arch)
        fns: dict[str, Callable[[], float]] = {
            "supernet": Stepper(supernet, x, y),
            "static": Stepper(static, x, y),
        }
        if args.ofa:
            fns["ofa"] = Stepper(ofa_reference(space.to_ofa(arch), 1000), x, y)
        t = interleaved(fns, args.steps)
        row = {"arch": label, "resolution": r, **{f"{k}_s": v for k, v in t.items()},
               "supernet/static": t["supernet"] / t["static"]}
        if args.ofa:
            row["supernet/ofa"] = t["supernet"] / t["ofa"]
        results.append(row)
    supernet.set_active(space.largest())
    extract_times = []
    for _ in range(5):
        start = time.perf_counter()
        supernet.extract(space.largest())
        extract_times.append(time.perf_counter() - start)
    extract_ms = 1000 * min(extract_times)

    print(f"ofa_mbv3_w1.0 training step, batch {args.batch}, {args.threads} thread(s), "
          f"median of {args.steps} interleaved steps")
    head = f"{'arch':<9}{'res':>5}{'supernet s':>12}{'static s':>10}{'ratio':>8}"
    if args.ofa:
        head += f"{'ofa s':>10}{'vs ofa':>8}"
    print(head)
    for row in results:
        line = (f"{row['arch']:<9}{row['resolution']:>5}{row['supernet_s']:>12.3f}"
                f"{row['static_s']:>10.3f}{row['supernet/static']:>8.3f}")
        if args.ofa:
            line += f"{row['ofa_s']:>10.3f}{row['supernet/ofa']:>8.3f}"
        print(line)
    print(f"extract(largest): {extract_ms:.1f} ms (best of 5)")
    if args.json:
        args.json.write_text(json.dumps({"steps": results, "extract_ms": extract_ms}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
