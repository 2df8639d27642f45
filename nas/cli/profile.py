"""``nas profile build|measure|import|list|show``: hardware profiles and their latency models."""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from nas.cli import UsageError
from nas.hardware.profile import (
    DTYPES,
    KINDS,
    PROFILE_DIR,
    RUNTIMES,
    HardwareProfile,
    LatencyModel,
    Provenance,
    list_profiles,
    load_profile,
    save_profile,
)
from nas.registry import create_space


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``profile`` verb and its sub-commands."""
    p = sub.add_parser(
        "profile",
        help="build, validate, import and list hardware (latency) profiles",
        description="Hardware profiles: per-device latency models with provenance.",
        epilog="example: nas profile build --space ofa_mbv3_w1.0 --name my_cpu --validate 50",
    )
    verbs = p.add_subparsers(dest="profile_verb", metavar="COMMAND")

    b = verbs.add_parser(
        "build",
        help="time every distinct layer of a space here and write a lookup-table profile",
        epilog=(
            "example: nas profile build --space ofa_mbv3_w1.0 --name here_cpu1 --threads 1 "
            "--rounds 3 --clock thread_cpu --statistic min_ms --validate 50"
        ),
    )
    b.add_argument("--space", required=True)
    b.add_argument("--name", required=True, help="profile name (file stem)")
    b.add_argument("--runtime", default="torch", choices=["torch", "onnxruntime"])
    _measure_options(b)
    b.add_argument("--kind", default="cpu", choices=KINDS)
    b.add_argument("--device-name", default="", help="the device in words (default: this CPU)")
    b.add_argument("--validate", type=int, default=0, metavar="N",
                   help="also time N random whole subnets, fit the correction, store the score")
    b.add_argument("--out", default=str(PROFILE_DIR), help="folder to write NAME.json into")
    b.add_argument("--partial", default="",
                   help="resume file (default: runs/profile_build/NAME.partial.json)")
    b.set_defaults(handler=run_build)

    m = verbs.add_parser(
        "measure",
        help="time N random whole subnets end to end and score a profile's predictions",
        epilog="example: nas profile measure --profile here_cpu1 --space ofa_mbv3_w1.0 --n 50",
    )
    m.add_argument("--profile", required=True, help="profile name or JSON path")
    m.add_argument("--space", required=True)
    m.add_argument("--n", type=int, default=50)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--runtime", default="", help="default: the profile's runtime")
    _measure_options(m)
    m.add_argument("--csv", default="", help="write arch keys, measured and predicted ms here")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    m.set_defaults(handler=run_measure)

    i = verbs.add_parser(
        "import",
        help="fit a device's latency model from a table of measured whole architectures",
        epilog=(
            "example: nas profile import --space nb201 --table nb201.csv --arch-columns arch "
            "--latency-column latency_ms_pixel3 --name nb201_pixel3 --kind phone "
            "--device 'Pixel 3' --runtime tflite --source 'HW-NAS-Bench' --licence MIT"
        ),
    )
    i.add_argument("--space", required=True)
    i.add_argument("--table", required=True, help="CSV file")
    i.add_argument("--arch-columns", nargs="+", required=True)
    i.add_argument("--latency-column", required=True, help="latency in milliseconds")
    i.add_argument("--name", required=True)
    i.add_argument("--kind", default="gpu", choices=KINDS)
    i.add_argument("--device", default="", help="the device in words")
    i.add_argument("--runtime", default="other", choices=RUNTIMES)
    i.add_argument("--batch-size", type=int, default=1)
    i.add_argument("--threads", type=int, default=0)
    i.add_argument("--dtype", default="float32", choices=DTYPES)
    i.add_argument("--source", required=True, help="who measured it, where it is published")
    i.add_argument("--licence", required=True)
    i.add_argument("--notes", default="")
    i.add_argument("--predictor", default="huber")
    i.add_argument("--encoder", default="compact")
    i.add_argument("--out", default=str(PROFILE_DIR), help="folder to write NAME.json into")
    i.add_argument("--json", action="store_true", help="print the validation scores as JSON")
    i.set_defaults(handler=run_import)

    ls = verbs.add_parser("list", help="list known profiles", epilog="example: nas profile list")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)

    sh = verbs.add_parser(
        "show", help="show one profile", epilog="example: nas profile show nb201_pixel3 --json"
    )
    sh.add_argument("profile", help="profile name or JSON path")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(handler=run_show)
    p.set_defaults(handler=lambda args: _no_command(p))


def _no_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _measure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="torch device to time on")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=1,
                   help="sweeps over all layers/subnets, each in a new random order, merged "
                   "(robust on a busy machine)")
    p.add_argument("--min-time-ms", type=float, default=0.0,
                   help="per layer/subnet and round, re-run until this much is timed (gives "
                   "tiny layers more runs)")
    p.add_argument("--clock", default="wall", choices=["wall", "thread_cpu"],
                   help="thread_cpu: CPU time of the timing thread (needs --threads 1, cpu)")
    p.add_argument("--statistic", default="median_ms", choices=["median_ms", "min_ms"],
                   help="which statistic of the timings to store/compare")


def _bar(total: int, desc: str) -> Any:
    from nas.cli.progress import progress_bar

    return progress_bar(total=total, desc=desc, unit="net" if "subnet" in desc else "layer")


def _progress(bar: Any) -> Any:
    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update


def run_build(args: argparse.Namespace) -> int:
    from nas.hardware.build import build_lookup_table

    space = create_space(args.space)
    out = Path(args.out)
    partial = (
        Path(args.partial) if args.partial
        else Path("runs") / "profile_build" / f"{args.name}.partial.json"
    )
    bar = _bar(0, "layers")
    try:
        results = build_lookup_table(
            space, runtime=args.runtime, batch_size=args.batch_size, device=args.device,
            threads=args.threads, warmup=args.warmup, repeats=args.repeats,
            num_classes=args.num_classes, partial_path=partial, progress=_progress(bar),
            clock=args.clock, rounds=args.rounds, min_time_s=args.min_time_ms / 1e3,
        )
    finally:
        bar.close()
    model = LatencyModel(
        space=space.name,
        fingerprint=space.fingerprint(),
        lut={k: v[args.statistic] for k, v in results.items()},
        num_classes=args.num_classes,
    )
    profile = HardwareProfile(
        name=args.name,
        kind=args.kind,
        device=args.device_name or f"{platform.processor() or platform.machine()} ({args.device})",
        runtime=args.runtime,
        batch_size=args.batch_size,
        threads=args.threads,
        dtype="float32",
        provenance=Provenance(
            source=f"measured here with `nas profile build` on {platform.node() or 'this host'}",
            licence="CC0-1.0",
            notes=f"{len(results)} layers, {args.statistic} of {args.rounds} x {args.repeats} "
            f"runs after {args.warmup} warm-up runs, clock {args.clock}"
            + (f", at least {args.min_time_ms:g} ms per layer and round"
               if args.min_time_ms else ""),
        ),
        latency={space.name: model},
    )
    path = save_profile(profile, out)
    print(f"wrote {path} ({len(results)} layers)")
    partial.unlink(missing_ok=True)
    if args.validate:
        args.profile, args.n, args.seed = str(path), args.validate, 0
        args.csv, args.json = "", False
        return _measure(args, fit_correction=True)
    return 0


def run_measure(args: argparse.Namespace) -> int:
    return _measure(args, fit_correction=False)


def _measure(args: argparse.Namespace, *, fit_correction: bool) -> int:
    from nas.hardware.build import measure_subnets
    from predictors.io import latency_predictor, predictor_to_json
    from predictors.metrics import scores

    if args.n < 4:
        raise UsageError(f"--n must be at least 4, got {args.n}")
    space = create_space(args.space)
    profile = load_profile(args.profile)
    predictor = latency_predictor(profile, space)
    archs = space.sample_many(args.n, np.random.default_rng(args.seed))
    predicted = predictor.predict(archs)
    bar = _bar(args.n, "subnets")
    try:
        rows = measure_subnets(
            space, archs, num_classes=args.num_classes,
            runtime=args.runtime or profile.runtime, batch_size=args.batch_size,
            device=args.device, threads=args.threads, warmup=args.warmup, repeats=args.repeats,
            progress=_progress(bar), clock=args.clock, rounds=args.rounds,
            min_time_s=args.min_time_ms / 1e3,
        )
    finally:
        bar.close()
    measured = np.array([r[args.statistic] for r in rows])
    result: dict[str, Any] = {"profile": profile.name, "space": space.name, "n": args.n,
                              "uncorrected": scores(measured, predicted)}
    if fit_correction:
        from predictors.lookup_table import LookupTablePredictor

        half = args.n // 2
        if isinstance(predictor, LookupTablePredictor):
            held = LookupTablePredictor(
                space, table=predictor.table, num_classes=predictor.num_classes
            )
            held.fit(archs[:half], measured[:half])
            result["corrected_holdout"] = scores(measured[half:], held.predict(archs[half:]))
            predictor.fit(archs, measured)
            model = profile.model_for(space)
            validation = {**result["corrected_holdout"], "n_train": float(half),
                          "n_test": float(args.n - half)}
            from dataclasses import replace

            profile = profile.with_model(
                replace(model, predictor=predictor_to_json(predictor), validation=validation)
            )
            path = save_profile(profile, Path(args.profile).parent)
            result["saved"] = str(path)
    if args.csv:
        import pandas as pd

        from nas.rundir import atomic_write_text

        frame = pd.DataFrame({"arch": [a.to_json() for a in archs], "measured_ms": measured,
                              "predicted_ms": predicted})
        atomic_write_text(args.csv, frame.to_csv(index=False))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for label in ("uncorrected", "corrected_holdout"):
        if label in result:
            s = result[label]
            print(f"{label:<18} kendall_tau {s['kendall_tau']:.3f}  spearman {s['spearman']:.3f}  "
                  f"mape {s['mape']:.1f}%  rmse {s['rmse']:.3f} ms")
    if "saved" in result:
        print(f"wrote {result['saved']} (correction fitted on all {args.n} subnets)")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from predictors.table_import import fit_latency_model, read_arch_table

    space = create_space(args.space)
    archs, frame = read_arch_table(args.table, space, args.arch_columns)
    if args.latency_column not in frame.columns:
        raise UsageError(
            f"{args.table}: no column {args.latency_column!r}; columns are {list(frame.columns)}"
        )
    model = fit_latency_model(
        space, archs, frame[args.latency_column].to_numpy(dtype=float),
        predictor=args.predictor, encoder=args.encoder,
    )
    profile = HardwareProfile(
        name=args.name, kind=args.kind, device=args.device or args.name, runtime=args.runtime,
        batch_size=args.batch_size, threads=args.threads, dtype=args.dtype,
        provenance=Provenance(source=args.source, licence=args.licence, notes=args.notes),
        latency={space.name: model},
    )
    target = Path(args.out) / f"{args.name}.json"
    if target.is_file():
        profile = HardwareProfile.from_dict(
            {**load_profile(target).to_dict(), **{k: v for k, v in profile.to_dict().items()
                                                   if k != "latency"}},
            source=str(target),
        ).with_model(model)
    path = save_profile(profile, args.out)
    if args.json:
        print(json.dumps({"profile": str(path), "validation": dict(model.validation)}, indent=2))
    else:
        v = model.validation
        print(f"wrote {path}: held-out kendall_tau {v['kendall_tau']:.3f}, mape {v['mape']:.1f}% "
              f"({int(v['n_train'])} train / {int(v['n_test'])} held out)")
    return 0


def _summary(profile: HardwareProfile) -> dict[str, Any]:
    return {
        "name": profile.name, "kind": profile.kind, "device": profile.device,
        "runtime": profile.runtime, "batch_size": profile.batch_size,
        "spaces": {
            s: {"lut_layers": len(m.lut), "predictor": (m.predictor or {}).get("predictor"),
                "validation": dict(m.validation)}
            for s, m in profile.latency.items()
        },
        "source": profile.provenance.source, "licence": profile.provenance.licence,
    }


def run_list(args: argparse.Namespace) -> int:
    rows = [_summary(load_profile(n)) for n in list_profiles()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<24}{'kind':<7}{'batch':>6}  {'spaces':<16}{'tau':>7}  device")
    for r in rows:
        for space, m in r["spaces"].items():
            tau = m["validation"].get("kendall_tau", float("nan"))
            print(f"{r['name']:<24}{r['kind']:<7}{r['batch_size']:>6}  {space:<16}{tau:>7.3f}  "
                  f"{r['device']}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    summary = _summary(load_profile(args.profile))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for key in ("name", "kind", "device", "runtime", "batch_size", "source", "licence"):
        print(f"{key:<11}{summary[key]}")
    for space, m in summary["spaces"].items():
        scores = ", ".join(f"{k} {v:.3g}" for k, v in m["validation"].items())
        print(f"space      {space}: {m['lut_layers']} LUT layers, predictor {m['predictor']}; "
              f"validation: {scores or 'none'}")
    return 0
