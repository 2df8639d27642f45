"""``nas export``: export one searched subnet (by arch key) from the run's supernet."""

from __future__ import annotations

import argparse
import json

from nas.cli import UsageError
from nas.cli.runs import resolve_run

EXAMPLE = """example: (on the run 'nas demo --quick --name demo-quick' leaves)
  nas export --run runs/demo-quick --profile nb201_pixel3 --best --measure
  nas export --run runs/demo-quick --profile nb201_pixel3 --arch KEY   # a 'key' of trials.csv
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` verb."""
    p = sub.add_parser(
        "export",
        help="export a searched subnet (TorchScript/torch.export, ONNX, arch.json)",
        description=(
            "Extract a subnet of a profile's search from the trained supernet and write it to "
            "RUN/exports/PROFILE/KEY/ with its search metrics (and, with --measure, its "
            "accuracy measured now with BN recalibration) in metrics.json. In a run on a "
            "quantized space (e.g. tiny+q8-32b) model.onnx is quantized by the subnet's policy "
            "(QDQ, calibrated on the run's training data; model_float.onnx beside it), "
            "arch.json records the policy, and --measure measures the accuracy fake-quantized "
            "and times the quantized model in ONNX Runtime (latency_ms_onnx)."
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
    p.add_argument("--measure", action="store_true",
                   help="also measure the task metric now (BN recalibrated)")
    p.add_argument("--formats", default="torch,export,onnx",
                   help="comma-separated formats: torch, export, onnx, and plug-ins' (hf: a "
                   "Hugging Face save_pretrained folder hf/ for decoder language models)")
    p.add_argument("--json", action="store_true", help="print the export as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nas.flow import export_chosen, load_search

    run_dir = resolve_run(args.run, args.runs_dir, writable=True)
    result = load_search(run_dir, args.profile)
    if args.best:
        archs = result.chosen(0)
        if not archs:
            raise UsageError(f"profile {args.profile!r}: no trial meets the constraints")
    else:
        archs = [a for a in result.archs if a.key == args.arch][:1]
        if not archs:
            raise UsageError(
                f"--arch {args.arch!r} is not a trial of {args.profile!r} ({len(result)} "
                f"trials; see the 'key' column of {run_dir.trials_csv(args.profile)})"
            )
    formats = [f for f in args.formats.split(",") if f]
    (path,) = export_chosen(run_dir, results={args.profile: result},
                            archs={args.profile: archs}, formats=formats, measure=args.measure)
    if args.json:
        print(json.dumps({"profile": args.profile, "key": archs[0].key, "path": str(path)}))
    else:
        print(f"exported {archs[0].key} for {args.profile} to {path}")
    return 0
