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
import ast
import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.cli import UsageError
from nas.counting import count_many
from nas.registry import create_space
from nas.rundir import atomic_write_text
from nas.sequence import is_sequence_space, sequence_length
from nas.space import ArchConfig, InvalidArchError, SearchSpace

OFA_FIELDS = ("ks", "e", "d", "w", "r", "image_size")
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
    header, rows = _read_csv(args.archs)
    reader = _row_reader(space, header)
    archs = []
    for i, row in enumerate(_progress(rows, "parsing", enabled=args.out is not None), start=1):
        try:
            archs.append(reader(row))
        except (InvalidArchError, ValueError, SyntaxError) as exc:
            raise UsageError(f"{args.archs}: row {i} (line {i + 1}): {exc}") from None
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


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; --archs takes a CSV file")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not a UTF-8 text CSV ({exc.reason} at byte {exc.start})"
        ) from None
    if not header:
        raise UsageError(f"{path}: empty CSV (no header row)")
    return header, rows


def _row_reader(space: SearchSpace, header: Sequence[str]) -> Any:
    """A function row -> ArchConfig for the form of ``header``."""
    columns = set(header)
    if "arch" in columns:
        return lambda row: _from_arch_cell(space, row["arch"])
    if set(space.names) <= columns:
        lookups = [(c.name, {str(v): v for v in c.values}) for c in space.choices]

        def dotted(row: Mapping[str, str]) -> ArchConfig:
            values = {}
            for name, lookup in lookups:
                text = (row[name] or "").strip()
                value = lookup.get(text)
                if value is None:
                    value = lookup.get(_normalise_number(text), text)
                values[name] = value
            return space.arch(values)

        return dotted
    present = [f for f in OFA_FIELDS if f in columns]
    if len(present) >= 3:
        return lambda row: space.from_ofa(
            {f: _parse_list(f, row[f]) for f in present if row[f] not in (None, "")}
        )
    raise UsageError(
        f"cannot tell the architecture format from the CSV header {list(header)}; expected an "
        f"'arch' column, OFA columns {list(OFA_FIELDS)}, or the space's dimensions "
        f"({', '.join(space.names[:3])}, ...)"
    )


def _from_arch_cell(space: SearchSpace, text: str | None) -> ArchConfig:
    text = (text or "").strip()
    if not text:
        raise InvalidArchError("field 'arch' is empty")
    if text.startswith("{"):
        return space.from_json(text)
    parse = getattr(space, "parse", None)
    if parse is None:
        raise InvalidArchError(
            f"field 'arch' must hold architecture JSON for space {space.name!r}, got {text[:40]!r}"
        )
    result: ArchConfig = parse(text)
    return result


def _parse_list(field: str, text: str) -> Any:
    """``"[3, 5]"``, ``"[224]"`` or ``"224"`` as a Python value (JSON or Python literal)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise InvalidArchError(f"field {field!r}: cannot read {text[:40]!r} as a list") from None


def _normalise_number(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else str(number)


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
