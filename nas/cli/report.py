"""``nas report``: write report.html and report.md for a run directory."""

from __future__ import annotations

import argparse
import json

from nas.report import collect_chosen, write_report


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` verb."""
    p = sub.add_parser(
        "report",
        help="write a run's HTML/Markdown report",
        description="Write report.html and report.md (Pareto plots, chosen subnets, timings).",
        epilog="example: nas report --run runs/demo-quick  # after nas demo --quick "
               "--name demo-quick",
    )
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--json", action="store_true", help="print the chosen-subnet table as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nas.cli.runs import check_report_dir

    path = check_report_dir(args.run)
    html_path, md_path = write_report(path)
    if args.json:
        print(json.dumps(collect_chosen(path).rows, indent=2, default=str))
    else:
        print(f"wrote {html_path}\nwrote {md_path}")
    return 0
