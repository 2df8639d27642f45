""":class:`SearchSpace` and :class:`ArchConfig`: a space's architectures and their operations.

Rows-to-architectures is written once (:meth:`SearchSpace.from_index_matrix`, vectorised;
:meth:`~SearchSpace.from_indices` and every constructor call it) and so is inactive-dimension
masking (:meth:`SearchSpace.mask_inactive`, see :mod:`nas.space.conditions`).

Example:
    >>> space = SearchSpace("toy", [*stage("s1", depth=[1, 2], block={"kernel": [3, 5]}),
    ...                             choice("resolution", [32, 48])])
    >>> arch = space.sample(np.random.default_rng(0))
    >>> space.validate(arch)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from nas.errors import ConfigError, InvalidArchError
from nas.space.choice import Choice, Value
from nas.space.conditions import Conditions

Encoding = Literal["onehot", "ordinal"]


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
            raise ConfigError(f"space {name!r} repeats a dimension name")
        self._conditions = Conditions(self.choices)
        self._sizes = self._conditions.sizes
        self._offsets = np.cumsum([0, *self._sizes.tolist()])
        # values[i, j]: value j of dimension i, as the Python object given (one gather per batch)
        self._values = np.empty((len(self.choices), int(self._sizes.max(initial=1))), object)
        for i, c in enumerate(self.choices):
            self._values[i, : len(c.values)] = c.values
        self._dims = np.arange(len(self.choices))
        self._id_weights = _network_id_weights(self._sizes)

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
        return when is None or (when.holds(arch[when.dim]) and self.is_active(arch, when.dim))

    def size(self) -> int:
        """The number of distinct networks (inactive dimensions do not count)."""
        return self._conditions.count_networks()

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
        row = [c.index(_plain(values[c.name])) for c in self.choices]
        return self._archs(np.array([row], dtype=np.int64))[0]

    def from_index_matrix(self, rows: np.ndarray) -> list[ArchConfig]:
        """Many architectures from an integer matrix (n, dims) of value positions, vectorised."""
        rows = self._index_matrix(rows)
        bad = (rows < 0) | (rows >= self._sizes)
        if bad.any():
            r, i = map(int, np.argwhere(bad)[0])
            raise InvalidArchError(
                f"{self.choices[i].name}: index {rows[r, i]} is out of range; "
                f"allowed 0..{self._sizes[i] - 1}"
            )
        return self._archs(rows)

    def _index_matrix(self, rows: np.ndarray, *, copy: bool = False) -> np.ndarray:
        """``rows`` as an int64 matrix; raises unless it has one column per dimension."""
        out = np.array(rows, dtype=np.int64, copy=True) if copy else np.asarray(rows, np.int64)
        if out.ndim != 2 or out.shape[1] != len(self.choices):
            raise InvalidArchError(
                f"space {self.name!r} needs an index matrix of shape (n, {len(self.choices)}), "
                f"got {out.shape}"
            )
        return out

    def from_indices(self, row: Sequence[int]) -> ArchConfig:
        """The architecture whose dimension ``i`` takes ``values[row[i]]``."""
        if len(row) != len(self.choices):
            raise InvalidArchError(
                f"space {self.name!r} has {len(self.choices)} dimensions, got {len(row)} indices"
            )
        return self.from_index_matrix(np.asarray(row, dtype=np.int64).reshape(1, -1))[0]

    def _archs(self, rows: np.ndarray) -> list[ArchConfig]:
        """Configs of a validated index matrix; keys hash the positions with inactive ones -1."""
        d = rows.shape[1]
        packed = (self.mask_inactive(rows.copy()) + 1).astype(np.uint8).tobytes()
        values = self._values[self._dims, rows].tolist()
        names = self.names
        return [
            ArchConfig(self.name, tuple(zip(names, vals)), _hash(packed[r * d : (r + 1) * d]), pos)
            for r, (vals, pos) in enumerate(zip(values, map(tuple, rows.tolist())))
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
        return self.from_index_matrix(self.neighbour_indices(row))

    def neighbour_indices(self, row: np.ndarray) -> np.ndarray:
        """:meth:`neighbours` of one index row (inactive positions kept as they are): every
        row that differs from ``row`` in one active dimension, dimension by dimension.

        Example:
            >>> space.neighbour_indices(space.indices([arch], fill_inactive=False)[0])
        """
        row = self._index_matrix(np.asarray(row)[None, :], copy=True)
        active = self.mask_inactive(row.copy())[0] >= 0
        dims = np.repeat(np.flatnonzero(active), self._sizes[active])
        values = np.concatenate([np.zeros(0, np.int64), *map(np.arange, self._sizes[active])])
        keep = values != row[0, dims]
        out = np.repeat(row, int(keep.sum()), axis=0)
        out[np.arange(len(out)), dims[keep]] = values[keep]
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
        return self._conditions.mask(idx)

    def network_ids(self, rows: np.ndarray) -> np.ndarray:
        """One ``int64`` per index row naming its network (inactive dimensions ignored).

        Exact (mixed radix) when the space is small enough, else a fixed 64-bit hash.
        """
        canon = self.mask_inactive(self._index_matrix(rows, copy=True)) + 1
        with np.errstate(over="ignore"):
            return canon @ self._id_weights  # type: ignore[no-any-return]

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
            raise ConfigError(f"encoding must be 'onehot' or 'ordinal', got {encoding!r}")
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


def _network_id_weights(sizes: np.ndarray) -> np.ndarray:
    """Weights of :meth:`SearchSpace.network_ids`: mixed radix (masked rows hold -1, so each
    dimension has ``size + 1`` states) where exact in 62 bits, else a fixed odd 64-bit hash
    (collisions ~ n^2 / 2^65: 1e-10 at 50,000 networks)."""
    radix = sizes + 1
    if float(np.prod(radix.astype(np.float64))) < 2.0**62:
        return np.cumprod(np.concatenate([[1], radix[:-1]])).astype(np.int64)
    rng = np.random.default_rng(0x5EED)
    return rng.integers(1, 2**63 - 1, size=len(sizes), dtype=np.int64) | 1


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=6).hexdigest()


def _plain(value: Any) -> Any:
    """numpy scalars compare like Python ones but do not hash into JSON; unwrap them."""
    return value.item() if isinstance(value, np.generic) else value
