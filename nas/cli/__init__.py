"""The ``nas`` command: one verb per step of the flow.

Each verb lives in its own module ``nas.cli.<verb>`` exposing ``register(subparsers)``,
which adds its parser and sets ``handler`` (a function of the parsed args returning an exit
code). Errors a user can fix print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

VERBS = ("spaces", "stats", "train", "profile", "predictors", "search", "export", "report", "demo")


class UsageError(Exception):
    """A problem with the command line or its inputs that the user can fix."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every verb that is installed."""
    parser = argparse.ArgumentParser(
        prog="nas",
        description="Neural architecture search with once-for-all supernets.",
        epilog="Run 'nas VERB --help' for a verb's options and an example.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        try:
            module = importlib.import_module(f"nas.cli.{verb}")
        except ModuleNotFoundError as exc:
            if exc.name == f"nas.cli.{verb}":
                continue  # verb not implemented yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nas`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except (UsageError, ValueError, FileNotFoundError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"nas {args.verb}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nas {args.verb}: interrupted", file=sys.stderr)
        return 130
