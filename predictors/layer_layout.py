"""A space's layers as *slots* with key tables: how lookup-table sums are vectorised.

The slots are the layers of the network with every dimension active, each with the
dimensions its key depends on and a key per combination of their values. A slot is present
when all of its dimensions are active (a block's layers vanish with the block). The structure
is found by probing the space's layers function and checked against it on random networks
(same keys, same order); a space it does not fit (e.g. a dimension that adds layers without
being a condition of others) gets ``None``, and its users keep the per-architecture path.

Example:
    >>> layout = compile_layout(space, layers, num_classes=1000)
    >>> pos = layout.slot_indices(space.indices(archs), offsets, absent)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.space import ArchConfig, SearchSpace

LayersFn = Callable[[SearchSpace, ArchConfig, int], Sequence[Any]]


@dataclass(frozen=True)
class LayerLayout:
    """A space's layers as slots with key tables (see :func:`compile_layout`).

    Attributes:
        dims: ``(groups, m)`` the dimensions each group of slots depends on (padded with 0).
        strides: ``(groups, m)`` their row-major strides in the group's table (0 for padding):
            a group's flat table index is ``sum(idx[:, dims] * strides)``.
        conditional: ``(groups, m)`` which of ``dims`` are conditional: the group is present
            when none of those is inactive (-1).
        slot_group: ``(slots,)`` the group of each slot, in layer order.
        keys: per slot, the ``LayerSpec.key`` at each flat index of its group's table.
    """

    dims: np.ndarray
    strides: np.ndarray
    conditional: np.ndarray
    slot_group: np.ndarray
    keys: tuple[tuple[str, ...], ...]

    def slot_indices(self, idx: np.ndarray, offsets: np.ndarray, absent: int) -> np.ndarray:
        """``(n, slots)`` positions in the concatenated slot tables (``absent`` if not present).

        ``idx``: a validated index matrix (inactive positions -1); ``offsets``: where each
        slot's table starts in the concatenation.
        """
        at = idx[:, self.dims]  # (n, groups, m): a few small gathers, no matrix product
        flat = (np.maximum(at, 0) * self.strides).sum(axis=2)
        present = ~((at < 0) & self.conditional).any(axis=2)
        g = self.slot_group
        return np.where(present[:, g], flat[:, g] + offsets, absent)


_LAYOUTS: dict[tuple[str, Any, int], LayerLayout | None] = {}
_MAX_LAYOUTS = 16  # compiled layouts kept (oldest dropped first): one per space and head width
_MAX_PROBES = 5_000  # layers() calls a compilation may make (~90 µs each: ~0.5 s at most)


def compile_layout(
    space: SearchSpace, layers: LayersFn, num_classes: int, *, check: int = 200
) -> LayerLayout | None:
    """The slot structure of ``space``'s layers, or ``None`` when it does not fit (cached).

    Probes ``layers`` on networks with every dimension active: a slot depends on the
    dimensions whose change changes its key. Each group of slots with the same dimensions gets
    a key per combination of their values, and the result must reproduce ``layers`` (keys and
    order) on ``check`` random networks, the smallest and the largest. The cache is keyed by
    the space's fingerprint, ``layers`` and ``num_classes``, and bounded.
    """
    cache_key = (space.fingerprint(), layers, int(num_classes))
    if cache_key not in _LAYOUTS:
        if len(_LAYOUTS) >= _MAX_LAYOUTS:
            del _LAYOUTS[next(iter(_LAYOUTS))]
        _LAYOUTS[cache_key] = _Compiler(space, layers, int(num_classes)).run(check)
    return _LAYOUTS[cache_key]


class _Compiler:
    """One run of :func:`compile_layout`: probes ``layers`` on index rows of ``space``."""

    def __init__(self, space: SearchSpace, layers: LayersFn, num_classes: int) -> None:
        self.space = space
        self.layers = layers
        self.num_classes = num_classes
        choices = space.choices
        self.sizes = np.array([len(c.values) for c in choices], dtype=np.int64)
        self.parents = {space.names.index(c.when.dim) for c in choices if c.when is not None}
        self.conditional = np.array([c.when is not None for c in choices])

    def keys(self, row: np.ndarray) -> list[str]:
        """The layer keys of the network of index row ``row``, in order."""
        arch = self.space.from_indices(row.tolist())
        return [spec.key for spec in self.layers(self.space, arch, self.num_classes)]

    def run(self, check: int) -> LayerLayout | None:
        """The layout, or ``None`` where the space does not fit it (see module docstring)."""
        rng = np.random.default_rng(0)
        bases = self._bases(rng)
        if bases is None:
            return None
        ref = [self.keys(row) for row in bases]
        n_slots = len(ref[0])
        if n_slots == 0 or any(len(k) != n_slots for k in ref):
            return None
        deps = self._dependencies(bases, ref)
        if deps is None:
            return None
        group_dims = sorted({tuple(sorted(d)) for d in deps})
        slot_group = np.array([group_dims.index(tuple(sorted(d))) for d in deps], dtype=np.int64)
        tables = _Tables(self, group_dims, slot_group)
        if not tables.fill(bases[0]):
            return None
        layout = tables.layout(self.conditional)
        return layout if self._reproduces(layout, rng, check) else None

    def _bases(self, rng: np.random.Generator) -> list[np.ndarray] | None:
        """Three random rows with every dimension active (``None`` if that cannot be)."""
        bases = []
        for _ in range(3):
            row = rng.integers(0, self.sizes)
            for i in self.parents:  # the largest value activates every dimension it conditions
                row[i] = int(np.argmax(np.asarray(self.space.choices[i].values, dtype=float)))
            if not (self.space.mask_inactive(row[None, :].copy()) >= 0).all():
                return None
            bases.append(row)
        return bases

    def _dependencies(
        self, bases: list[np.ndarray], ref: list[list[str]]
    ) -> list[set[int]] | None:
        """Per slot, the dimensions whose change changes its key (``None``: a dimension adds
        layers without being a condition of others)."""
        n_slots = len(ref[0])
        deps: list[set[int]] = [set() for _ in range(n_slots)]
        for row, k0 in zip(bases, ref):
            for i in range(len(self.sizes)):
                if i in self.parents:
                    continue
                for v in range(int(self.sizes[i])):
                    if v == row[i]:
                        continue
                    probe = row.copy()
                    probe[i] = v
                    k = self.keys(probe)
                    if len(k) != n_slots:
                        return None
                    for p in range(n_slots):
                        if k[p] != k0[p]:
                            deps[p].add(i)
        return deps

    def _reproduces(self, layout: LayerLayout, rng: np.random.Generator, check: int) -> bool:
        """Whether ``layout`` gives every checked network's layers, in order."""
        space = self.space
        archs = [space.smallest(), space.largest(), *space.sample_many(check, rng)]
        flat_keys = np.array([k for t in layout.keys for k in t] + [""], dtype=object)
        offsets = np.cumsum([0] + [len(t) for t in layout.keys[:-1]])
        pos = layout.slot_indices(space.indices(archs), offsets, len(flat_keys) - 1)
        return all(
            [k for k in flat_keys[row] if k] == self.keys(np.asarray(arch.positions))
            for arch, row in zip(archs, pos)
        )


class _Tables:
    """The key table of every slot, filled by probing (one key per combination of its
    group's dimensions)."""

    def __init__(
        self, compiler: _Compiler, group_dims: list[tuple[int, ...]], slot_group: np.ndarray
    ) -> None:
        sizes = compiler.sizes
        self.compiler = compiler
        self.group_dims = group_dims
        self.slot_group = slot_group
        self.sizes = sizes
        self.table_size = [int(np.prod(sizes[list(d)])) for d in group_dims]
        self.strides = [
            np.cumprod(np.concatenate([[1], sizes[list(d)][1:][::-1]]))[::-1].astype(np.int64)
            if d
            else np.zeros(0, dtype=np.int64)
            for d in group_dims
        ]
        self.table: list[list[str | None]] = [
            [None] * self.table_size[int(g)] for g in slot_group
        ]

    def fill(self, base: np.ndarray) -> bool:
        """Fill every table, probing all groups together or one by one (fewer probes wins);
        ``False`` past :data:`_MAX_PROBES` probes or where a key stays unknown."""
        every = list(range(len(self.group_dims)))
        count = self._dimension_counts(every)
        shared = [d for d, c in count.items() if c > 1]
        own_max = max(
            int(np.prod(self.sizes[[d for d in self.group_dims[g] if count[d] == 1]]))
            for g in every
        )
        together = int(np.prod(self.sizes[shared])) * own_max
        if min(together, sum(self.table_size)) > _MAX_PROBES:
            return False
        if together <= sum(self.table_size):
            self._probe(every, base)
        else:
            for g in every:
                self._probe([g], base)
        return not any(k is None for t in self.table for k in t)

    def layout(self, conditional: np.ndarray) -> LayerLayout:
        """The :class:`LayerLayout` of the filled tables (groups padded to the widest);
        ``conditional``: which dimensions are."""
        n_groups = len(self.group_dims)
        width = max(1, max(len(d) for d in self.group_dims))
        dims = np.zeros((n_groups, width), dtype=np.int64)
        strides = np.zeros((n_groups, width), dtype=np.int64)
        cond = np.zeros((n_groups, width), dtype=bool)
        for g, group in enumerate(self.group_dims):
            dims[g, : len(group)] = group
            strides[g, : len(group)] = self.strides[g]
            cond[g, : len(group)] = conditional[list(group)]
        return LayerLayout(
            dims=dims,
            strides=strides,
            conditional=cond,
            slot_group=self.slot_group,
            keys=tuple(tuple(str(k) for k in t) for t in self.table),
        )

    def _dimension_counts(self, groups: list[int]) -> dict[int, int]:
        """How many of ``groups`` depend on each dimension."""
        count: dict[int, int] = {}
        for g in groups:
            for d in self.group_dims[g]:
                count[d] = count.get(d, 0) + 1
        return count

    def _probe(self, groups: list[int], base: np.ndarray) -> None:
        """Probe ``groups`` together: every combination of their shared dimensions, times
        the largest number of combinations of a group's own ones (walked in parallel)."""
        sizes = self.sizes
        count = self._dimension_counts(groups)
        shared = sorted(d for d, c in count.items() if c > 1)
        own = {g: [d for d in self.group_dims[g] if count[d] == 1] for g in groups}
        n_own = {g: int(np.prod(sizes[own[g]])) for g in groups}
        for combo in itertools.product(*(range(int(sizes[d])) for d in shared)):
            for j in range(max(n_own.values())):
                row = base.copy()
                row[shared] = combo
                for g in groups:
                    if own[g]:
                        row[own[g]] = np.unravel_index(j % n_own[g], tuple(sizes[own[g]]))
                k = self.compiler.keys(row)
                for p in range(len(self.table)):
                    g = int(self.slot_group[p])
                    if g in n_own:
                        dims = list(self.group_dims[g])
                        self.table[p][int(row[dims] @ self.strides[g])] = k[p]
