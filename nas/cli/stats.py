"""``nas stats``: parameter and MAC counts of the architectures listed in a CSV file.

Rows are read in one of three forms, chosen from the header:

* an ``arch`` column holding ``ArchConfig`` JSON (``{"space": ..., "arch": {...}}`` or the bare
  mapping), or — for spaces with ``parse`` (NAS-Bench-201) — the cell string;
* Once-for-All dict columns (``ks``, ``e``, ``d``, ``r`` for MobileNetV3; ``d``, ``e``, ``w``,
  ``r`` for ResNet) holding JSON-ish lists;
* one column per dotted dimension (``s1.depth``, ``s1.b0.kernel``, ..., ``resolution``).

The output is the input with ``params`` and ``macs`` appended (input columns of those names are
kept as ``params_input``/``macs_input``, and a summary of how they compare is printed). MACs are
per image; for a language model per sequence of ``--seq-len`` tokens (default the space's),
recorded in a ``seq_len`` column, and ``--num-classes`` is the vocabulary size.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from nas.arch_table import arch_columns, archs_of_rows, read_rows
from nas.cli import UsageError
from nas.counting import count_many
from nas.registry import create_space
from nas.rundir import atomic_write_text
from nas.sequence import is_sequence_space, sequence_length
from nas.space import SearchSpace

COUNTED = ("params", "macs")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``stats`` verb."""
    p = sub.add_parser(
        "stats",
        help="count params and MACs of the architectures in a CSV",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "example: nas stats --space ofa_mbv3_w1.0 "
            "--archs ../shared/data/ofa_mobilenet_v3/dynast_imagenet_subnets.csv --out counts.csv"
        ),
    )
    p.add_argument("--space", required=True, help="registered search space (see 'nas spaces')")
    p.add_argument("--archs", required=True, type=Path, help="CSV file, one architecture a row")
    p.add_argument("--out", type=Path, help="write here (atomically) instead of stdout")
    p.add_argument("--num-classes", type=int, default=None,
                   help="classifier size (default 1000); for a language model its vocabulary "
                   "size (required: e.g. 256 for bytes, 50257 for GPT-2)")
    p.add_argument("--seq-len", type=int, default=None, metavar="N",
                   help="language models: count MACs per sequence of N tokens (default: the "
                   "space's meta seq_len)")
    p.add_argument("--json", action="store_true", help="write JSON records instead of CSV")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    space = create_space(args.space)
    header, rows = read_rows(args.archs)
    columns = arch_columns(space, header)
    parsing = _progress(rows, "parsing", enabled=args.out is not None)
    archs = archs_of_rows(args.archs, space, parsing, columns)
    num_classes, seq_len = _sizes(space, args)
    counts: list[dict[str, int]] = count_many(space, archs, num_classes=num_classes,
                                              seq_len=seq_len)
    added = COUNTED if seq_len is None else (*COUNTED, "seq_len")
    renamed = {c: f"{c}_input" for c in added if c in header}
    out_header = [renamed.get(c, c) for c in header] + list(added)
    length = {} if seq_len is None else {"seq_len": seq_len}
    records = [
        {**{renamed.get(k, k): v for k, v in row.items()}, **c, **length}
        for row, c in zip(rows, counts)
    ]
    text = _format(out_header, records, as_json=args.json)
    if args.out is not None:
        atomic_write_text(args.out, text)
        print(f"wrote {len(records)} rows to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for name in COUNTED:
        if name in renamed:
            print(_compare(name, rows, counts), file=sys.stderr)
    return 0


def _sizes(space: SearchSpace, args: argparse.Namespace) -> tuple[int, int | None]:
    """The classifier width (vocabulary) and the sequence length to count at (``None`` for
    an image space)."""
    if not is_sequence_space(space):
        if args.seq_len is not None:
            raise UsageError(f"--seq-len: space {space.name!r} has no sequence length (its "
                             f"input is images), got {args.seq_len}")
        return (1000 if args.num_classes is None else args.num_classes), None
    if args.num_classes is None:
        raise UsageError(f"space {space.name!r} is a language model: give --num-classes VOCAB, "
                         "its vocabulary size (e.g. 256 for bytes, 50257 for GPT-2)")
    return args.num_classes, sequence_length(space, args.seq_len)


def _format(header: list[str], records: list[dict[str, Any]], *, as_json: bool) -> str:
    if as_json:
        return json.dumps(records, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def _compare(name: str, rows: list[dict[str, str]], counts: list[dict[str, int]]) -> str:
    """One line: how many input values equal ours, and the largest relative deviation."""
    equal, worst, n = 0, 0.0, 0
    for row, c in zip(rows, counts):
        try:
            given = float(row[name])
        except (TypeError, ValueError):
            continue
        n += 1
        equal += given == c[name]
        if given:
            worst = max(worst, abs(c[name] - given) / abs(given))
    return f"{name}: {equal}/{n} equal to the input column, largest deviation {100 * worst:.4f}%"


def _progress(rows: list[dict[str, str]], desc: str, *, enabled: bool) -> Any:
    if not enabled or len(rows) < 2000:
        return rows
    from nas.cli.progress import progress_bar

    return progress_bar(rows, desc=desc, unit="row")
