"""``nas demo``: the whole flow on the embedded digits dataset, no download."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nas.cli import UsageError
from nas.rundir import RunDir


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` verb."""
    p = sub.add_parser(
        "demo",
        help="run the end-to-end demo (train, predictors, profiles, Ray searches, export)",
        description=(
            "Train a NAS-Bench-201 supernet on scikit-learn's digits, collect accuracy samples, "
            "measure this machine's latency profile, fit the predictors, search this machine "
            "and two shipped real-device profiles in parallel on Ray, export each chosen subnet "
            "(checked in ONNX Runtime) and write report.html / report.md."
        ),
        epilog="example: nas demo --quick",
    )
    p.add_argument("--quick", action="store_true", help="small settings (about 2 minutes)")
    p.add_argument("--runs-dir", default="runs", help="where the run directory goes")
    p.add_argument("--name", help="run directory name (default: demo-<time>)")
    p.add_argument("--json", action="store_true", help="print the timings and paths as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nas.flow.demo import FULL, QUICK, run_demo
    from nas.rundir import check_name

    if args.name is not None:
        check_name("--name", args.name)
    name = args.name or time.strftime("demo-%Y%m%d-%H%M%S")
    run_path = Path(args.runs_dir) / name
    from nas.cli.runs import check_new_run

    check_new_run(run_path)
    if "total" in RunDir(run_path, space=None).timings():  # type: ignore[arg-type]
        raise UsageError(f"{run_path} already holds a finished demo; pick another --name")
    say = (lambda _msg: None) if args.json else (lambda msg: print(msg, flush=True))
    say(f"nas demo{' --quick' if args.quick else ''}: writing {run_path}")
    html_path = run_demo(QUICK if args.quick else FULL, run_path, say)
    timings = RunDir.open(run_path).timings()
    if args.json:
        print(json.dumps({"run": str(run_path), "report": str(html_path), "timings": timings}))
    else:
        print(f"report: {html_path} (and report.md); total {timings['total']:.0f} s")
    return 0
