"""Tables of architectures: the rows of a CSV (published measurements, a user's list) as archs.

An architecture is read from one cell-string column (``space.parse``, e.g. NAS-Bench-201's
``|op~0|+|...|``), from Once-for-All ``ks/e/d/r`` columns (``space.from_ofa``), from one JSON
column (``space.from_json``) or from one column per dimension.

Example:
    >>> archs, frame = read_arch_table("nb201.csv", space, ["arch"])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.errors import ConfigError, MissingFileError
from nas.space import ArchConfig, InvalidArchError, SearchSpace

if TYPE_CHECKING:
    import pandas as pd

OFA_FIELDS = ("ks", "e", "d", "r", "w", "image_size")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value.item() if isinstance(value, np.generic) else value


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected a CSV file")
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    try:
        return pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable CSV file ({exc})") from None


def read_arch_table(
    path: str | Path, space: SearchSpace, arch_columns: Sequence[str]
) -> tuple[list[ArchConfig], pd.DataFrame]:
    """The architectures of every row of CSV ``path`` and the table itself.

    Raises:
        ConfigError: a column is missing, or a row does not parse (naming file, row, column).
    """
    path = Path(path)
    frame = _read_csv(path)
    missing = [c for c in arch_columns if c not in frame.columns]
    if missing or not arch_columns:
        raise ConfigError(
            f"{path}: arch column(s) {missing or '(none given)'} not in the table; "
            f"columns are {list(frame.columns)}"
        )
    archs = []
    for row, values in enumerate(frame[list(arch_columns)].itertuples(index=False), start=2):
        try:
            archs.append(_arch_of_row(space, list(arch_columns), [_cell(v) for v in values]))
        except (InvalidArchError, json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{path}: line {row}, columns {list(arch_columns)} do not parse as an "
                f"architecture of {space.name!r}: {exc}"
            ) from None
    return archs, frame


def _arch_of_row(space: SearchSpace, columns: list[str], values: list[Any]) -> ArchConfig:
    if len(columns) == 1 and isinstance(values[0], str) and hasattr(space, "parse"):
        arch: ArchConfig = space.parse(values[0])
        return arch
    if set(columns) <= set(OFA_FIELDS):
        return space.from_ofa(dict(zip(columns, values)))
    if len(columns) == 1 and isinstance(values[0], dict):
        return space.from_json(values[0])
    return space.arch(dict(zip(columns, values)))
