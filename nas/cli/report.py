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
        epilog="example: nas report --run runs/demo-20261122-0400",
    )
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--json", action="store_true", help="print the chosen-subnet table as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    html_path, md_path = write_report(args.run)
    if args.json:
        print(json.dumps(collect_chosen(args.run).rows, indent=2, default=str))
    else:
        print(f"wrote {html_path}\nwrote {md_path}")
    return 0
