"""Joint architecture x quantization-policy search against quantize-after (issue 14).

Train one quantized supernet on MNIST (``../shared/data/images/mnist_png.zip``, read in place):
``--space tiny`` is ``tiny+q8-32b`` (a MobileNetV3-style CNN, static int8 QDQ per block),
``--space vit_mini`` is ``vit_mini+q4-8-32b`` (a ViT, weight-only ``MatMulNBits`` int4/int8
per transformer layer). Its weights serve the float space too: a float arch is the quantized
space's arch with every block at 32 bits. Then, at the same budget of evaluations and with the
same searcher:

* **joint**: search the quantized space for accuracy (max; fake-quantized by the policy in the
  supernet, BN recalibrated where there is BN, on a validation split held out of the training
  images) and latency (min);
* **(b) architecture-only**: search the float space (float accuracy, float32 latency), then
  quantize its pick (the fastest within 0.5 pt of the largest float32 subnet) fully INT8;
* **(a)**: the largest subnet fully INT8.

Latency while searching: ``--latency measured`` exports every evaluated (arch, policy) with
:func:`nas.export_quantized` and times it in ONNX Runtime (batch 1, 1 thread); ``--latency lut``
(the default) uses a lookup table of the quantized space built here in ONNX Runtime, its
correction fitted on ``--lut-validate`` exported subnets (its all-32 entries time the float
archs). Final numbers
are all measured here on exported models in ONNX Runtime (batch 1, 1 thread) on the MNIST test
split: each search's front and its ``--pool`` most accurate trials are exported (joint: with
their policy; (b): float32 to pick, then the pick and every front member fully INT8); each pick
is the fastest candidate within 0.5 pt of the largest float32 subnet's test accuracy (else the
most accurate, marked), and the hypervolumes in (accuracy, latency) of the joint front and of
(b)'s front fully INT8 share one reference point (1 pt below the least accurate, 1.1x the
slowest of them). Goals: joint pick >= 2x faster than (a), joint front's hypervolume
strictly larger than (b)'s.

Usage:
    python bench/bench_quant_search.py [--space tiny|vit_mini] [--epochs 2]
        [--train-limit 12000] [--budget 120] [--latency lut|measured] [--pool 5]
        [--json rows.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from quant_common import MNIST, RECIPES, onnx_accuracy, quantized_space, train_config

import nas
from nas.data import SubsetData, load_image_folder
from nas.evaluation import recalibrate_bn
from nas.hardware import measure_onnx
from nas.quantization import export_quantized, policy_of
from nas.search.pareto import hypervolume
from nas.train import train_supernet

WITHIN = 0.5  # accuracy points below the largest float32 subnet a pick may be
Metrics = list[dict[str, float]]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--space", default="tiny", choices=sorted(RECIPES))
    p.add_argument("--data", default=str(MNIST))
    p.add_argument("--epochs", type=int, default=None, help="default: the space's recipe")
    p.add_argument("--train-limit", type=int, default=12000)
    p.add_argument("--val-images", type=int, default=2000,
                   help="validation images (held out of the training images) while searching")
    p.add_argument("--test-limit", type=int, default=None, help="default: the whole test split")
    p.add_argument("--budget", type=int, default=120, help="evaluations per search")
    p.add_argument("--searcher", default="nsga2")
    p.add_argument("--batch-size", type=int, default=12, help="archs per search batch")
    p.add_argument("--latency", choices=("lut", "measured"), default="lut")
    p.add_argument("--lut-validate", type=int, default=30,
                   help="exported subnets the lookup table's correction is fitted on")
    p.add_argument("--pool", type=int, default=5,
                   help="the picks choose among each search's front and its POOL most "
                   "accurate trials (measured on the test split in ONNX Runtime)")
    p.add_argument("--bn-batches", type=int, default=None,
                   help="BN recalibration batches (default 10; 0 for a space without BN)")
    p.add_argument("--repeats", type=int, default=30,
                   help="ONNX Runtime timing repeats while searching (and of the table)")
    p.add_argument("--final-repeats", type=int, default=200,
                   help="ONNX Runtime timing repeats of the final measurements")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write the rows here")
    return p


def _with_bits(qspace: nas.SearchSpace, arch: nas.ArchConfig, bits: int) -> nas.ArchConfig:
    """``arch`` (of the float or the quantized space) in the quantized space, every block at
    ``bits``."""
    values = {k: v for k, v in arch.to_dict().items()}
    values.update({n: bits for n in qspace.names if n.endswith(".bits")})
    return qspace.arch(values)


class Bench:
    """The trained supernet, the data, and the ONNX Runtime measurements (cached by arch)."""

    def __init__(self, supernet: Any, train: Any, val: Any, test: Any, args: Any,
                 tmp: Path) -> None:
        self.supernet, self.train, self.val, self.test = supernet, train, val, test
        self.args, self.tmp, self.task = args, tmp, nas.create_task("classification")
        self.space: nas.SearchSpace = supernet.space
        self._latency: dict[str, float] = {}
        self._final: dict[str, dict[str, Any]] = {}

    def accuracy(self, archs: list[nas.ArchConfig]) -> list[float]:
        """Validation accuracy, fake-quantized by each arch's policy (BN recalibrated)."""
        rows = nas.evaluate(self.supernet, archs, self.val, bn_data=self.train,
                            n_bn_batches=self.args.bn_batches, task=self.task)
        return [r["accuracy"] for r in rows]

    def _export(self, arch: nas.ArchConfig, recalibrate: bool) -> Path:
        if recalibrate and self.args.bn_batches:
            self.supernet.set_active(arch)
            recalibrate_bn(self.supernet, self.train, self.args.bn_batches,
                           resolution=self._resolution(arch), task=self.task)
            self.supernet.eval()
        return export_quantized(self.supernet, arch, self.tmp / arch.key, self.train,
                                task=self.task)

    def _resolution(self, arch: nas.ArchConfig) -> int:
        return int(self.supernet.input_resolution(arch))

    def _time(self, out: Path, arch: nas.ArchConfig, repeats: int) -> float:
        x = self.supernet.example_input(arch, batch=1)
        return measure_onnx(out / "model.onnx", x, threads=1, repeats=repeats,
                            warmup=5).median_ms

    def measured_latency(self, archs: list[nas.ArchConfig]) -> list[float]:
        """Each arch exported with its policy and timed in ONNX Runtime (cached)."""
        for arch in archs:
            if arch.key not in self._latency:
                self._latency[arch.key] = self._time(self._export(arch, False), arch,
                                                     self.args.repeats)
        return [self._latency[a.key] for a in archs]

    def final(self, arch: nas.ArchConfig) -> dict[str, Any]:
        """Test accuracy, latency and size of ``arch`` exported and run in ONNX Runtime."""
        if arch.key not in self._final:
            out = self._export(arch, True)
            info = json.loads((out / "arch.json").read_text())["quantization"]
            policy = policy_of(self.space, arch)
            self._final[arch.key] = {
                "key": arch.key, "policy": ",".join(map(str, policy.values())),
                "accuracy": onnx_accuracy(out / "model.onnx", self.test, self._resolution(arch),
                                          self.task, threads=self.args.threads),
                "latency_ms": self._time(out, arch, self.args.final_repeats),
                "size_bytes": int(info["size_bytes"]),
                "arch": arch.to_json()}
        return self._final[arch.key]


def _lut(qspace: nas.SearchSpace, args: Any, tmp: Path) -> Callable[[list], list[float]]:
    """Latency from a lookup table of ``qspace`` built here in ONNX Runtime, corrected."""
    from nas.flow import Timing, build_profile, validate_profile
    from nas.hardware import load_profile
    from nas.predictor import latency_predictor

    timing = Timing(runtime="onnxruntime", num_classes=10, repeats=args.repeats)
    path = build_profile(qspace, "bench_quant_search", out=tmp, timing=timing)
    validate_profile(qspace, path, n=args.lut_validate, fit_correction=True, timing=timing)
    predictor: Any = latency_predictor(load_profile(path), qspace)
    return lambda archs: [float(v) for v in np.asarray(
        predictor.predict_indices(qspace.indices(archs)), dtype=np.float64).reshape(-1)]


def _search(space: nas.SearchSpace, to_q: Callable[[nas.ArchConfig], nas.ArchConfig],
            bench: Bench, latency: Callable[[list], list[float]], args: Any) -> Any:
    def evaluate(archs: list[nas.ArchConfig]) -> Metrics:
        qarchs = [to_q(a) for a in archs]
        return [{"accuracy": acc, "latency_ms": lat}
                for acc, lat in zip(bench.accuracy(qarchs), latency(qarchs))]

    return nas.search(space, evaluate, objectives={"accuracy": "max", "latency_ms": "min"},
                      searcher=args.searcher, budget=args.budget, seed=args.seed,
                      batch_size=args.batch_size)


def _pick(rows: list[dict[str, Any]], floor: float) -> dict[str, Any]:
    """The fastest row with accuracy >= ``floor`` (else the most accurate, flagged)."""
    ok = [r for r in rows if r["accuracy"] >= floor]
    if ok:
        return {**min(ok, key=lambda r: r["latency_ms"]), "within": True}
    return {**max(rows, key=lambda r: r["accuracy"]), "within": False}


def _hv(rows: list[dict[str, Any]], ref: np.ndarray) -> float:
    return hypervolume(np.array([[-r["accuracy"], r["latency_ms"]] for r in rows]), ref)


def _candidates(result: Any, pool: int) -> list[str]:
    """Arch JSON of the front, then of the ``pool`` most accurate trials (no repeats)."""
    top = result.trials.sort_values("accuracy", ascending=False, kind="stable").head(pool)
    return list(dict.fromkeys([*result.pareto["arch"], *top["arch"]]))


def _compare(bench: Bench, joint: Any, float_search: Any, pool: int,
             base: nas.SearchSpace) -> dict[str, Any]:
    space = bench.space
    largest = bench.final(_with_bits(space, space.largest(), 32))
    floor = largest["accuracy"] - WITHIN
    joint_front = [bench.final(space.from_json(a)) for a in joint.pareto["arch"]]
    joint_pool = [bench.final(space.from_json(a)) for a in _candidates(joint, pool)]
    b_pool = [bench.final(_with_bits(space, base.from_json(a), 32))
              for a in _candidates(float_search, pool)]
    b_int8 = [bench.final(_with_bits(space, base.from_json(a), 8))
              for a in float_search.pareto["arch"]]
    b_pick_float = _pick(b_pool, floor)
    b_pick = {**bench.final(_with_bits(space, space.from_json(b_pick_float["arch"]), 8)),
              "within": None}
    rows_all = [*joint_front, *b_int8]
    ref = np.array([-(min(r["accuracy"] for r in rows_all) - 1.0),
                    1.1 * max(r["latency_ms"] for r in rows_all)])
    return {
        "largest_float32": largest, "floor": floor,
        "joint": _pick(joint_pool, floor),
        "a_largest_int8": bench.final(_with_bits(space, space.largest(), 8)),
        "b_float_pick": b_pick_float, "b_int8": b_pick,
        "hv_joint": _hv(joint_front, ref), "hv_b": _hv(b_int8, ref),
        "reference": {"accuracy": float(-ref[0]), "latency_ms": float(ref[1])},
        "joint_front": joint_front, "b_front_int8": b_int8,
    }


def _print(res: dict[str, Any], header: str) -> None:
    print(header)
    print(f"{'subnet':<34}{'policy':<18}{'test acc %':>11}{'latency ms':>12}{'size B':>10}"
          f"{'within':>8}")
    j = res["joint"]
    for label, r in (("largest float32", res["largest_float32"]), ("joint pick", j),
                     ("(a) largest fully INT8", res["a_largest_int8"]),
                     ("(b) arch-only pick, float32", res["b_float_pick"]),
                     ("(b) arch-only pick, fully INT8", res["b_int8"])):
        within = "" if r.get("within") is None else ("yes" if r["within"] else "NO")
        print(f"{label:<34}{r['policy'][:17]:<18}{r['accuracy']:>11.2f}{r['latency_ms']:>12.4f}"
              f"{r['size_bytes']:>10,}{within:>8}")
    print(f"accuracy floor (largest float32 - {WITHIN} pt): {res['floor']:.2f}")
    for name, r in (("(a)", res["a_largest_int8"]), ("(b)", res["b_int8"])):
        print(f"{name}/joint: latency {r['latency_ms'] / j['latency_ms']:.2f}x, "
              f"size {r['size_bytes'] / j['size_bytes']:.2f}x")
    ref = res["reference"]
    print(f"hypervolume (accuracy, latency; reference {ref['accuracy']:.2f} %, "
          f"{ref['latency_ms']:.4f} ms): joint {res['hv_joint']:.4f} "
          f"({len(res['joint_front'])} front members), (b) fully INT8 {res['hv_b']:.4f} "
          f"({len(res['b_front_int8'])})")
    fast = res["a_largest_int8"]["latency_ms"] / j["latency_ms"] >= 2.0 and j["within"]
    print(f"goal >= 2x faster than (a) within {WITHIN} pt: {'MET' if fast else 'MISSED'}; "
          f"goal hypervolume joint > (b): "
          f"{'MET' if res['hv_joint'] > res['hv_b'] else 'MISSED'}")


def main() -> None:
    args = _parser().parse_args()
    recipe = RECIPES[args.space]
    args.epochs = recipe.epochs if args.epochs is None else args.epochs
    if args.bn_batches is None:
        args.bn_batches = 10 if recipe.bn_batches else 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    images = load_image_folder(args.data, "train", limit=args.train_limit + args.val_images,
                               seed=args.seed)
    order = np.random.default_rng(args.seed).permutation(len(images))
    train = SubsetData(images, np.sort(order[args.val_images:]))
    val = SubsetData(images, np.sort(order[:args.val_images]))
    test = load_image_folder(args.data, "test", limit=args.test_limit, seed=args.seed)
    base = nas.create_space(args.space)
    qspace = quantized_space(args.space, granularity="block")
    supernet: Any = nas.create_supernet(qspace.name, num_classes=10)
    config = train_config(args.space, epochs=args.epochs, seed=args.seed,
                          bn_batches=args.bn_batches)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_supernet(supernet, train, val, config, Path(tmp) / "run")
        times = {"train": time.perf_counter() - t0}
        bench = Bench(supernet, train, val, test, args, Path(tmp))
        started = time.perf_counter()
        latency = (_lut(qspace, args, Path(tmp)) if args.latency == "lut"
                   else bench.measured_latency)
        times["latency table"] = time.perf_counter() - started if args.latency == "lut" else 0
        started = time.perf_counter()
        joint = _search(qspace, lambda a: a, bench, latency, args)
        times["joint search"] = time.perf_counter() - started
        started = time.perf_counter()
        floats = _search(base, lambda a: _with_bits(qspace, a, 32), bench, latency, args)
        times["arch-only search"] = time.perf_counter() - started
        started = time.perf_counter()
        res = _compare(bench, joint, floats, args.pool, base)
        times["final ORT measurements"] = time.perf_counter() - started
    total = time.perf_counter() - t0
    _print(res, f"space {qspace.name}, MNIST {len(train)} train / {len(val)} val / {len(test)} "
                f"test, {args.epochs} epochs ({result.steps} steps); {args.searcher}, budget "
                f"{args.budget} each, latency while searching: {args.latency}; ONNX Runtime "
                f"batch 1, 1 thread")
    print("time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items())
          + f"; total {total:.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps({**res, "times_s": times, "total_s": total,
                                               "args": vars(args)}, indent=1))


if __name__ == "__main__":
    main()
