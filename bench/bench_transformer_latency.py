"""Latency lookup tables of transformer spaces vs whole subnets timed end to end.

For each ``SPACE:VOCAB`` of ``--spaces`` (default a GPT space at 50,257 tokens of vocabulary
and a ViT space at 1000 classes): builds the space's lookup table on this machine (torch,
batch 1, 1 thread; a language model at ``--seq-len`` tokens, default 128), times 20
calibration and 50 test random whole subnets end to end (interleaved, round-robin), fits the
table's whole-network correction on the 20 and prints Kendall τ and MAPE on the 50 of the
plain table sum, the corrected table and a MACs-linear baseline fitted on the same 20.
Goal: τ >= 0.9 and MAPE <= 10 %.

Same protocol as ``bench/bench_latency_lut.py`` (made for a CPU shared with other jobs):
layers in ``--layer-rounds`` shuffled sweeps, tiny ones re-run to ``--min-time-ms``; subnets
round-robin in ``--subnet-rounds`` shuffled rounds; ``--clock thread_cpu`` and
``--statistic min_ms`` by default. The final numbers need an idle machine.

Run (final):  OMP_NUM_THREADS=1 python bench/bench_transformer_latency.py
Smoke:        python bench/bench_transformer_latency.py --spaces gpt_tiny:256 vit_mini:10 \\
                  --layer-rounds 1 --subnet-rounds 2 --n-test 12 --n-calib 8
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import torch

import nas
from nas.counting import count_many
from nas.hardware import build_lookup_table, measure_subnets
from nas.sequence import sequence_length
from predictors import kendall_tau, mape
from predictors.lookup_table import LookupTablePredictor

DEFAULT_SPACES = ("gpt2_small:50257", "vit_ti16:1000")


def parse_space(text: str) -> tuple[nas.SearchSpace, int]:
    """``NAME:VOCAB`` (or ``NAME:CLASSES``) → the space and its output width."""
    name, _, width = text.partition(":")
    return nas.create_space(name), int(width or 1000)


def bench_space(space: nas.SearchSpace, width: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build the table, time the subnets, score the predictors (see the module doc)."""
    seq_len = sequence_length(space, args.seq_len if "seq_len" in space.meta else None)
    timing: dict[str, Any] = {"threads": 1, "clock": args.clock, "seq_len": seq_len,
                              "num_classes": width}
    start = time.perf_counter()
    table = build_lookup_table(space, warmup=1, repeats=args.repeats, rounds=args.layer_rounds,
                               min_time_s=args.min_time_ms / 1e3, **timing)
    build_s = time.perf_counter() - start
    lut = {k: v[args.statistic] for k, v in table.items()}
    calib = space.sample_many(args.n_calib, np.random.default_rng(1))
    test = space.sample_many(args.n_test, np.random.default_rng(0))
    start = time.perf_counter()
    # keep the subnets built between rounds only where they all fit in a few GB
    largest = count_many(space, [space.largest()], width)[0]["params"]
    keep = 4 * largest * (len(calib) + len(test)) <= args.keep_gb * 1e9
    rows = measure_subnets(space, calib + test, warmup=2, repeats=1, rounds=args.subnet_rounds,
                           keep_models=keep, **timing)
    measure_s = time.perf_counter() - start
    y_all = np.array([r[args.statistic] for r in rows])
    y_cal, y = y_all[: len(calib)], y_all[len(calib):]
    spread = np.array([r["median_ms"] / r["min_ms"] - 1 for r in rows])
    plain = LookupTablePredictor(space, table=lut, num_classes=width)
    corrected = LookupTablePredictor(space, table=lut, num_classes=width).fit(calib, y_cal)
    macs_cal = np.array([c["macs"] for c in count_many(space, calib, width)], dtype=float)
    macs = np.array([c["macs"] for c in count_many(space, test, width)], dtype=float)
    a, b = np.polyfit(macs_cal, y_cal, 1)
    preds = {"table sum (uncorrected)": plain.predict(test),
             f"table + correction ({len(calib)})": corrected.predict(test),
             f"MACs-linear ({len(calib)})": a * macs + b}
    return {"space": space.name, "width": width, "seq_len": seq_len, "layers": len(lut),
            "build_s": build_s, "measure_s": measure_s, "y": y, "spread": spread,
            "scores": {k: (kendall_tau(y, p), mape(y, p)) for k, p in preds.items()}}


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    """Print one space's numbers."""
    y, spread = result["y"], result["spread"]
    inputs = (f"{result['seq_len']} tokens, vocabulary {result['width']}" if result["seq_len"]
              else f"images, {result['width']} classes")
    print(f"\n{result['space']}: torch, batch 1, 1 thread, {inputs}, {args.statistic}, "
          f"clock {args.clock}")
    print(f"lookup table: {result['layers']} layers, built in {result['build_s']:.0f} s "
          f"({args.layer_rounds} rounds x {args.repeats} runs, min {args.min_time_ms:g} ms)")
    print(f"{args.n_calib + args.n_test} subnets timed end to end in {result['measure_s']:.0f} s "
          f"({args.subnet_rounds} shuffled rounds); noise: median run "
          f"{100 * np.median(spread):.1f} % above the minimum")
    print(f"measured latency of the {len(y)} test subnets: {y.min():.2f}-{y.max():.2f} ms "
          f"(median {np.median(y):.2f})")
    print(f"{'predictor':<28}{'tau':>7}{'mape %':>8}   goal tau>=0.9, mape<=10%")
    for label, (tau, err) in result["scores"].items():
        ok = "ok" if tau >= 0.9 and err <= 10 else "-"
        print(f"{label:<28}{tau:>7.3f}{err:>8.1f}   {ok}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=list(DEFAULT_SPACES),
                        help="SPACE:VOCAB_OR_CLASSES entries")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens (language models)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per layer and round")
    parser.add_argument("--layer-rounds", type=int, default=8, help="sweeps over all layers")
    parser.add_argument("--min-time-ms", type=float, default=2.0,
                        help="per layer and round, re-run tiny layers until this much is timed")
    parser.add_argument("--subnet-rounds", type=int, default=15, help="rounds over the subnets")
    parser.add_argument("--n-calib", type=int, default=20, help="subnets the correction sees")
    parser.add_argument("--n-test", type=int, default=50, help="subnets scored")
    parser.add_argument("--statistic", default="min_ms", choices=["min_ms", "median_ms"])
    parser.add_argument("--clock", default="thread_cpu", choices=["thread_cpu", "wall"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the process")
    parser.add_argument("--keep-gb", type=float, default=4.0,
                        help="keep the subnets built between rounds if they fit in this")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]
    for text in args.spaces:
        space, width = parse_space(text)
        report(bench_space(space, width, args), args)
    print(f"\nmachine load (1 min): {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    if load_start > 1.0:
        print("(the machine was busy: the scores are lower bounds of a quiet machine's)")


if __name__ == "__main__":
    main()
