"""``nas search``: one search per device profile (in parallel on Ray), then export the chosen."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from nas.cli import UsageError
from nas.cli.runs import resolve_run

EXAMPLE = """example: (on the run 'nas demo --quick --name demo-quick' leaves)
  nas search --run runs/demo-quick --profiles nb201_samsung_s7,nb201_samsung_a50 \\
      --max-latency 12 --max-latency-for nb201_samsung_s7=8 --searcher evolution --budget 200
  nas search --run runs/demo-quick --profiles nb201_1080ti_1 --max-macs 30M --max-params 1M
  nas search --run runs/demo-quick --profiles nb201_silver_4114 --latency-quantile 0.3 --sequential
  nas search --run runs/demo-quick --profiles nb201_essential_ph_1 --max-size 2M --searcher nsga2 \\
      --objectives accuracy,latency_ms,size_bytes
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
    _limit_options(p)
    p.add_argument(
        "--accuracy",
        choices=("auto", "measured", "predicted"),
        default="auto",
        help="the task metric: measured on the supernet, or predicted by the run's predictor "
        "(auto: the predictor if the run has one)",
    )
    p.add_argument("--images", type=int, default=512,
                   help="validation examples per measurement (with measured accuracy)")
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


def _limit_options(p: argparse.ArgumentParser) -> None:
    """The options that set each profile's constraints."""
    p.add_argument("--max-latency-for", default="", help="per-profile limits: P=ms,Q=ms")
    p.add_argument("--latency-quantile", type=float, default=None, metavar="Q",
                   help="limit each profile's latency to the Q quantile (0-1) of its predicted "
                   "latency over 2,000 random archs (where no other limit is given)")
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
        "--max-size",
        default=None,
        help="model-size limit in bytes (weights at their bits; 4 per parameter without a "
        "quantization policy), all profiles; e.g. 2e6 or 2M",
    )
    p.add_argument(
        "--objectives",
        default=None,
        help="comma-separated objectives, each METRIC or METRIC:max|min, of the task metric, "
        "latency_ms, params, macs, size_bytes (default: the task metric and latency_ms; "
        "directions default to the task's, min for the others)",
    )


def _check_mode(args: argparse.Namespace) -> None:
    """Options that would do nothing, and a quantile outside (0, 1): one-line errors."""
    if args.sequential and args.address:
        raise UsageError("--address joins a Ray cluster, which --sequential does not use; "
                         "give one of them")
    q = args.latency_quantile
    if q is not None and not 0 < q < 1:
        raise UsageError(f"--latency-quantile {q!r}: expected a number in (0, 1), e.g. 0.3")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: expected an int >= 0")
    for flag, value, low in (("--images", args.images, 1), ("--bn-batches", args.bn_batches, 0)):
        if value is not None and value < low:
            raise UsageError(f"{flag} {value}: expected an int >= {low}")


def _latency(flag: str, text: str) -> float:
    """A latency limit in ms: a positive finite number."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{flag} {text!r}: expected a positive number of milliseconds")
    return value


def _limits(args: argparse.Namespace, profiles: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for p in profiles:
        if args.max_latency is not None:
            out[p] = {"latency_ms": _latency("--max-latency", str(args.max_latency))}
    for item in filter(None, args.max_latency_for.split(",")):
        name, sep, value = item.partition("=")
        if not sep or name not in profiles:
            raise UsageError(
                f"--max-latency-for {item!r}: expected PROFILE=ms with PROFILE in {profiles}"
            )
        out[name] = {"latency_ms": _latency(f"--max-latency-for {name}=", value)}
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
        ("--max-size", "size_bytes", args.max_size),
    ):
        value = parse_count(flag, text)
        if value is not None:
            out[metric] = value
    return out


def parse_objectives(text: str | None, task_objectives: dict[str, str],
                     allowed: tuple[str, ...]) -> dict[str, str] | None:
    """``"accuracy,latency_ms,size_bytes:min"`` as ``{metric: direction}`` (None stays None):
    a bare name takes the task's direction, else ``min``."""
    if text is None:
        return None
    out: dict[str, str] = {}
    for item in (i.strip() for i in text.split(",")):
        name, sep, direction = item.partition(":")
        direction = direction if sep else task_objectives.get(name, "min")
        if name not in allowed or direction not in ("max", "min") or name in out:
            raise UsageError(
                f"--objectives {text!r}: {item!r} is not METRIC or METRIC:max|min with a "
                f"distinct METRIC in {list(allowed)}"
            )
        out[name] = direction
    return out


def _objectives(args: argparse.Namespace, run_dir: Any) -> dict[str, str] | None:
    from nas.devices import COUNTED

    task = run_dir.task
    return parse_objectives(args.objectives, task.objectives(),
                            (*task.metrics, "latency_ms", *COUNTED))


def run(args: argparse.Namespace) -> int:
    from nas.cli.progress import progress_bar
    from nas.devices import DevicePlan
    from nas.export import check_formats
    from nas.flow import export_chosen, latency_limits, search_run

    run_dir = resolve_run(args.run, args.runs_dir, writable=True)
    profiles = [p for p in args.profiles.split(",") if p]
    if not profiles:
        raise UsageError("--profiles: name at least one device profile")
    if args.export_top < -1:
        raise UsageError(f"--export-top must be >= -1, got {args.export_top}")
    limits = _limits(args, profiles)
    _check_mode(args)
    formats = [f for f in args.formats.split(",") if f]
    if args.export_top >= 0:  # the export runs after the search: check its formats first
        check_formats(formats)
    shared, objectives = _shared_constraints(args), _objectives(args, run_dir)
    if args.latency_quantile is not None:
        quantile = latency_limits(run_dir, profiles, args.latency_quantile, seed=args.seed)
        limits = {p: limits.get(p, {"latency_ms": v}) for p, v in quantile.items()}
    plan = DevicePlan(searcher=args.searcher, budget=args.budget, seed=args.seed,
                      batch_size=args.batch_size, constraints=limits,
                      shared_constraints=shared, objectives=objectives)
    with progress_bar(total=len(profiles), desc="profiles searched", disable=args.json,
                      delay=1.0) as bar:
        results = search_run(run_dir, profiles, plan, accuracy=args.accuracy,
                             images=args.images, bn_batches=args.bn_batches, resume=args.resume,
                             parallel=not args.sequential, address=args.address)
        bar.update(len(profiles))
    exported = []
    if args.export_top >= 0 and run_dir.checkpoint.is_file():
        exported = export_chosen(run_dir, results=results, top_k=args.export_top,
                                 formats=formats)
    _print(run_dir.path, results, exported, as_json=args.json)
    return 0


def _print(run_dir: Path, results: dict[str, Any], exported: list[Path], *,
           as_json: bool) -> None:
    summary: dict[str, Any] = {}
    for profile, result in results.items():
        chosen = result.chosen(0)
        summary[profile] = (
            {"key": chosen[0].key, **result.best_metrics(), "arch": chosen[0].to_dict(),
             "front": len(result.pareto),
             "exported": [str(p) for p in exported if p.parent.name == profile]}
            if chosen else {"error": f"no trial of {len(result)} meets the constraints"}
        )
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    metric = next(iter(results.values())).problem.objectives.names[0]
    sized = any("size_bytes" in row for row in summary.values())
    print(f"{'profile':<24}{metric:>10}{'latency_ms':>12}" + (f"{'size_bytes':>12}" if sized
                                                            else "") + f"{'front':>7}  key")
    for profile, row in summary.items():
        if "error" in row:
            print(f"{profile:<24}  {row['error']}")
            continue
        size = f"{row.get('size_bytes', float('nan')):>12,.0f}" if sized else ""
        print(f"{profile:<24}{row.get(metric, float('nan')):>10.2f}"
              f"{row.get('latency_ms', float('nan')):>12.3f}{size}{row['front']:>7}  {row['key']}")
    print(f"trials and pareto.png in {run_dir}/search/<profile>/"
          + (f"; exports in {run_dir}/exports/" if exported else ""))
