"""``nas search``: one search per device profile (in parallel on Ray), then export the chosen."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from nas.cli import UsageError

EXAMPLE = """example:
  nas search --run runs/tiny-sandwich --profiles nb201_pixel3,nb201_samsung_s7 \\
      --max-latency 12 --max-latency-for nb201_pixel3=8 --searcher evolution --budget 200
  nas search --run runs/tiny-sandwich --profiles nb201_pixel3 --max-macs 300M --max-params 5e6
  nas search --run runs/tiny-sandwich --profiles nb201_pixel3 --resume --budget 400
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``search`` verb."""
    from nas.search import list_searchers

    p = sub.add_parser(
        "search",
        help="search subnets for each device profile (Ray), export the best",
        description=(
            "Run one architecture search per device profile, in parallel as Ray tasks "
            "(a local Ray starts on demand; --address joins a cluster). Accuracy is measured "
            "on the trained supernet with BN recalibration (or predicted by the run's accuracy "
            "predictor), latency comes from each profile's latency model. Trials are logged to "
            "RUN/search/PROFILE/trials.csv as they finish; --resume continues without "
            "re-evaluating. Afterwards the best subnet and the top of the Pareto front are "
            "exported to RUN/exports/PROFILE/KEY/."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run", required=True, help="run directory (or a name under --runs-dir)")
    p.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")
    p.add_argument("--profiles", required=True, help="comma-separated device profile names")
    p.add_argument("--searcher", default="evolution", choices=list_searchers())
    p.add_argument("--budget", type=int, default=100, help="architectures per profile")
    p.add_argument("--batch-size", type=int, default=None, help="architectures per batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-latency", type=float, default=None, help="latency limit (ms), all profiles"
    )
    p.add_argument("--max-latency-for", default="", help="per-profile limits: P=ms,Q=ms")
    p.add_argument(
        "--max-macs",
        default=None,
        help="MAC limit (multiply-accumulates, as 'nas stats' counts them), all profiles; "
        "a number such as 3e8 or with a k/M/G suffix (300M)",
    )
    p.add_argument(
        "--max-params",
        default=None,
        help="parameter-count limit, all profiles; a number such as 5e6 or 5M",
    )
    p.add_argument(
        "--accuracy",
        choices=("auto", "measured", "predictor"),
        default="auto",
        help="measure on the supernet or use RUN/predictors/accuracy (auto: predictor if present)",
    )
    p.add_argument("--images", type=int, default=512, help="validation images for measuring")
    p.add_argument("--bn-batches", type=int, default=5, help="BN recalibration batches per subnet")
    p.add_argument("--resume", action="store_true", help="continue logged searches")
    p.add_argument("--address", default=None, help="join this Ray cluster")
    p.add_argument("--sequential", action="store_true", help="no Ray: one search after another")
    p.add_argument(
        "--export-top",
        type=int,
        default=2,
        help="export the best and this many of the front per profile (-1: none)",
    )
    p.add_argument("--formats", default="torch,export,onnx", help="export formats, comma-separated")
    p.add_argument("--json", action="store_true", help="print the best arch per profile as JSON")
    p.set_defaults(handler=run)


def resolve_run(run: str, runs_dir: str) -> Path:
    """``run`` as a path if it is a run directory, else ``runs_dir/run``."""
    for path in (Path(run), Path(runs_dir) / run):
        if (path / "space.json").is_file():
            return path
    raise UsageError(f"--run {run!r}: no run directory (no space.json) there or in {runs_dir}/")


def _limits(args: argparse.Namespace, profiles: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for p in profiles:
        if args.max_latency is not None:
            out[p] = {"latency_ms": args.max_latency}
    for item in filter(None, args.max_latency_for.split(",")):
        name, sep, value = item.partition("=")
        if not sep or name not in profiles:
            raise UsageError(
                f"--max-latency-for {item!r}: expected PROFILE=ms with PROFILE in {profiles}"
            )
        try:
            out[name] = {"latency_ms": float(value)}
        except ValueError:
            raise UsageError(f"--max-latency-for {item!r}: {value!r} is not a number") from None
    return out


_SUFFIX = {"k": 1e3, "m": 1e6, "g": 1e9}


def parse_count(flag: str, text: str | None) -> float | None:
    """A positive count such as ``300000000``, ``3e8`` or ``300M`` (k/M/G); None stays None."""
    if text is None:
        return None
    body = text.strip()
    scale = 1.0
    if body and body[-1].lower() in _SUFFIX:
        scale, body = _SUFFIX[body[-1].lower()], body[:-1]
    try:
        value = float(body) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(
            f"{flag} {text!r}: expected a positive number, e.g. 3e8, 300000000 or 300M "
            "(suffixes k, M, G)"
        )
    return value


def _shared_constraints(args: argparse.Namespace) -> dict[str, float]:
    out = {}
    for flag, metric, text in (
        ("--max-macs", "macs", args.max_macs),
        ("--max-params", "params", args.max_params),
    ):
        value = parse_count(flag, text)
        if value is not None:
            out[metric] = value
    return out


def _measured(run_dir: Path, args: argparse.Namespace) -> Any:
    from nas.data import load_data, split
    from nas.distributed.search import MeasuredAccuracy
    from nas.registry import create_space
    from nas.rundir import RunDir

    info = RunDir.open(run_dir, create_space(RunDir.space_name(run_dir))).info().get("data") or {}
    spec = info.get("data", "digits")
    data = load_data(spec, split="train", limit=args.images * 4, seed=info.get("seed", 0))
    bn, val = split(data, 0.25, seed=0)
    return MeasuredAccuracy(data=val, bn_data=bn, n_bn_batches=args.bn_batches)


def run(args: argparse.Namespace) -> int:
    from nas.cli.progress import progress_bar
    from nas.distributed.search import DevicePlan, PredictedAccuracy, search_devices
    from nas.selection import chosen_keys, export_trials, load_trained_supernet

    run_dir = resolve_run(args.run, args.runs_dir)
    profiles = [p for p in args.profiles.split(",") if p]
    if not profiles:
        raise UsageError("--profiles: name at least one device profile")
    if args.budget < 1:
        raise UsageError(f"--budget must be >= 1, got {args.budget}")
    shared = _shared_constraints(args)
    predictor_path = run_dir / "predictors" / "accuracy"
    use_predictor = args.accuracy == "predictor" or (
        args.accuracy == "auto" and predictor_path.with_suffix(".json").is_file()
    )
    supernet = None
    if use_predictor:
        accuracy: Any = PredictedAccuracy(predictor_path)
    else:
        if not (run_dir / "supernet" / "checkpoint.pt").is_file():
            raise UsageError(
                f"{run_dir}: no supernet/checkpoint.pt to measure on (run 'nas train')"
            )
        supernet = load_trained_supernet(run_dir)
        accuracy = _measured(run_dir, args)
    plan = DevicePlan(
        searcher=args.searcher,
        budget=args.budget,
        seed=args.seed,
        batch_size=args.batch_size,
        constraints=_limits(args, profiles),
        shared_constraints=shared,
        info={
            "sources": {
                "accuracy": "predicted" if use_predictor else "measured",
                "latency_ms": "predicted",
                **{metric: "counted" for metric in shared},
            }
        },
    )
    with progress_bar(total=len(profiles), desc="profiles searched", disable=args.json) as bar:
        results = search_devices(
            run_dir,
            profiles,
            plan,
            supernet=supernet,
            accuracy=accuracy,
            resume=args.resume,
            parallel=not args.sequential,
            address=args.address,
        )
        bar.update(len(profiles))
    summary = {}
    exported_any = False
    for profile, result in results.items():
        try:
            best = result.best()
            summary[profile] = {
                "key": best.key,
                **result.best_metrics(),
                "arch": best.to_dict(),
                "front": len(result.pareto),
            }
        except ValueError as exc:
            summary[profile] = {"error": str(exc)}
            continue
        if args.export_top >= 0 and (run_dir / "supernet" / "checkpoint.pt").is_file():
            supernet = supernet or load_trained_supernet(run_dir)
            keys = chosen_keys(result.trials, dict(plan.objectives), args.export_top)
            formats = [f for f in args.formats.split(",") if f]
            paths = export_trials(run_dir, profile, supernet, keys, formats=formats)
            summary[profile]["exported"] = [str(p) for p in paths]
            exported_any = True
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"{'profile':<24}{'accuracy':>10}{'latency_ms':>12}{'front':>7}  key")
    for profile, row in summary.items():
        if "error" in row:
            print(f"{profile:<24}  {row['error']}")
            continue
        print(
            f"{profile:<24}{row.get('accuracy', float('nan')):>10.2f}"
            f"{row.get('latency_ms', float('nan')):>12.3f}{row['front']:>7}  {row['key']}"
        )
    print(
        f"trials and pareto.png in {run_dir}/search/<profile>/"
        + (f"; exports in {run_dir}/exports/" if exported_any else "")
    )
    return 0
