"""Which dimensions of an architecture are active: a space's conditions, compiled once.

A conditional dimension is active while its parent's value meets the condition and the parent
is active itself (a block's settings vanish with the block, at any depth of nesting).
:meth:`Conditions.mask` decides that for a whole index matrix with one gather, plus one step
per nesting level; it is the one implementation every user of masking calls (through
:meth:`nas.space.SearchSpace.mask_inactive`).

Example:
    >>> conditions = Conditions(space.choices)
    >>> conditions.mask(rows)          # inactive positions set to -1, in place
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nas.errors import ConfigError
from nas.space.choice import Choice


class Conditions:
    """The conditions of ``choices`` as arrays.

    Args:
        choices: the dimensions of a space, in order; every condition names one of them.

    Raises:
        ValueError: a condition names an unknown dimension, or conditions form a cycle.
    """

    def __init__(self, choices: Sequence[Choice]) -> None:
        names = [c.name for c in choices]
        for c in choices:
            if c.when is not None and c.when.dim not in names:
                raise ConfigError(f"{c.name} depends on unknown dimension {c.when.dim!r}")
        conditional = [
            (i, names.index(c.when.dim)) for i, c in enumerate(choices) if c.when is not None
        ]
        self.sizes = np.array([len(c.values) for c in choices], dtype=np.int64)
        self.dims = np.array([i for i, _ in conditional], dtype=np.int64)
        self.parents = np.array([p for _, p in conditional], dtype=np.int64)
        # allowed[j, v]: parent value v activates condition j; the last column (index -1)
        # stays False, so an inactive parent (-1) leaves its children inactive
        width = max((int(self.sizes[p]) for _, p in conditional), default=0) + 1
        self._allowed = np.zeros((len(conditional), width), dtype=bool)
        for j, (i, p) in enumerate(conditional):
            when = choices[i].when
            assert when is not None
            self._allowed[j, : self.sizes[p]] = [when.holds(v) for v in choices[p].values]
        self._rows = np.arange(len(conditional))
        self._nested = _nesting_order(self.dims, self.parents, names)

    def mask(self, idx: np.ndarray) -> np.ndarray:
        """Set the positions of inactive dimensions of index matrix ``idx`` to -1, in place;
        returns ``idx``. Positions already -1 count as inactive."""
        if len(self.dims) and len(idx):
            active = self._allowed[self._rows, idx[:, self.parents]]
            for j, parent in self._nested:
                active[:, j] &= active[:, parent]
            sub = idx[:, self.dims]
            sub[~active] = -1
            idx[:, self.dims] = sub
        return idx

    def count_networks(self) -> int:
        """The number of distinct networks: settings of inactive dimensions do not count."""
        children: dict[int, list[int]] = {}
        for j, parent in enumerate(self.parents.tolist()):
            children.setdefault(parent, []).append(j)

        def settings(dim: int) -> int:  # of ``dim`` and every dimension it conditions
            kids = children.get(dim, [])
            counts = [settings(int(self.dims[j])) for j in kids]
            return sum(
                math.prod(n for j, n in zip(kids, counts) if self._allowed[j, v])
                for v in range(int(self.sizes[dim]))
            )

        conditional = set(self.dims.tolist())
        return math.prod(settings(d) for d in range(len(self.sizes)) if d not in conditional)


def _nesting_order(
    dims: np.ndarray, parents: np.ndarray, names: Sequence[str]
) -> list[tuple[int, int]]:
    """``(condition, parent's condition)`` for each condition whose parent is conditional
    itself, shallowest first (so each parent's activity is final before its children's)."""
    of_dim = {int(d): j for j, d in enumerate(dims)}
    nested = []
    for j, parent in enumerate(parents.tolist()):
        if parent not in of_dim:
            continue
        level, k = 0, j
        while int(parents[k]) in of_dim:
            k, level = of_dim[int(parents[k])], level + 1
            if level > len(dims):
                raise ConfigError(f"{names[int(dims[j])]}: its conditions form a cycle")
        nested.append((level, j, of_dim[parent]))
    return [(j, parent) for _, j, parent in sorted(nested)]
