"""``nas profile build|measure|import|list|show``: hardware profiles and their latency models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nas.cli import UsageError
from nas.cli.bits import add_bits_options, space_with_bits
from nas.errors import NasError
from nas.hardware.profile import (
    DTYPES,
    KINDS,
    RUNTIMES,
    HardwareProfile,
    list_profiles,
    load_profile,
    user_profile_dir,
)
from nas.registry import resolve_space


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
            "--rounds 3 --clock thread_cpu --statistic min_ms --validate 50\n"
            "         nas profile build --space gpt_tiny --name here_gpt --num-classes 256 "
            "--seq-len 128 --validate 50\n"
            "         nas profile build --space tiny --name here_q8 --runtime onnxruntime "
            "--bits 32,8 --num-classes 10 --validate 20"
        ),
    )
    b.add_argument("--space", required=True)
    b.add_argument("--name", required=True, help="profile name (file stem)")
    b.add_argument("--runtime", default="torch", choices=["torch", "onnxruntime"])
    add_bits_options(b)
    _measure_options(b)
    b.add_argument("--kind", default="cpu", choices=KINDS)
    b.add_argument("--device-name", default="", help="the device in words (default: this CPU)")
    b.add_argument("--validate", type=int, default=0, metavar="N",
                   help="also time N random whole subnets, fit the correction, store the score")
    _out_options(b)
    b.add_argument("--partial", default="",
                   help="resume file (default: OUT/.NAME.partial.json)")
    b.set_defaults(handler=run_build)

    _add_measure(verbs)
    _add_import(verbs)
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


def _add_measure(verbs: argparse._SubParsersAction) -> None:
    """The ``profile measure`` parser."""
    m = verbs.add_parser(
        "measure",
        help="time N random whole subnets end to end and score a profile's predictions",
        epilog="example: nas profile measure --profile ofa_mbv3_local_cpu_t1 --space "
        "ofa_mbv3_w1.0 --n 8\n         nas profile measure --profile nb201_pixel3 --space nb201 "
        "--suggest 8 --csv next.csv",
    )
    m.add_argument("--profile", required=True, help="profile name or JSON path")
    m.add_argument("--space", required=True)
    m.add_argument("--n", type=int, default=50, help="random subnets to time")
    m.add_argument("--suggest", type=int, default=None, metavar="N",
                   help="instead of timing: list in --csv the N subnets whose measurements "
                   "would teach the profile's model most (not random), to measure on the device")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--runtime", default="", help="default: the profile's runtime")
    add_bits_options(m)
    _measure_options(m)
    m.add_argument("--csv", default="", help="write arch keys, measured and predicted ms here")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    m.set_defaults(handler=run_measure)


def _add_import(verbs: argparse._SubParsersAction) -> None:
    """The ``profile import`` parser."""
    i = verbs.add_parser(
        "import",
        help="fit a device's latency model from a table of measured whole architectures",
        epilog=(
            "example: nas profile import --space nb201 --table "
            "../shared/data/nas_bench_201/nb201_cifar10_latency.csv --arch-columns arch "
            "--latency-column latency_ms_pixel3 --name my_pixel3 --kind phone "
            "--device 'Pixel 3' --runtime tflite --source 'HW-NAS-Bench' --licence MIT\n"
            "         nas profile import --run runs/demo-quick --measure-here 20 --name here"
        ),
    )
    i.add_argument("--space", default=None, help="the space (default: the --run's)")
    i.add_argument("--table", default=None, help="CSV file of measured architectures")
    i.add_argument("--arch-columns", nargs="+", default=None)
    i.add_argument("--latency-column", default=None, help="latency in milliseconds")
    i.add_argument("--measure-here", type=int, default=None, metavar="N",
                   help="instead of a table: time N random whole subnets of the --run's space "
                   "here (they go to RUN/samples/latency_NAME.csv)")
    i.add_argument("--name", required=True)
    i.add_argument("--kind", default="gpu", choices=KINDS)
    i.add_argument("--device", default="", help="the device in words")
    i.add_argument("--runtime", default="other", choices=RUNTIMES)
    i.add_argument("--batch-size", type=int, default=1)
    i.add_argument("--threads", type=int, default=0)
    i.add_argument("--dtype", default="float32", choices=DTYPES)
    i.add_argument("--source", default="", help="who measured it, where it is published")
    i.add_argument("--licence", default="")
    i.add_argument("--notes", default="")
    i.add_argument("--predictor", default=None,
                   help="the latency model (default: chosen by cross-validation)")
    i.add_argument("--encoder", default=None)
    _out_options(i)
    i.add_argument("--json", action="store_true", help="print the validation scores as JSON")
    i.set_defaults(handler=run_import)



def _out_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", default=None,
                   help="a run directory: the profile goes to RUN/profiles/ (used by its searches)")
    p.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")
    p.add_argument("--out", default=None,
                   help=f"folder to write NAME.json into (default: {user_profile_dir()}, "
                   "or RUN/profiles/ with --run)")


def _out(args: argparse.Namespace) -> Path:
    from nas.cli.runs import check_out_dir
    from nas.rundir import check_name

    check_name("--name", args.name)
    if args.run and args.out:
        raise UsageError("--run and --out both name where the profile goes; give one")
    if args.run:
        from nas.cli.runs import resolve_run

        return resolve_run(args.run, args.runs_dir, writable=True).subdir("profiles")
    return check_out_dir(Path(args.out)) if args.out else user_profile_dir()


def _no_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _measure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=None, metavar="N",
                   help="tokens per sequence of a language-model space (default: the space's "
                   "meta seq_len; for measure: the profile's)")
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

    return progress_bar(total=total, desc=desc, unit="net" if "subnet" in desc else "layer",
                        delay=1.0)


def _progress(bar: Any) -> Any:
    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update


def _timing(args: argparse.Namespace, runtime: str) -> Any:
    from nas.flow import Timing

    return Timing(runtime=runtime, batch_size=args.batch_size, threads=args.threads,
                  device=args.device, warmup=args.warmup, repeats=args.repeats,
                  num_classes=args.num_classes, rounds=args.rounds,
                  min_time_ms=args.min_time_ms, clock=args.clock, statistic=args.statistic,
                  seq_len=args.seq_len)


def run_build(args: argparse.Namespace) -> int:
    from nas.flow import build_profile, validate_profile

    if args.validate and args.validate < 4:
        raise UsageError(f"--validate must be 0 or at least 4, got {args.validate}")
    timing = _timing(args, args.runtime)
    space = space_with_bits(args, args.runtime)
    bar = _bar(0, "layers")
    try:
        path = build_profile(space, args.name, out=_out(args),
                             timing=timing, kind=args.kind, device_name=args.device_name,
                             partial=args.partial or None, progress=_progress(bar))
    finally:
        bar.close()
    print(f"wrote {path}")
    if args.validate:
        bar = _bar(args.validate, "subnets")
        try:
            result = validate_profile(space, path, n=args.validate, timing=timing,
                                      fit_correction=True, progress=_progress(bar))
        finally:
            bar.close()
        _print_scores(result, args.validate)
    return 0


def run_measure(args: argparse.Namespace) -> int:
    from nas.flow import validate_profile

    profile = load_profile(args.profile)
    runtime = args.runtime or profile.runtime
    space = space_with_bits(args, runtime)
    if args.suggest is not None:
        return _suggest(args, profile, space)
    bar = _bar(args.n, "subnets")
    try:
        result = validate_profile(space, args.profile, n=args.n, seed=args.seed,
                                  timing=_timing(args, runtime),
                                  csv=args.csv or None, progress=_progress(bar))
    finally:
        bar.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_scores(result, args.n)
    return 0


def _suggest(args: argparse.Namespace, profile: HardwareProfile, space: Any) -> int:
    """Write the subnets worth measuring next for ``profile`` to ``--csv`` (nothing timed)."""
    import pandas as pd

    from nas.rundir import atomic_write_text
    from predictors.suggest import model_from_selection, suggest_archs

    if args.suggest < 1 or not args.csv:
        raise UsageError("--suggest N needs N >= 1 and --csv FILE to list the subnets in")
    selection = dict(getattr(profile.model_for(space), "selection", None) or {})
    archs = suggest_archs(space, args.suggest, model=model_from_selection(selection),
                          seed=args.seed)
    frame = pd.DataFrame({"key": [a.key for a in archs], "arch": [a.to_json() for a in archs]})
    atomic_write_text(args.csv, frame.to_csv(index=False))
    print(f"wrote {args.csv}: {len(archs)} subnets to measure next on {profile.name!r} "
          "(then: nas profile import --table FILE --arch-columns arch ...)")
    return 0


def _print_scores(result: dict[str, Any], n: int) -> None:
    for label in ("uncorrected", "corrected_holdout"):
        if label in result:
            s = result[label]
            print(f"{label:<18} kendall_tau {s['kendall_tau']:.3f}  spearman {s['spearman']:.3f}  "
                  f"mape {s['mape']:.1f}%  rmse {s['rmse']:.3f} ms")
    if "saved" in result:
        print(f"wrote {result['saved']} (correction fitted on all {n} subnets)")


def run_import(args: argparse.Namespace) -> int:
    from nas.flow import DeviceInfo, import_profile, measure_profile

    options = {k: v for k, v in (("predictor", args.predictor), ("encoder", args.encoder)) if v}
    if args.measure_here is not None:
        if not args.run or args.table:
            raise UsageError("--measure-here needs --run (whose space it times) and no --table")
        from nas.cli.runs import resolve_run

        run = resolve_run(args.run, args.runs_dir, writable=True)
        path = measure_profile(run, args.name, n=args.measure_here, **options)
        model = load_profile(path).model_for(run.space)
    else:
        missing = [f for f, v in (("--space", args.space), ("--table", args.table),
                                  ("--arch-columns", args.arch_columns),
                                  ("--latency-column", args.latency_column),
                                  ("--source", args.source), ("--licence", args.licence)) if not v]
        if missing:
            raise UsageError(f"importing a table needs {missing} (or --run with --measure-here)")
        from nas.arch_table import read_arch_table

        space = resolve_space(args.space)
        archs, frame = read_arch_table(args.table, space, args.arch_columns)
        if args.latency_column not in frame.columns:
            raise UsageError(f"{args.table}: no column {args.latency_column!r}; columns are "
                             f"{list(frame.columns)}")
        info = DeviceInfo(kind=args.kind, device=args.device, runtime=args.runtime,
                          batch_size=args.batch_size, threads=args.threads, dtype=args.dtype,
                          source=args.source, licence=args.licence, notes=args.notes)
        path, model = import_profile(space, archs, frame[args.latency_column].to_numpy(float),
                                     name=args.name, out=_out(args), info=info, **options)
    selection = dict(getattr(model, "selection", None) or {})
    if args.json:
        print(json.dumps({"profile": str(path), "validation": dict(model.validation),
                          "selection": selection}, indent=2, default=str))
        return 0
    v = model.validation
    print(f"wrote {path}: kendall_tau {v['kendall_tau']:.3f}, mape {v['mape']:.1f}% "
          f"({int(v['n_train'])} train / {int(v['n_test'])} scored)")
    _print_selection(selection)
    return 0


def _print_selection(selection: dict[str, Any]) -> None:
    """The cross-validated candidates (chosen first) and the advice on measuring more."""
    table = selection.get("table") or []
    for i, row in enumerate(table[:4]):
        label = "chosen   " if i == 0 else "runner-up"
        print(f"  {label} {row.get('candidate', '?'):<28} CV kendall_tau "
              f"{row.get('kendall_tau', float('nan')):.3f} +- "
              f"{row.get('kendall_tau_std', float('nan')):.3f}")
    advice = (selection.get("advice") or {}).get("message")
    if advice:
        print(f"  {advice}")


def _summary(profile: HardwareProfile) -> dict[str, Any]:
    return {
        "name": profile.name, "kind": profile.kind, "device": profile.device,
        "runtime": profile.runtime, "runtime_version": profile.runtime_version,
        "batch_size": profile.batch_size,
        "seq_len": profile.seq_len,
        "spaces": {
            s: {"lut_layers": len(m.lut), "predictor": (m.predictor or {}).get("predictor"),
                "validation": dict(m.validation)}
            for s, m in profile.latency.items()
        },
        "source": profile.provenance.source, "licence": profile.provenance.licence,
    }


def run_list(args: argparse.Namespace) -> int:
    rows = []
    for name in list_profiles():
        try:
            rows.append(_summary(load_profile(name)))
        except NasError as exc:  # one bad file must not hide the others
            print(f"nas profile list: skipped {name!r}: {exc}", file=sys.stderr)
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
    for key in ("name", "kind", "device", "runtime", "batch_size", "seq_len", "source",
                "licence"):
        value = summary[key]
        if key == "runtime" and summary["runtime_version"]:
            value = f"{value} {summary['runtime_version']}"
        print(f"{key:<11}{value}")
    for space, m in summary["spaces"].items():
        scores = ", ".join(f"{k} {v:.3g}" for k, v in m["validation"].items())
        print(f"space      {space}: {m['lut_layers']} LUT layers, predictor {m['predictor']}; "
              f"validation: {scores or 'none'}")
    return 0
