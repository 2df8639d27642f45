"""``nas spaces``: list the registered search spaces."""

from __future__ import annotations

import argparse
import json

from nas.registry import REGISTRY, create_space


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``spaces`` verb."""
    p = sub.add_parser(
        "spaces",
        help="list the registered search spaces",
        description="List the registered search spaces with their sizes.",
        epilog="example: nas spaces --json",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for name, description in REGISTRY.describe().items():
        space = create_space(name)
        rows.append(
            {
                "name": name,
                "dims": len(space.choices),
                "size": space.size(),
                "description": description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<16}{'dims':>6}{'archs':>12}  description")
    for r in rows:
        print(f"{r['name']:<16}{r['dims']:>6}{r['size']:>12.3g}  {r['description']}")
    return 0
