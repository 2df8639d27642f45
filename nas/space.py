"""Search spaces: discrete choices, architecture configs and the operations searchers need.

A :class:`SearchSpace` is an ordered list of :class:`Choice` dimensions with dotted names
(``s3.b1.kernel``, ``s3.depth``, ``resolution``). A dimension may be *conditional*: the blocks
of an elastic stage exist only while the stage's depth reaches them. An :class:`ArchConfig`
holds one value per dimension; inactive dimensions keep a value (so OFA's fixed-length lists
round-trip) but do not change the network, its ``key`` or its encoding.

Example:
    >>> space = SearchSpace("toy", [*stage("s1", depth=[1, 2], block={"kernel": [3, 5]}),
    ...                             choice("resolution", [32, 48])])
    >>> arch = space.sample(np.random.default_rng(0))
    >>> space.validate(arch)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Value = int | float | str
Encoding = Literal["onehot", "ordinal"]


class InvalidArchError(ValueError):
    """An architecture (or its text/dict form) does not belong to a search space."""


@dataclass(frozen=True, kw_only=True)
class Condition:
    """A dimension is active only while ``arch[dim] >= at_least``."""

    dim: str
    at_least: int | float


@dataclass(frozen=True)
class Choice:
    """One discrete dimension of a search space.

    Args:
        name: dotted name, e.g. ``"s2.b0.kernel"``.
        values: the allowed values, in their natural order (ordinal encoding uses it).
        when: the condition under which the dimension is active; ``None`` means always.
    """

    name: str
    values: tuple[Value, ...]
    when: Condition | None = None

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"choice {self.name!r} has no values")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"choice {self.name!r} repeats a value: {self.values}")

    def index(self, value: Any) -> int:
        """Position of ``value`` in :attr:`values`; raises :class:`InvalidArchError`."""
        try:
            return self.values.index(value)
        except ValueError:
            pass
        raise InvalidArchError(
            f"{self.name}: {value!r} is not allowed; allowed values are {list(self.values)}"
        )


def choice(name: str, values: Iterable[Value], *, when: Condition | None = None) -> Choice:
    """A dimension named ``name`` taking one of ``values``."""
    return Choice(name, tuple(values), when)


def stage(
    name: str, *, depth: Sequence[int], block: Mapping[str, Sequence[Value]]
) -> list[Choice]:
    """An elastic stage: ``<name>.depth`` and, per block, the choices of ``block``.

    Block ``i`` (0-based) exists only while the depth is at least ``i + 1``; blocks every
    depth keeps are unconditional.

    Example:
        >>> [c.name for c in stage("s1", depth=[1, 2], block={"kernel": [3, 5]})]
        ['s1.depth', 's1.b0.kernel', 's1.b1.kernel']
    """
    depths = sorted(depth)
    dims = [choice(f"{name}.depth", depths)]
    for i in range(max(depths)):
        when = None if i + 1 <= min(depths) else Condition(dim=f"{name}.depth", at_least=i + 1)
        dims += [choice(f"{name}.b{i}.{key}", values, when=when) for key, values in block.items()]
    return dims


@dataclass(frozen=True)
class ArchConfig:
    """One architecture of a space: a frozen, hashable mapping from dimension to value.

    ``key`` names the *network*: two configs that differ only in inactive dimensions share it.
    Build configs with :meth:`SearchSpace.arch`, which validates them.
    """

    space: str
    items: tuple[tuple[str, Value], ...]
    key: str = field(compare=False, repr=False)
    positions: tuple[int, ...] = field(compare=False, repr=False)
    """Index of each value among its dimension's allowed values (for fast encoding)."""

    def __getitem__(self, name: str) -> Value:
        for dim, value in self.items:
            if dim == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (dim for dim, _ in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, name: str, default: Value | None = None) -> Value | None:
        """The value of ``name``, or ``default``."""
        return self.to_dict().get(name, default)

    def to_dict(self) -> dict[str, Value]:
        """The values as a plain dict, in the space's order."""
        return dict(self.items)

    def to_json(self) -> str:
        """JSON text ``{"space": ..., "arch": {...}}``; read it back with ``space.from_json``."""
        return json.dumps({"space": self.space, "arch": self.to_dict()})

    def replace(self, space: SearchSpace, **changes: Value) -> ArchConfig:
        """A validated copy with some dimensions changed (dotted names via ``**{...}``)."""
        return space.arch({**self.to_dict(), **changes})


class SearchSpace:
    """An ordered set of discrete dimensions and the operations on its architectures.

    Subclasses add format conversions (``from_ofa``/``to_ofa``, ``parse``/``format``); the
    network that realises an architecture is the supernet's business, not the space's.

    Args:
        name: registry name, e.g. ``"ofa_mbv3_w1.0"``.
        choices: the dimensions, in a fixed order (the order of encodings and JSON).
        meta: constants a supernet builder needs (widths, strides...); JSON-serialisable.
    """

    def __init__(
        self, name: str, choices: Sequence[Choice], meta: Mapping[str, Any] | None = None
    ) -> None:
        self.name = name
        self.choices: tuple[Choice, ...] = tuple(choices)
        self.meta: dict[str, Any] = dict(meta or {})
        self._by_name = {c.name: c for c in self.choices}
        if len(self._by_name) != len(self.choices):
            raise ValueError(f"space {name!r} repeats a dimension name")
        for c in self.choices:
            if c.when is not None and c.when.dim not in self._by_name:
                raise ValueError(f"{c.name} depends on unknown dimension {c.when.dim!r}")
        self._offsets = np.cumsum([0] + [len(c.values) for c in self.choices])
        self._sizes = np.array([len(c.values) for c in self.choices], dtype=np.int64)
        names = [c.name for c in self.choices]
        # (dimension, parent dimension, smallest parent position that activates it)
        self._conditional = [
            (
                i,
                names.index(c.when.dim),
                next(
                    (
                        j
                        for j, v in enumerate(self._by_name[c.when.dim].values)
                        if _at_least(v, c.when.at_least)
                    ),
                    len(self._by_name[c.when.dim].values),
                ),
            )
            for i, c in enumerate(self.choices)
            if c.when is not None
        ]

    # ----------------------------------------------------------------- introspection
    @property
    def names(self) -> tuple[str, ...]:
        """Dimension names in order."""
        return tuple(c.name for c in self.choices)

    def __getitem__(self, name: str) -> Choice:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"space {self.name!r} has no dimension {name!r}") from None

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, {len(self.choices)} dims, {self.size():.3g} archs)"

    def fingerprint(self) -> str:
        """A hash of the dimensions and meta: loaders refuse artefacts of another space."""
        payload = json.dumps(self.to_spec(), sort_keys=True, default=str)
        return hashlib.sha1(payload.encode()).hexdigest()[:16]

    def to_spec(self) -> dict[str, Any]:
        """A JSON-able description of the space (``space.json`` in a run directory)."""
        return {
            "name": self.name,
            "choices": [
                {
                    "name": c.name,
                    "values": list(c.values),
                    "when": None if c.when is None else [c.when.dim, c.when.at_least],
                }
                for c in self.choices
            ],
            "meta": self.meta,
        }

    def is_active(self, arch: Mapping[str, Any] | ArchConfig, name: str) -> bool:
        """Whether dimension ``name`` changes the network of ``arch``."""
        when = self._by_name[name].when
        return when is None or _at_least(arch[when.dim], when.at_least)

    def size(self) -> int:
        """The number of distinct networks (inactive dimensions do not count)."""
        children: dict[int, list[tuple[int, int]]] = {}
        for i, parent, first_active in self._conditional:
            children.setdefault(parent, []).append((i, first_active))
        conditional = {i for i, _, _ in self._conditional}
        total = 1
        for p, c in enumerate(self.choices):
            if p in conditional:
                continue
            kids = children.get(p, [])
            total *= sum(
                math.prod(int(self._sizes[i]) for i, first in kids if j >= first)
                for j in range(len(c.values))
            )
        return total

    # ----------------------------------------------------------------- construction
    def arch(self, values: Mapping[str, Any]) -> ArchConfig:
        """A validated :class:`ArchConfig` from a ``{dimension: value}`` mapping.

        Raises:
            InvalidArchError: a dimension is missing or unknown, or a value is not allowed.
        """
        if not isinstance(values, Mapping):
            raise InvalidArchError(
                f"an architecture of {self.name!r} is a mapping of dimension to value, "
                f"got {type(values).__name__}"
            )
        missing = [n for n in self.names if n not in values]
        extra = [n for n in values if n not in self._by_name]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing dimensions {missing[:5]}{'...' if len(missing) > 5 else ''}")
            if extra:
                parts.append(f"unknown dimensions {extra[:5]}{'...' if len(extra) > 5 else ''}")
            raise InvalidArchError(f"space {self.name!r}: " + "; ".join(parts))
        return self._make([c.index(_plain(values[c.name])) for c in self.choices])

    def _make(self, positions: Sequence[int]) -> ArchConfig:
        pos = tuple(int(i) for i in positions)
        items = tuple((c.name, c.values[i]) for c, i in zip(self.choices, pos))
        masked = list(pos)
        for i, parent, first_active in self._conditional:
            if pos[parent] < first_active:
                masked[i] = -1
        return ArchConfig(self.name, items, _digest(masked), pos)

    def from_index_matrix(self, rows: np.ndarray) -> list[ArchConfig]:
        """Many architectures from an integer matrix (n, dims) of value positions, vectorised."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 2 or rows.shape[1] != len(self.choices):
            raise InvalidArchError(
                f"space {self.name!r} needs an index matrix of shape (n, {len(self.choices)}), "
                f"got {rows.shape}"
            )
        bad = (rows < 0) | (rows >= self._sizes)
        if bad.any():
            r, i = map(int, np.argwhere(bad)[0])
            raise InvalidArchError(
                f"{self.choices[i].name}: index {rows[r, i]} is out of range; "
                f"allowed 0..{self._sizes[i] - 1}"
            )
        masked = rows.copy()
        for i, parent, first_active in self._conditional:
            masked[rows[:, parent] < first_active, i] = -1
        names = self.names
        columns = [
            np.asarray(c.values, dtype=object)[rows[:, i]] for i, c in enumerate(self.choices)
        ]
        packed = (masked + 1).astype(np.uint8)
        return [
            ArchConfig(self.name, tuple(zip(names, vals)), _hash(key_bytes), tuple(row))
            for row, vals, key_bytes in zip(rows.tolist(), zip(*columns), packed)
        ]

    def validate(self, arch: ArchConfig | Mapping[str, Any]) -> None:
        """Raise :class:`InvalidArchError` unless ``arch`` belongs to this space."""
        if isinstance(arch, ArchConfig) and arch.space != self.name:
            raise InvalidArchError(
                f"architecture belongs to space {arch.space!r}, not {self.name!r}"
            )
        self.arch(arch.to_dict() if isinstance(arch, ArchConfig) else arch)

    def from_json(self, text: str | Mapping[str, Any]) -> ArchConfig:
        """Read :meth:`ArchConfig.to_json` output (text or parsed dict) back."""
        try:
            data = json.loads(text) if isinstance(text, str) else dict(text)
        except json.JSONDecodeError as exc:
            raise InvalidArchError(f"architecture JSON does not parse: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidArchError("architecture JSON must be an object")
        if "arch" in data:
            if data.get("space", self.name) != self.name:
                raise InvalidArchError(
                    f"architecture JSON is for space {data.get('space')!r}, not {self.name!r}"
                )
            data = data["arch"]
        return self.arch(data)

    def from_indices(self, row: Sequence[int]) -> ArchConfig:
        """The architecture whose dimension ``i`` takes ``values[row[i]]``."""
        if len(row) != len(self.choices):
            raise InvalidArchError(
                f"space {self.name!r} has {len(self.choices)} dimensions, got {len(row)} indices"
            )
        for c, i in zip(self.choices, row):
            if not 0 <= i < len(c.values):
                raise InvalidArchError(
                    f"{c.name}: index {i} is out of range; allowed 0..{len(c.values) - 1}"
                )
        return self._make(row)

    def largest(self) -> ArchConfig:
        """Every dimension at its last (largest) value."""
        return self.from_indices([len(c.values) - 1 for c in self.choices])

    def smallest(self) -> ArchConfig:
        """Every dimension at its first (smallest) value."""
        return self.from_indices([0] * len(self.choices))

    # ----------------------------------------------------------------- random operators
    def sample(self, rng: np.random.Generator) -> ArchConfig:
        """A uniformly random value per dimension."""
        return self.from_indices([int(rng.integers(len(c.values))) for c in self.choices])

    def sample_many(self, n: int, rng: np.random.Generator) -> list[ArchConfig]:
        """``n`` random architectures, drawn in one vectorised call."""
        rows = (rng.random((n, len(self._sizes))) * self._sizes).astype(np.int64)
        return self.from_index_matrix(rows)

    def mutate(self, arch: ArchConfig, rng: np.random.Generator, prob: float = 0.1) -> ArchConfig:
        """Resample each dimension with probability ``prob``."""
        row = self.indices([arch], fill_inactive=False)[0]
        for i, c in enumerate(self.choices):
            if rng.random() < prob:
                row[i] = rng.integers(len(c.values))
        return self.from_indices(row)

    def crossover(
        self, a: ArchConfig, b: ArchConfig, rng: np.random.Generator
    ) -> ArchConfig:
        """Each dimension from ``a`` or ``b`` with equal probability."""
        rows = self.indices([a, b], fill_inactive=False)
        pick = rng.random(len(self.choices)) < 0.5
        return self.from_indices(np.where(pick, rows[0], rows[1]))

    def neighbours(self, arch: ArchConfig) -> list[ArchConfig]:
        """Every architecture that differs from ``arch`` in one active dimension."""
        row = self.indices([arch], fill_inactive=False)[0]
        out = []
        for i, c in enumerate(self.choices):
            if not self.is_active(arch, c.name):
                continue
            for j in range(len(c.values)):
                if j != row[i]:
                    other = row.copy()
                    other[i] = j
                    out.append(self.from_indices(other))
        return out

    # ----------------------------------------------------------------- encoding
    def indices(self, archs: Sequence[ArchConfig], *, fill_inactive: bool = True) -> np.ndarray:
        """Integer matrix (n, dims) of value positions; inactive ones -1 if ``fill_inactive``."""
        if any(a.space != self.name for a in archs):
            raise InvalidArchError(f"an architecture does not belong to space {self.name!r}")
        out = np.array([a.positions for a in archs], dtype=np.int64).reshape(
            len(archs), len(self.choices)
        )
        return self.mask_inactive(out) if fill_inactive else out

    def mask_inactive(self, idx: np.ndarray) -> np.ndarray:
        """Set the positions of inactive dimensions in index matrix ``idx`` to -1, in place;
        returns ``idx``."""
        for i, parent, first_active in self._conditional:
            idx[idx[:, parent] < first_active, i] = -1
        return idx

    def encode(self, archs: Sequence[ArchConfig], encoding: Encoding = "onehot") -> np.ndarray:
        """Float matrix, one row per architecture; inactive dimensions are zero.

        ``onehot``: one column per (dimension, value). ``ordinal``: one column per dimension,
        the value's position scaled to (0, 1] (zero when inactive).
        """
        return self.encode_indices(self.indices(archs), encoding)

    def encode_indices(self, idx: np.ndarray, encoding: Encoding = "onehot") -> np.ndarray:
        """:meth:`encode` of an :meth:`indices` matrix (inactive positions -1), vectorised."""
        if encoding == "ordinal":
            return np.where(idx >= 0, (idx + 1) / self._sizes, 0.0)
        if encoding != "onehot":
            raise ValueError(f"encoding must be 'onehot' or 'ordinal', got {encoding!r}")
        out = np.zeros((idx.shape[0], int(self._offsets[-1])), dtype=np.float64)
        rows, cols = np.nonzero(idx >= 0)
        out[rows, self._offsets[cols] + idx[rows, cols]] = 1.0
        return out

    def encoding_names(self) -> list[str]:
        """Column names of the one-hot encoding: ``<dim>=<value>``."""
        return [f"{c.name}={v}" for c in self.choices for v in c.values]

    # ----------------------------------------------------------------- foreign formats
    def from_ofa(self, config: Mapping[str, Any]) -> ArchConfig:
        """Convert Once-for-All's dict format; spaces without one raise."""
        raise InvalidArchError(f"space {self.name!r} has no Once-for-All dict format")

    def to_ofa(self, arch: ArchConfig) -> dict[str, Any]:
        """Convert to Once-for-All's dict format; spaces without one raise."""
        raise InvalidArchError(f"space {self.name!r} has no Once-for-All dict format")


def _digest(masked_positions: Sequence[int]) -> str:
    """The network key: a short hash of the value positions with inactive ones as -1."""
    return _hash(bytes(p + 1 for p in masked_positions))


def _hash(data: bytes | np.ndarray) -> str:
    return hashlib.blake2b(bytes(data), digest_size=6).hexdigest()


def _at_least(value: Value, threshold: float) -> bool:
    if isinstance(value, str):
        raise TypeError(f"a condition needs a numeric dimension, got value {value!r}")
    return value >= threshold


def _plain(value: Any) -> Any:
    """numpy scalars compare like Python ones but do not hash into JSON; unwrap them."""
    return value.item() if isinstance(value, np.generic) else value
