"""Search a GPT space end to end for (perplexity, latency), through ``nas.flow``.

1. trains a ``gpt_tiny`` supernet (sandwich rule, AdamW) on the embedded ``pydoc`` corpus
   (byte-level, 256-token vocabulary);
2. measures the perplexity of ``--samples`` random subnets (default 200) on the held-out text;
3. fits the perplexity predictor on the first half and prints Kendall τ on the other half
   (goal >= 0.8), then refits it on all of them for the search (``predictors/``);
4. builds this machine's lookup-table latency profile of the space (torch, batch 1, 1 thread,
   ``--seq-len`` 128 tokens), fits its whole-network correction on ``--validate`` subnets
   timed end to end and prints its held-out score;
5. searches (perplexity, latency) with ``search_run`` under a latency limit of ``--fraction``
   (default 50 %) of the largest subnet's predicted latency, exports the chosen subnet with
   its perplexity *measured*, writes the report (``report.html``; the Pareto front's PNG is
   ``search/<profile>/pareto.png``) and prints the chosen subnet next to the largest, both
   measured (perplexity on the held-out text, latency end to end).

Run (final):  OMP_NUM_THREADS=1 python bench/bench_gpt_search.py --out runs/bench_gpt
Smoke:        python bench/bench_gpt_search.py --epochs 1 --limit 400 --samples 24 \\
                  --validate 8 --budget 24 --layer-rounds 1 --subnet-rounds 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import nas
from nas import flow
from nas.devices import DevicePlan
from nas.hardware import load_profile, measure_subnets
from nas.predictor import create_predictor, latency_predictor
from nas.rundir import RunDir
from nas.scores import scores
from nas.tasks.base import DataSpec

PROFILE = "here"


def train(run_dir: Path, args: argparse.Namespace) -> RunDir:
    """Step 1: the supernet (see the module doc)."""
    data = DataSpec(data="pydoc", seq_len=args.train_seq_len, limit=args.limit)
    config = nas.TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             optimizer="adamw", weight_decay=0.01, label_smoothing=0.0,
                             num_random=2, seed=args.seed)
    result = flow.train(run_dir, args.space, data=data, config=config)
    final = {k: round(v["perplexity"], 2) for k, v in result.final.items()}
    print(f"trained {args.space}: {args.epochs} epochs, {result.steps} steps on pydoc in "
          f"{result.seconds:.0f} s; validation perplexity {final}")
    return RunDir.open(run_dir)


def collect(run: RunDir, args: argparse.Namespace) -> None:
    """Step 2: ``--samples`` distinct random subnets measured (repeats drawn again)."""
    have, seed = 0, args.seed
    while have < args.samples and seed < args.seed + 10:
        n = args.samples if seed == args.seed else args.samples - have
        have = len(flow.collect_samples(run, n=n, bn_batches=0, seed=seed).archs)
        seed += 1


def predictor_holdout(run: RunDir, args: argparse.Namespace) -> dict[str, float]:
    """Step 3: fit on the first half of the samples, score on the second half."""
    samples = run.read_samples("perplexity", columns=["perplexity"])
    archs, y = samples.archs[: args.samples], samples.values("perplexity")[: args.samples]
    half = len(archs) // 2
    model = create_predictor(args.predictor, space=run.space).fit(archs[:half], y[:half])
    held = scores(y[half:], np.asarray(model.predict(archs[half:]), dtype=float))
    flow.fit_predictor(run, predictor=args.predictor)
    return {**held, "n_train": float(half), "n_test": float(len(archs) - half),
            "ppl_min": float(y.min()), "ppl_max": float(y.max())}


def profile(run: RunDir, args: argparse.Namespace) -> tuple[flow.Timing, dict[str, Any]]:
    """Step 4: the latency lookup table here, and its corrected held-out score."""
    timing = flow.Timing(num_classes=256, seq_len=args.seq_len, warmup=1, repeats=args.repeats,
                         rounds=args.layer_rounds, min_time_ms=args.min_time_ms,
                         clock=args.clock, statistic=args.statistic)
    path = flow.build_profile(run.space, PROFILE, out=run.subdir("profiles"), timing=timing)
    whole = replace(timing, rounds=args.subnet_rounds, repeats=1, warmup=2)
    check = flow.validate_profile(run.space, path, n=args.validate, seed=1, fit_correction=True,
                                  timing=whole)
    return timing, check


def search(run: RunDir, args: argparse.Namespace) -> tuple[Any, float]:
    """Step 5: the search under ``--fraction`` of the largest subnet's predicted latency."""
    latency = latency_predictor(load_profile(run.profile_location(PROFILE)), run.space)
    largest_ms = float(latency.predict([run.space.largest()])[0])
    limit = args.fraction * largest_ms
    plan = DevicePlan(searcher=args.searcher, budget=args.budget, seed=args.seed,
                      constraints={PROFILE: {"latency_ms": limit}})
    results = flow.search_run(run, [PROFILE], plan, accuracy="predicted", parallel=False)
    return results[PROFILE], limit


def measured(run: RunDir, archs: list[nas.ArchConfig], timing: flow.Timing,
             args: argparse.Namespace) -> list[dict[str, float]]:
    """Perplexity (held-out text) and end-to-end latency of ``archs``, measured here."""
    from nas.evaluation import evaluate

    supernet = flow.load_supernet(run)
    train_data, val_data = run.task.load(run.data_spec())
    ppl = evaluate(supernet, archs, val_data, bn_data=train_data, n_bn_batches=0,
                   task=run.task)
    rows = measure_subnets(run.space, archs, num_classes=256, seq_len=args.seq_len, warmup=2,
                           repeats=1, rounds=args.subnet_rounds, clock=args.clock)
    return [{"perplexity": float(p["perplexity"]), "latency_ms": float(r[args.statistic])}
            for p, r in zip(ppl, rows)]


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    run_dir = Path(args.out or tempfile.mkdtemp(prefix="bench_gpt_")) / "run"
    started = time.perf_counter()
    run = train(run_dir, args)
    collect(run, args)
    held = predictor_holdout(run, args)
    print(f"perplexity predictor ({args.predictor}) fitted on {held['n_train']:.0f} subnets, "
          f"scored on the other {held['n_test']:.0f}: kendall_tau {held['kendall_tau']:.3f} "
          f"(goal >= 0.8), spearman {held['spearman']:.3f}; measured perplexity "
          f"{held['ppl_min']:.2f}-{held['ppl_max']:.2f}")
    timing, check = profile(run, args)
    for label in ("uncorrected", "corrected_holdout"):
        s = check[label]
        print(f"latency table {label:<18} kendall_tau {s['kendall_tau']:.3f}  "
              f"mape {s['mape']:.1f}%  ({args.validate} subnets timed end to end)")
    result, limit = search(run, args)
    paths = flow.export_chosen(run, results={PROFILE: result}, top_k=0, measure=True,
                               formats=("torch",))
    flow.write_report(run.path)
    chosen = result.chosen(0)
    if not chosen:
        print(f"no feasible subnet under {limit:.3f} ms")
        return
    rows = measured(run, [chosen[0], run.space.largest()], timing, args)
    export = json.loads((paths[0] / "metrics.json").read_text())
    report(args, result, chosen[0], rows, export, limit)
    print(f"run {run.path} (report.html, search/{PROFILE}/pareto.png); "
          f"{time.perf_counter() - started:.0f} s in all")


def report(args: argparse.Namespace, result: Any, arch: nas.ArchConfig,
           rows: list[dict[str, float]], export: dict[str, Any], limit: float) -> None:
    """Print the chosen subnet next to the largest."""
    mine, big = rows
    counts = nas.count(nas.create_space(args.space), arch, 256, seq_len=args.seq_len)
    print(f"search: {args.searcher}, {len(result.archs)} trials, latency limit {limit:.3f} ms "
          f"({100 * args.fraction:.0f} % of the largest's predicted)")
    print(f"chosen {arch.key}: {json.dumps(dict(arch.to_dict()))}")
    print(f"  params {counts['params']:,}, MACs per {args.seq_len}-token sequence "
          f"{counts['macs']:,}")
    print(f"  perplexity predicted {export.get('perplexity_predicted', float('nan')):.3f}, "
          f"measured {export.get('perplexity_measured', float('nan')):.3f} (export), "
          f"{mine['perplexity']:.3f} (re-measured)")
    share = 100 * mine["latency_ms"] / big["latency_ms"]
    print(f"  latency predicted {export.get('latency_ms_predicted', float('nan')):.3f} ms, "
          f"measured {mine['latency_ms']:.3f} ms = {share:.0f} % of the largest's measured "
          f"{big['latency_ms']:.3f} ms")
    print(f"largest: perplexity measured {big['perplexity']:.3f}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="gpt_tiny")
    p.add_argument("--out", default="", help="folder for the run (default: a temp folder)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--limit", type=int, default=None, help="training windows (default: all)")
    p.add_argument("--train-seq-len", type=int, default=64, help="tokens per training window")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--samples", type=int, default=200, help="subnets measured for the predictor")
    p.add_argument("--predictor", default="rf")
    p.add_argument("--seq-len", type=int, default=128, help="tokens per sequence, for latency")
    p.add_argument("--repeats", type=int, default=2, help="runs per layer and round")
    p.add_argument("--layer-rounds", type=int, default=8)
    p.add_argument("--min-time-ms", type=float, default=2.0)
    p.add_argument("--subnet-rounds", type=int, default=10)
    p.add_argument("--validate", type=int, default=40, help="subnets for the correction")
    p.add_argument("--statistic", default="min_ms", choices=["min_ms", "median_ms"])
    p.add_argument("--clock", default="thread_cpu", choices=["thread_cpu", "wall"])
    p.add_argument("--searcher", default="evolution")
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--fraction", type=float, default=0.5, help="latency limit / largest's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


if __name__ == "__main__":
    main()
