"""Tables of architectures: the rows of a CSV (published measurements, a user's list) as archs.

An architecture is read from one ``arch`` column (``space.from_json`` of architecture JSON, or
``space.parse`` of a cell string such as NAS-Bench-201's ``|op~0|+|...|``), from Once-for-All
``ks/e/d/r`` columns (``space.from_ofa``) or from one column per dimension. Cells are read as
text, so a table's other columns come back exactly as written (:func:`read_rows`), or typed
by pandas (:func:`read_arch_table`).

Example:
    >>> archs, frame = read_arch_table("nb201.csv", space, ["arch"])
    >>> header, rows = read_rows("subnets.csv")
    >>> archs = archs_of_rows("subnets.csv", space, rows, arch_columns(space, header))
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.errors import ConfigError, MissingFileError
from nas.space import ArchConfig, InvalidArchError, SearchSpace

if TYPE_CHECKING:
    import pandas as pd

OFA_FIELDS = ("ks", "e", "d", "r", "w", "image_size")
MIN_OFA_COLUMNS = 3  # fewer OFA-named columns in a header are not taken as the OFA format

RowReader = Callable[[Mapping[str, Any]], ArchConfig]


def read_rows(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows (``{column: text}``) of CSV ``path``.

    Raises:
        ConfigError: ``path`` is a folder, not UTF-8 text, or has no header row.
        MissingFileError: ``path`` does not exist.
    """
    path = Path(path)
    return _rows(path, _read_text(path))


def arch_columns(space: SearchSpace, header: Sequence[str]) -> list[str]:
    """The columns of ``header`` that hold the architecture: ``arch``, else one per dimension
    of ``space``, else the Once-for-All fields present (at least three).

    Raises:
        ConfigError: none of these forms fits ``header``.
    """
    columns = set(header)
    if "arch" in columns:
        return ["arch"]
    if set(space.names) <= columns:
        return list(space.names)
    present = [f for f in OFA_FIELDS if f in columns]
    if len(present) >= MIN_OFA_COLUMNS:
        return present
    raise ConfigError(
        f"cannot tell the architecture format from the CSV header {list(header)}; expected an "
        f"'arch' column, OFA columns {list(OFA_FIELDS)}, or the space's dimensions "
        f"({', '.join(space.names[:3])}, ...)"
    )


def row_reader(space: SearchSpace, columns: Sequence[str]) -> RowReader:
    """A function ``{column: cell} -> ArchConfig`` reading ``columns`` (cells are text, numbers
    or missing values; see the module doc for the forms)."""
    columns = list(columns)
    if not columns:
        raise ConfigError("no arch column given")
    if set(columns) <= set(OFA_FIELDS):
        return lambda row: space.from_ofa(
            {f: _parse_list(f, text) for f in columns if (text := _text(row[f]))}
        )
    if len(columns) == 1 and columns[0] not in space.names:
        return lambda row: _from_cell(space, columns[0], _text(row[columns[0]]))
    lookups = {c.name: {str(v): v for v in c.values} for c in space.choices}

    def dotted(row: Mapping[str, Any]) -> ArchConfig:
        values: dict[str, Any] = {}
        for name in columns:
            text = _text(row[name])
            lookup = lookups.get(name, {})
            value = lookup.get(text)
            values[name] = lookup.get(_normalise_number(text), text) if value is None else value
        return space.arch(values)

    return dotted


def archs_of_rows(
    path: str | Path,
    space: SearchSpace,
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
) -> list[ArchConfig]:
    """The architecture of every row (``columns`` read by :func:`row_reader`).

    Raises:
        ConfigError: a row does not parse, naming the file, the row and why.
    """
    reader = row_reader(space, columns)
    archs = []
    for i, row in enumerate(rows, start=1):
        try:
            archs.append(reader(row))
        except (InvalidArchError, ValueError, SyntaxError, TypeError) as exc:
            raise ConfigError(f"{path}: row {i} (line {i + 1}): {exc}") from None
    return archs


def read_arch_table(
    path: str | Path, space: SearchSpace, arch_columns: Sequence[str]
) -> tuple[list[ArchConfig], pd.DataFrame]:
    """The architectures of every row of CSV ``path`` and the table itself (typed by pandas).

    Raises:
        ConfigError: a column is missing, or a row does not parse (naming file, row, column).
    """
    import pandas as pd

    path = Path(path)
    text = _read_text(path)
    header, rows = _rows(path, text)
    missing = [c for c in arch_columns if c not in header]
    if missing or not arch_columns:
        raise ConfigError(
            f"{path}: arch column(s) {missing or '(none given)'} not in the table; "
            f"columns are {header}"
        )
    archs = archs_of_rows(path, space, rows, arch_columns)
    try:
        frame = pd.read_csv(io.StringIO(text))
    except ValueError as exc:
        raise ConfigError(f"{path}: not a readable CSV file ({exc})") from None
    return archs, frame


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected a CSV file")
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a UTF-8 text CSV ({exc.reason} at byte {exc.start})"
        ) from None


def _rows(path: Path, text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = list(reader.fieldnames or [])
    if not header:
        raise ConfigError(f"{path}: empty CSV (no header row)")
    return header, list(reader)


def _text(value: Any) -> str:
    """A cell as stripped text ("" when missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    return str(value).strip()


def _from_cell(space: SearchSpace, column: str, text: str) -> ArchConfig:
    """One cell holding architecture JSON or (spaces with ``parse``) a cell string."""
    if not text:
        raise InvalidArchError(f"field {column!r} is empty")
    if text.startswith("{"):
        return space.from_json(text)
    parse = getattr(space, "parse", None)
    if parse is None:
        raise InvalidArchError(
            f"field {column!r} must hold architecture JSON for space {space.name!r}, "
            f"got {text[:40]!r}"
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
    """``"3.0"`` as ``"3"``: a whole number written as a float matches an int choice."""
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else str(number)
