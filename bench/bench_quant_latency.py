"""Latency lookup tables per (layer, precision) in ONNX Runtime against quantized exports.

Build the ONNX Runtime lookup table of ``tiny+q8-32b`` here (batch 1, ``--threads`` threads,
10 classes): every distinct layer at every precision, an int8 layer exported and quantized as
:func:`nas.export_quantized` deploys it (:mod:`nas.hardware.quantized`). Then time
``--pairs`` random (architecture, policy) pairs end to end: each exported with
``export_quantized`` (a randomly initialised supernet, calibrated on ``--calibration-images``
MNIST training images, or random ones with ``--random-calibration``) and timed in ONNX
Runtime. The lookup table's correction is fitted on the first half and scored on the other
half. Goal: Kendall tau >= 0.9 and MAPE <= 10% (corrected, hold-out). The default correction
of a quantized space (``precision``: the table's sum, the layers, the int8 layers and their
runs) is printed beside the plain ``linear`` one (sum and layers).

The second table is the int8/fp32 latency ratio per layer kind (each int8 entry against the
same layer's float32 entry, geometric mean over the layers of that kind), and the end-to-end
ratio of the all-int8 against the all-float32 subnets among the pairs: whether int8 is faster
on this CPU.

``--space tiny+q8-32l`` gives each conv of a block its own bits (``granularity="layer"``): a
block is one entry per combination of its convs' precisions. ``--space vit_mini+q4-8-32b``
does the same for a weight-only ViT space (bits 4, 8, 32): each
transformer block is one entry per precision, its linears ``MatMulNBits`` as
``export_quantized`` writes them; no calibration (weight-only); the ratio tables are per low
precision (int4 / fp32, int8 / fp32).

Usage:
    python bench/bench_quant_latency.py [--pairs 50] [--repeats 50] [--rounds 2]
    python bench/bench_quant_latency.py --pairs 8 --repeats 10 --rounds 1   # a smoke run
    python bench/bench_quant_latency.py --save-table t.json; ... --table t.json  # reuse it
    python bench/bench_quant_latency.py --space vit_mini+q4-8-32b   # weight-only ViT
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
from nas.quantization.layers import BITS, UNIT_BITS, bits_of, key_bits, unit_bits
from nas.quantization.space import QUANT_KEY, weight_only
from nas.registry import REGISTRY
from nas.rundir import atomic_write_json, atomic_write_text, read_json
from nas.scores import scores
from predictors import create_predictor

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "mnist_png.zip"
SPACE = "tiny+q8-32b"
SPACES = (SPACE, "tiny+q8-32l", "vit_mini+q4-8-32b")
NUM_CLASSES = 10
GOAL_TAU, GOAL_MAPE = 0.9, 10.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--space", default=SPACE, choices=SPACES,
                   help="the quantized space (vit_mini+q4-8-32b: weight-only, no calibration)")
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
    p.add_argument("--partial", default=None,
                   help="resume file of the layer table (default: runs/bench_quant_latency"
                   ".partial.json, with the space's name for a space other than tiny+q8-32b)")
    p.add_argument("--table", default=None,
                   help="a table JSON written by --save-table: reuse it instead of building")
    p.add_argument("--save-table", default=None, help="write the layer table here (JSON)")
    p.add_argument("--csv", default=None,
                   help="write each pair's arch, int8 share, measured and predicted ms here")
    return p


def _calibration(args: argparse.Namespace, space: Any) -> Any:
    if args.random_calibration or weight_only(space):
        return None  # measure_subnets' default: random images; weight-only needs none
    from nas.data import load_image_folder

    return load_image_folder(args.data, "train", limit=args.calibration_images)


def _low_bits(space: Any) -> list[int]:
    """The space's precisions below 32 bits (``[8]`` for tiny+q8-32b, ``[4, 8]`` for a ViT)."""
    return [int(b) for b in space.meta[QUANT_KEY]["bits"] if int(b) < 32]


def _pairs(space: Any, n: int, seed: int) -> list[Any]:
    """``n`` random pairs, among them the largest subnet at each low precision throughout and
    all-float32 (for the end-to-end ratios), shuffled so both halves mix policies."""
    rng = np.random.default_rng(seed)
    archs = space.sample_many(n, rng)
    bits = [n for n in space.names if n.endswith(".bits")]
    uniform = (*_low_bits(space), 32)
    for i, b in enumerate(uniform[: min(len(uniform), n)]):
        archs[i] = space.arch({**space.largest().to_dict(), **{d: b for d in bits}})
    return [archs[i] for i in rng.permutation(n)]


def _kind(spec: Any) -> str:
    if spec.kind == "transformer_block":
        return f"{spec.kind} {spec.act} d{spec.in_channels}"
    return (f"{spec.kind} k{spec.kernel} s{spec.stride} {spec.act} se{int(spec.se)}"
            f"{' no-expand' if spec.mid_channels == spec.in_channels else ''}")


def _float_key(key: str) -> str:
    return "|".join(p for p in key.split("|") if not p.startswith((f"{BITS}=", f"{UNIT_BITS}=")))


def _ratios(space: Any, table: dict[str, float],
            bits: int) -> list[tuple[str, int, float, float, float]]:
    """Per layer kind: (kind, n, geometric mean, min, max) of ``bits`` / float32 latency (the
    layers quantized throughout at ``bits``)."""
    layers = REGISTRY.entry(space.name).layers
    assert layers is not None
    specs = {s.key: s for a in space.sample_many(400, np.random.default_rng(1))
             for s in layers(space, a, NUM_CLASSES)}
    by_kind: dict[str, list[float]] = defaultdict(list)
    for key, spec in specs.items():
        float_key = _float_key(key)
        throughout = set(unit_bits(spec).values()) <= {bits}  # no composite tag, or all at bits
        if bits_of(spec) == bits and throughout and key in table and float_key in table:
            by_kind[_kind(spec)].append(table[key] / table[float_key])
    return [(k, len(v), float(np.exp(np.mean(np.log(v)))), min(v), max(v))
            for k, v in sorted(by_kind.items())]


def _label(space: Any) -> str:
    """``int8``, or ``int4/int8`` for a space with several low precisions."""
    return "/".join(f"int{b}" for b in _low_bits(space))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # onnxruntime.quantization warns on the root logger for every model it quantizes
    logging.basicConfig(level=logging.ERROR)
    space = nas.create_space(args.space)
    partial = args.partial or ("runs/bench_quant_latency.partial.json" if args.space == SPACE
                               else f"runs/bench_quant_latency.{args.space}.partial.json")
    timing = {"runtime": "onnxruntime", "threads": args.threads, "warmup": args.warmup,
              "repeats": args.repeats, "rounds": args.rounds, "num_classes": NUM_CLASSES}
    started = time.perf_counter()
    if args.table:
        table = {str(k): float(v) for k, v in read_json(args.table).items()}
    else:
        results = build_lookup_table(space, partial_path=partial, **timing)
        table = {k: v[args.statistic] for k, v in results.items()}
        Path(partial).unlink(missing_ok=True)
    if args.save_table:
        atomic_write_json(args.save_table, table)
    built = time.perf_counter() - started

    archs = _pairs(space, args.pairs, args.seed)
    started = time.perf_counter()
    rows = measure_subnets(space, archs, calibration=_calibration(args, space), seed=args.seed,
                           **timing)
    timed = time.perf_counter() - started
    measured = np.array([r[args.statistic] for r in rows])

    half = len(archs) // 2
    raw = create_predictor("lut", space=space, table=table, num_classes=NUM_CLASSES)
    fitted = create_predictor("lut", space=space, table=table, num_classes=NUM_CLASSES)
    fitted.fit(archs[:half], measured[:half])
    linear = create_predictor("lut", space=space, table=table, num_classes=NUM_CLASSES,
                              correction="linear").fit(archs[:half], measured[:half])
    uncorrected = scores(measured[half:], raw.predict(archs[half:]))
    uncorrected_all = scores(measured, raw.predict(archs))
    corrected = scores(measured[half:], fitted.predict(archs[half:]))
    corrected_linear = scores(measured[half:], linear.predict(archs[half:]))
    ok = corrected["kendall_tau"] >= GOAL_TAU and corrected["mape"] <= GOAL_MAPE
    if args.csv:
        _write_csv(args.csv, space, archs, measured, raw.predict(archs), fitted.predict(archs),
                   half)

    low = ", ".join(f"{sum(key_bits(k) == b for k in table)} int{b}" for b in _low_bits(space))
    print(f"space {args.space}, ONNX Runtime {_ort_version()}, {platform.processor() or 'cpu'}, "
          f"batch 1, {args.threads} thread(s), {args.statistic} of {args.rounds} x "
          f"{args.repeats} runs; {len(table)} layers ({low}) timed in {built:.0f} s, "
          f"{len(archs)} exported subnets in {timed:.0f} s")
    print(f"\n{'scored on':<42}{'n':>4}{'kendall_tau':>13}{'spearman':>10}{'MAPE %':>9}")
    default = fitted.config()["correction"]
    rows_scored = [("uncorrected, all", len(archs), uncorrected_all),
                   ("uncorrected, hold-out", len(archs) - half, uncorrected),
                   ("corrected (linear), hold-out", len(archs) - half, corrected_linear),
                   (f"corrected ({default}, default), hold-out", len(archs) - half, corrected)]
    if default == "linear":  # (weight-only tables) one row, not the same one twice
        del rows_scored[2]
    for label, n, s in rows_scored:
        print(f"{label:<42}{n:>4}{s['kendall_tau']:>13.3f}{s['spearman']:>10.3f}"
              f"{s['mape']:>9.1f}")
    print(f"goal tau >= {GOAL_TAU}, MAPE <= {GOAL_MAPE}% (corrected, hold-out): "
          f"{'met' if ok else 'NOT met'}")
    for bits in _low_bits(space):
        print(f"\n{f'layer kind (int{bits} / fp32)':<40}{'n':>4}{'geomean':>9}{'min':>7}"
              f"{'max':>7}  int{bits} faster?")
        for kind, n, mean, lo, high in _ratios(space, table, bits):
            print(f"{kind:<40}{n:>4}{mean:>9.2f}{lo:>7.2f}{high:>7.2f}  "
                  f"{'yes' if mean < 1 else 'no'}")
    _print_end_to_end(space, archs, measured)
    return 0 if ok else 1


def _print_end_to_end(space: Any, archs: list[Any], measured: np.ndarray) -> None:
    """Whole subnets by the low-precision share of their blocks; the largest subnet at each
    low precision throughout against all-fp32."""
    share = np.array([np.mean([b < 32 for b in policy_of(space, a).values()]) for a in archs])
    title = f"whole subnets by {_label(space)} share of blocks"
    width = max(40, len(title) + 1)
    print(f"\n{title:<{width}}{'n':>4}{'mean ms':>9}")
    for low, high in ((0.0, 0.0), (1e-9, 0.5), (0.5 + 1e-9, 0.999), (1.0, 1.0)):
        pick = (share >= low) & (share <= high)
        if pick.any():
            label = f"{low:.0%}" if low == high else f"({low:.0%}, {high:.0%}]"
            print(f"{label:<{width}}{int(pick.sum()):>4}{measured[pick].mean():>9.4f}")
    largest = space.largest().to_dict()
    ms: dict[int, float] = {}
    for a, t in zip(archs, measured):
        uniform = set(policy_of(space, a).values())
        if len(uniform) == 1 and all(a[k] == v for k, v in largest.items()
                                     if not k.endswith(".bits")):
            ms[uniform.pop()] = float(t)
    for b in _low_bits(space):
        if b in ms and 32 in ms:
            ratio = ms[b] / ms[32]
            print(f"largest subnet, all-int{b} / all-fp32 end to end: {ms[b]:.4f} / "
                  f"{ms[32]:.4f} ms = {ratio:.2f} "
                  f"({f'int{b} faster' if ratio < 1 else f'int{b} slower'} on this CPU)")


def _write_csv(path: str, space: Any, archs: list[Any], measured: np.ndarray, raw: np.ndarray,
               corrected: np.ndarray, half: int) -> None:
    import pandas as pd

    share = [np.mean([b < 32 for b in policy_of(space, a).values()]) for a in archs]
    frame = pd.DataFrame({"arch": [a.to_json() for a in archs],
                          f"{_label(space).replace('/', '_')}_share": share,
                          "fit": [i < half for i in range(len(archs))], "measured_ms": measured,
                          "lut_sum_ms": raw, "corrected_ms": corrected})
    atomic_write_text(path, frame.to_csv(index=False))


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


if __name__ == "__main__":
    raise SystemExit(main())
