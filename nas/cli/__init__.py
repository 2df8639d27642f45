"""The ``nas`` command: one verb per step of the flow.

Each verb lives in its own module ``nas.cli.<verb>`` exposing ``register(subparsers)``,
which adds its parser and sets ``handler`` (a function of the parsed args returning an exit
code). A handler parses, calls one :mod:`nas.flow` function and prints. Errors a user can fix
(:class:`nas.NasError`) print one line and exit 2; anything else is a bug: one line saying so
(``--debug`` shows the traceback), exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn

from nas.errors import ConfigError, NasError

VERBS = ("spaces", "stats", "train", "profile", "predictors", "search", "export", "report", "demo")


class UsageError(ConfigError):
    """A problem with the command line or its inputs that the user can fix."""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps prose but keeps examples as written: lines that are indented or start with
    ``example`` or ``nas`` are printed verbatim (so every example can be copied and run)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for line in text.splitlines():
            body = line.strip()
            if not body or line[:1].isspace() or body.startswith(("example", "nas ")):
                out.append(indent + line)
            else:
                out.append(textwrap.fill(body, width, initial_indent=indent,
                                         subsequent_indent=indent))
        return "\n".join(out)


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit 2), like every
    other user error of the CLI; ``--help`` shows the usage."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every verb that is installed."""
    parser = OneLineParser(
        prog="nas",
        description="Neural architecture search with once-for-all supernets.",
        epilog="Run 'nas VERB --help' for a verb's options and an example.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
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
    except NasError as exc:
        # one line, even when a message quotes a multi-line library error
        text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"nas {args.verb}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nas {args.verb}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `| head`): nothing left to say
        sys.stderr.close()
        return 0
    except Exception as exc:
        if args.debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"nas {args.verb}: internal error (a bug, not your input): "
              f"{type(exc).__name__}: {first}; rerun with 'nas --debug {args.verb} ...' for the "
              "traceback and report it", file=sys.stderr)
        return 1
