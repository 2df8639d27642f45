"""4-bit (and 8-bit) weight-only quantization of a GPT space: fake quantization vs ONNX Runtime.

1. trains a ``gpt_tiny`` supernet (sandwich rule, AdamW, lr 3e-3) on the embedded ``pydoc``
   corpus (byte-level, 256 tokens, windows of ``--seq-len`` 128); the last 10 % of the text
   is the validation split;
2. for the smallest, a middle and the largest subnet x the policies all-32, all-8, all-4 and
   a mixed one (even layers 8 bits, odd layers 4) of ``gpt_tiny+q4-8-32b``, prints:
   validation perplexity under fake quantization in the supernet (``nas.evaluate``), the
   perplexity of the exported model (:func:`nas.export_quantized`: ``MatMulNBits`` for
   exactly the policy's linear layers) in ONNX Runtime on the same windows, their relative
   gap (goal <= 2 %), ONNX Runtime latency (batch 1, ``--seq-len`` tokens, 1 thread, median
   of ``--repeats``), ``size_bytes`` (counted) and the ONNX file's bytes;
3. prints int4 / float32 and int8 / float32 latency ratios per subnet.

Latencies are only meaningful on an otherwise idle machine.

Run (final):  OMP_NUM_THREADS=1 python bench/bench_quant_int4.py
Smoke:        python bench/bench_quant_int4.py --epochs 1 --limit 200 --val-windows 16 \\
                  --repeats 5
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import nas
from nas.data import eval_batches
from nas.hardware.measure import measure_onnx
from nas.quantization.onnx_quant import run_session
from nas.tasks.base import DataSpec
from nas.train import TrainConfig, train_supernet

SPACE = "gpt_tiny+q4-8-32b"
GOAL_PERCENT = 2.0
VOCAB = 256


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--limit", type=int, default=None, help="windows of the corpus to use")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--val-windows", type=int, default=None, help="default: all of them")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the rows here")
    return p


def _subnets(space: nas.SearchSpace) -> dict[str, nas.ArchConfig]:
    """Smallest, middle (every dimension at its middle value) and largest, all float."""
    smallest, largest = space.smallest().to_dict(), space.largest().to_dict()
    middle = {c.name: c.values[len(c.values) // 2] for c in space.choices}
    return {name: space.arch(values) for name, values in
            (("smallest", smallest), ("middle", middle), ("largest", largest))}


def _policies(space: nas.SearchSpace, arch: nas.ArchConfig) -> dict[str, nas.ArchConfig]:
    depth = int(arch["depth"])
    bits = [f"l{i}.bits" for i in range(depth)]
    mixed = {b: 8 if i % 2 == 0 else 4 for i, b in enumerate(bits)}
    return {"fp32": arch.replace(space, **dict.fromkeys(bits, 32)),
            "int8": arch.replace(space, **dict.fromkeys(bits, 8)),
            "int4": arch.replace(space, **dict.fromkeys(bits, 4)),
            "mixed": arch.replace(space, **mixed)}


def _ort_perplexity(path: Path, data: Any) -> float:
    total, n = 0.0, 0
    for x, y in eval_batches(data, 16):
        logits = torch.from_numpy(run_session(path, x.numpy(), threads=1))
        total += float(F.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction="sum"))
        n += y.numel()
    return math.exp(min(total / n, 50.0))


def _measure(supernet: Any, arch: Any, val: Any, args: Any, tmp: Path) -> dict[str, Any]:
    fake = nas.evaluate(supernet, [arch], val, n_bn_batches=0, batch_size=16)[0]["perplexity"]
    out = nas.export_quantized(supernet, arch, tmp / arch.key, None)
    info = json.loads((out / "arch.json").read_text())["quantization"]
    ort = _ort_perplexity(out / "model.onnx", val)
    ids = np.random.default_rng(0).integers(0, VOCAB, (1, args.seq_len)).astype(np.int64)
    latency = measure_onnx(out / "model.onnx", ids, warmup=args.warmup, repeats=args.repeats,
                           threads=1).median_ms
    return {"fake_ppl": fake, "ort_ppl": ort, "gap_percent": 100 * abs(ort - fake) / fake,
            "latency_ms": latency, "size_bytes": info["size_bytes"],
            "onnx_bytes": info["onnx_bytes"], "matmul_nbits": len(info["quantized_nodes"])}


def _print(rows: list[dict[str, Any]], header: str) -> None:
    print(header)
    cols = ("subnet", "policy", "fake_ppl", "ort_ppl", "gap%", "lat_ms", "size_B", "onnx_B",
            "nbits")
    print(("{:<10}{:<8}" + "{:>10}" * 7).format(*cols))
    for r in rows:
        print(("{:<10}{:<8}" + "{:>10.3f}" * 2 + "{:>10.4f}" + "{:>10.3f}" + "{:>10}" * 3).format(
            r["subnet"], r["policy"], r["fake_ppl"], r["ort_ppl"], r["gap_percent"],
            r["latency_ms"], r["size_bytes"], r["onnx_bytes"], r["matmul_nbits"]))
    gaps = [r["gap_percent"] for r in rows]
    ok = sum(g <= GOAL_PERCENT for g in gaps)
    print(f"|ORT - fake| / fake perplexity: max {max(gaps):.3f} %; {ok}/{len(rows)} within "
          f"{GOAL_PERCENT} % -> {'GOAL MET' if ok == len(rows) else 'GOAL MISSED'}")
    print(f"{'subnet':<10}{'int4/fp32':>11}{'int8/fp32':>11}{'mixed/fp32':>12}  (latency; size)")
    for subnet in dict.fromkeys(r["subnet"] for r in rows):
        by = {r["policy"]: r for r in rows if r["subnet"] == subnet}
        lat = [by[p]["latency_ms"] / by["fp32"]["latency_ms"] for p in ("int4", "int8", "mixed")]
        size = [by[p]["size_bytes"] / by["fp32"]["size_bytes"] for p in ("int4", "int8", "mixed")]
        print(f"{subnet:<10}{lat[0]:>11.2f}{lat[1]:>11.2f}{lat[2]:>12.2f}  "
              f"size {size[0]:.2f} / {size[1]:.2f} / {size[2]:.2f}")


def main() -> None:
    args = _parser().parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    task = nas.create_task("language_modelling")
    train, val = task.load(DataSpec(data="pydoc", seq_len=args.seq_len, limit=args.limit,
                                    val_fraction=0.1))
    if args.val_windows is not None and args.val_windows < len(val):
        val.indices = val.indices[: args.val_windows]
    supernet: Any = nas.create_supernet(SPACE, num_classes=VOCAB)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer="adamw", weight_decay=0.01, label_smoothing=0.0,
                         num_random=2, seed=args.seed, eval_max_batches=2,
                         checkpoint_every=100_000)
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        result = train_supernet(supernet, train, val, config, Path(tmp) / "run", task=task)
        trained = time.perf_counter() - t0
        supernet.eval()
        space = supernet.space
        for name, arch in _subnets(space).items():
            for policy, parch in _policies(space, arch).items():
                rows.append({"subnet": name, "policy": policy,
                             **_measure(supernet, parch, val, args, Path(tmp))})
    _print(rows, f"space {SPACE}, pydoc {len(train)} train / {len(val)} val windows of "
                 f"{args.seq_len} tokens, {args.epochs} epochs ({result.steps} steps, "
                 f"{trained:.0f} s), MatMulNBits block 32 asymmetric, accuracy_level unset; "
                 f"{time.perf_counter() - t0 - trained:.0f} s measuring")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
