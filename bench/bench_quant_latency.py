"""Latency lookup tables per (layer, precision) in ONNX Runtime against quantized exports.

Build the ONNX Runtime lookup table of ``tiny+q8-32b`` here (batch 1, ``--threads`` threads,
10 classes): every distinct layer at every precision, an int8 layer exported and quantized as
:func:`nas.export_quantized` deploys it (:mod:`nas.hardware.quantized`). Then time
``--pairs`` random (architecture, policy) pairs end to end: each exported with
``export_quantized`` (a randomly initialised supernet, calibrated on ``--calibration-images``
MNIST training images, or random ones with ``--random-calibration``) and timed in ONNX
Runtime. The lookup table's correction is fitted on the first half and scored on the other
half. Goal: Kendall tau >= 0.9 and MAPE <= 10% (corrected, hold-out).

The second table is the int8/fp32 latency ratio per layer kind (each int8 entry against the
same layer's float32 entry, geometric mean over the layers of that kind), and the end-to-end
ratio of the all-int8 against the all-float32 subnets among the pairs: whether int8 is faster
on this CPU.

Usage:
    python bench/bench_quant_latency.py [--pairs 50] [--repeats 50] [--rounds 2]
    python bench/bench_quant_latency.py --pairs 8 --repeats 10 --rounds 1   # a smoke run
    python bench/bench_quant_latency.py --save-table t.json; ... --table t.json  # reuse it
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

import nas
from nas.hardware import build_lookup_table, measure_subnets
from nas.quantization import policy_of
from nas.quantization.layers import BITS, bits_of
from nas.registry import REGISTRY
from nas.rundir import atomic_write_json, atomic_write_text, read_json
from nas.scores import scores
from predictors import create_predictor

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "mnist_png.zip"
SPACE = "tiny+q8-32b"
NUM_CLASSES = 10
GOAL_TAU, GOAL_MAPE = 0.9, 10.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=50, help="(arch, policy) pairs timed end to end")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=50, help="timed runs per layer and subnet")
    p.add_argument("--rounds", type=int, default=2,
                   help="sweeps over layers and subnets, each in a new order (min over them)")
    p.add_argument("--statistic", default="min_ms", choices=["median_ms", "min_ms"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data", default=str(MNIST))
    p.add_argument("--calibration-images", type=int, default=64)
    p.add_argument("--random-calibration", action="store_true",
                   help="calibrate the exports on random images instead of MNIST")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--partial", default="runs/bench_quant_latency.partial.json",
                   help="resume file of the layer table")
    p.add_argument("--table", default=None,
                   help="a table JSON written by --save-table: reuse it instead of building")
    p.add_argument("--save-table", default=None, help="write the layer table here (JSON)")
    p.add_argument("--csv", default=None,
                   help="write each pair's arch, int8 share, measured and predicted ms here")
    return p


def _calibration(args: argparse.Namespace) -> Any:
    if args.random_calibration:
        return None  # measure_subnets' default: random images
    from nas.data import load_image_folder

    return load_image_folder(args.data, "train", limit=args.calibration_images)


def _pairs(space: Any, n: int, seed: int) -> list[Any]:
    """``n`` random pairs, two of them the largest subnet all-int8 and all-float32 (for the
    end-to-end ratio), shuffled so both halves mix policies."""
    rng = np.random.default_rng(seed)
    archs = space.sample_many(n, rng)
    bits = [n for n in space.names if n.endswith(".bits")]
    for i, b in enumerate((8, 32)[: min(2, n)]):
        archs[i] = space.arch({**space.largest().to_dict(), **{d: b for d in bits}})
    return [archs[i] for i in rng.permutation(n)]


def _kind(spec: Any) -> str:
    return (f"{spec.kind} k{spec.kernel} s{spec.stride} {spec.act} se{int(spec.se)}"
            f"{' no-expand' if spec.mid_channels == spec.in_channels else ''}")


def _ratios(space: Any, table: dict[str, float]) -> list[tuple[str, int, float, float, float]]:
    """Per layer kind: (kind, n, geometric mean, min, max) of int8 / float32 latency."""
    layers = REGISTRY.entry(space.name).layers
    assert layers is not None
    specs = {s.key: s for a in space.sample_many(400, np.random.default_rng(1))
             for s in layers(space, a, NUM_CLASSES)}
    by_kind: dict[str, list[float]] = defaultdict(list)
    for key, spec in specs.items():
        float_key = key.removesuffix(f"|{BITS}=8")
        if bits_of(spec) == 8 and key in table and float_key in table:
            by_kind[_kind(spec)].append(table[key] / table[float_key])
    return [(k, len(v), float(np.exp(np.mean(np.log(v)))), min(v), max(v))
            for k, v in sorted(by_kind.items())]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # onnxruntime.quantization warns on the root logger for every model it quantizes
    logging.basicConfig(level=logging.ERROR)
    space = nas.create_space(SPACE)
    timing = {"runtime": "onnxruntime", "threads": args.threads, "warmup": args.warmup,
              "repeats": args.repeats, "rounds": args.rounds, "num_classes": NUM_CLASSES}
    started = time.perf_counter()
    if args.table:
        table = {str(k): float(v) for k, v in read_json(args.table).items()}
    else:
        results = build_lookup_table(space, partial_path=args.partial, **timing)
        table = {k: v[args.statistic] for k, v in results.items()}
        Path(args.partial).unlink(missing_ok=True)
    if args.save_table:
        atomic_write_json(args.save_table, table)
    built = time.perf_counter() - started

    archs = _pairs(space, args.pairs, args.seed)
    started = time.perf_counter()
    rows = measure_subnets(space, archs, calibration=_calibration(args), seed=args.seed,
                           **timing)
    timed = time.perf_counter() - started
    measured = np.array([r[args.statistic] for r in rows])

    half = len(archs) // 2
    raw = create_predictor("lut", space=space, table=table, num_classes=NUM_CLASSES)
    fitted = create_predictor("lut", space=space, table=table, num_classes=NUM_CLASSES)
    fitted.fit(archs[:half], measured[:half])
    uncorrected = scores(measured[half:], raw.predict(archs[half:]))
    uncorrected_all = scores(measured, raw.predict(archs))
    corrected = scores(measured[half:], fitted.predict(archs[half:]))
    ok = corrected["kendall_tau"] >= GOAL_TAU and corrected["mape"] <= GOAL_MAPE
    if args.csv:
        _write_csv(args.csv, space, archs, measured, raw.predict(archs), fitted.predict(archs),
                   half)

    int8 = sum(f"|{BITS}=8" in k for k in table)
    print(f"space {SPACE}, ONNX Runtime {_ort_version()}, {platform.processor() or 'cpu'}, "
          f"batch 1, {args.threads} thread(s), {args.statistic} of {args.rounds} x "
          f"{args.repeats} runs; {len(table)} layers ({int8} int8) timed in {built:.0f} s, "
          f"{len(archs)} exported subnets in {timed:.0f} s")
    print(f"\n{'scored on':<28}{'n':>4}{'kendall_tau':>13}{'spearman':>10}{'MAPE %':>9}")
    for label, n, s in (("uncorrected, all", len(archs), uncorrected_all),
                        ("uncorrected, hold-out", len(archs) - half, uncorrected),
                        ("corrected, hold-out", len(archs) - half, corrected)):
        print(f"{label:<28}{n:>4}{s['kendall_tau']:>13.3f}{s['spearman']:>10.3f}"
              f"{s['mape']:>9.1f}")
    print(f"goal tau >= {GOAL_TAU}, MAPE <= {GOAL_MAPE}% (corrected, hold-out): "
          f"{'met' if ok else 'NOT met'}")
    print(f"\n{'layer kind (int8 / fp32)':<40}{'n':>4}{'geomean':>9}{'min':>7}{'max':>7}  "
          "int8 faster?")
    for kind, n, mean, low, high in _ratios(space, table):
        print(f"{kind:<40}{n:>4}{mean:>9.2f}{low:>7.2f}{high:>7.2f}  "
              f"{'yes' if mean < 1 else 'no'}")
    _print_end_to_end(space, archs, measured)
    return 0 if ok else 1


def _print_end_to_end(space: Any, archs: list[Any], measured: np.ndarray) -> None:
    """Whole subnets by the int8 share of their blocks; the largest all-int8 / all-fp32."""
    share = np.array([np.mean([b < 32 for b in policy_of(space, a).values()]) for a in archs])
    print(f"\n{'whole subnets by int8 share of blocks':<40}{'n':>4}{'mean ms':>9}")
    for low, high in ((0.0, 0.0), (1e-9, 0.5), (0.5 + 1e-9, 0.999), (1.0, 1.0)):
        pick = (share >= low) & (share <= high)
        if pick.any():
            label = f"{low:.0%}" if low == high else f"({low:.0%}, {high:.0%}]"
            print(f"{label:<40}{int(pick.sum()):>4}{measured[pick].mean():>9.4f}")
    largest = space.largest().to_dict()
    ms = {s: measured[i] for i, (a, s) in enumerate(zip(archs, share))
          if s in (0.0, 1.0) and all(a[k] == v for k, v in largest.items()
                                     if not k.endswith(".bits"))}
    if len(ms) == 2:
        ratio = ms[1.0] / ms[0.0]
        print(f"largest subnet, all-int8 / all-fp32 end to end: {ms[1.0]:.4f} / {ms[0.0]:.4f} "
              f"ms = {ratio:.2f} ({'int8 faster' if ratio < 1 else 'int8 slower'} on this CPU)")


def _write_csv(path: str, space: Any, archs: list[Any], measured: np.ndarray, raw: np.ndarray,
               corrected: np.ndarray, half: int) -> None:
    import pandas as pd

    share = [np.mean([b < 32 for b in policy_of(space, a).values()]) for a in archs]
    frame = pd.DataFrame({"arch": [a.to_json() for a in archs], "int8_share": share,
                          "fit": [i < half for i in range(len(archs))], "measured_ms": measured,
                          "lut_sum_ms": raw, "corrected_ms": corrected})
    atomic_write_text(path, frame.to_csv(index=False))


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


if __name__ == "__main__":
    raise SystemExit(main())
