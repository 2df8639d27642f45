"""``nas export``: export one searched subnet (by arch key) from the run's supernet."""

from __future__ import annotations

import argparse
import json

from nas.cli import UsageError

EXAMPLE = """example:
  nas export --run runs/tiny-sandwich --profile nb201_pixel3 --arch 3f2a9c0d1b7e
  nas export --run runs/tiny-sandwich --profile nb201_pixel3 --best --measure
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` verb."""
    p = sub.add_parser(
        "export",
        help="export a searched subnet (TorchScript/torch.export, ONNX, arch.json)",
        description=(
            "Extract a subnet of a profile's search from the trained supernet and write it to "
            "RUN/exports/PROFILE/KEY/ with its search metrics (and, with --measure, its "
            "accuracy measured now with BN recalibration) in metrics.json."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--run", required=True, help="run directory (or a name under --runs-dir)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--profile", required=True, help="the device profile whose search to use")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", help="arch key (the 'key' column of trials.csv)")
    which.add_argument("--best", action="store_true", help="the best feasible trial")
    p.add_argument("--measure", action="store_true", help="also measure accuracy now")
    p.add_argument("--images", type=int, default=512, help="images for --measure")
    p.add_argument("--formats", default="torch,export,onnx", help="comma-separated formats")
    p.add_argument("--json", action="store_true", help="print the export as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nas.cli.search import _measured, resolve_run
    from nas.selection import chosen_keys, export_trials, load_trained_supernet, read_trials

    run_dir = resolve_run(args.run, args.runs_dir)
    trials, plan = read_trials(run_dir, args.profile)
    if args.best:
        keys = chosen_keys(trials, plan.get("objectives", {"accuracy": "max"}), 0)
        if not keys:
            raise UsageError(f"profile {args.profile!r}: no trial meets the constraints")
        key = keys[0]
    else:
        key = args.arch
        if key not in set(trials["key"]):
            raise UsageError(
                f"--arch {key!r} is not a trial of {args.profile!r} "
                f"({len(trials)} trials; see {run_dir}/search/{args.profile}/trials.csv)"
            )
    if not (run_dir / "supernet" / "checkpoint.pt").is_file():
        raise UsageError(f"{run_dir}: no supernet/checkpoint.pt to extract from")
    supernet = load_trained_supernet(run_dir)
    measured = None
    if args.measure:
        from nas.distributed.search import measure_on_supernet

        args.bn_batches = 5
        row = trials.set_index("key").loc[key]
        arch = supernet.space.arch(json.loads(str(row["arch"])))
        measured = {key: measure_on_supernet(supernet, _measured(run_dir, args), [arch])[0]}
    formats = [f for f in args.formats.split(",") if f]
    (path,) = export_trials(
        run_dir, args.profile, supernet, [key], measured=measured, formats=formats
    )
    if args.json:
        print(json.dumps({"profile": args.profile, "key": key, "path": str(path)}))
    else:
        print(f"exported {key} for {args.profile} to {path}")
    return 0
