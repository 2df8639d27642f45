"""Latency from a per-layer lookup table, plus a learned correction for what a sum misses.

The table maps ``LayerSpec.key`` to a layer's median latency (ms) measured alone (see
``nas.hardware.build_lookup_table``). An architecture's raw estimate is the sum over its layers.
Timing layers one by one misses per-call overheads, cache effects between layers and the
glue a whole network runs; :meth:`LookupTablePredictor.fit` learns a robust linear correction
``a · sum + b · n_layers + c`` from a few whole networks measured end to end. Unfitted, the
predictor returns the plain sum.

Predictions are vectorised: on first use the space's layer structure is compiled once
(:func:`compile_layout`, cached per space, layers function and ``num_classes``) into layer
*slots*: the layers of the network with every dimension active, each with the dimensions its
key depends on and a key per combination of their values. A slot is present when all of its
dimensions are active (a block's layers vanish with the block). The table then becomes one
array of milliseconds per slot, and an index matrix's sums are gathers and one sequential
``cumsum`` in layer order, the same additions as the per-layer loop (:meth:`layer_sum`).
The structure is found by probing the layers function and checked against it on random
networks (same keys, same order); a space it does not fit (e.g. a dimension that adds layers
without being a condition of others) keeps the per-architecture path.

Example:
    >>> p = LookupTablePredictor(space, table=profile.latency[space.name].lut)
    >>> p.fit(measured_archs, measured_ms)        # optional correction
    >>> p.predict(space.sample_many(1000, rng))
    >>> p.predict_indices(space.indices(archs))   # the same numbers, ~1 µs a network
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor

from nas.registry import REGISTRY
from nas.space import ArchConfig, SearchSpace
from predictors.base import BasePredictor, State
from predictors.encoding import arch_indices

LayersFn = Callable[[SearchSpace, ArchConfig, int], Sequence[Any]]


class UnknownLayerError(ValueError):
    """An architecture has a layer the lookup table does not list."""


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
_MAX_PROBES = 5_000  # layers() calls a compilation may make (~90 µs each: ~0.5 s at most)


def compile_layout(
    space: SearchSpace, layers: LayersFn, num_classes: int, *, check: int = 200
) -> LayerLayout | None:
    """The slot structure of ``space``'s layers, or ``None`` when it does not fit (cached).

    Probes ``layers`` on networks with every dimension active: a slot depends on the
    dimensions whose change changes its key. Each group of slots with the same dimensions gets
    a key per combination of their values, and the result must reproduce ``layers`` (keys and
    order) on ``check`` random networks, the smallest and the largest.
    """
    cache_key = (space.fingerprint(), layers, int(num_classes))
    if cache_key not in _LAYOUTS:
        _LAYOUTS[cache_key] = _compile(space, layers, int(num_classes), check)
    return _LAYOUTS[cache_key]


def _compile(
    space: SearchSpace, layers: LayersFn, num_classes: int, check: int
) -> LayerLayout | None:
    choices = space.choices
    names = space.names
    sizes = np.array([len(c.values) for c in choices], dtype=np.int64)
    parents = {names.index(c.when.dim) for c in choices if c.when is not None}
    conditional = np.array([c.when is not None for c in choices])

    def keys(row: np.ndarray) -> list[str]:
        arch = space.from_indices(row.tolist())
        return [spec.key for spec in layers(space, arch, num_classes)]

    rng = np.random.default_rng(0)
    bases = []
    for _ in range(3):
        row = rng.integers(0, sizes)
        for i in parents:  # the largest value activates every dimension it conditions
            row[i] = int(np.argmax(np.asarray(choices[i].values, dtype=float)))
        arch = space.from_indices(row.tolist())
        if not all(space.is_active(arch, n) for n in names):
            return None
        bases.append(row)
    ref = [keys(row) for row in bases]
    n_slots = len(ref[0])
    if n_slots == 0 or any(len(k) != n_slots for k in ref):
        return None
    deps: list[set[int]] = [set() for _ in range(n_slots)]
    for row, k0 in zip(bases, ref):
        for i in range(len(choices)):
            if i in parents:
                continue
            for v in range(int(sizes[i])):
                if v == row[i]:
                    continue
                probe = row.copy()
                probe[i] = v
                k = keys(probe)
                if len(k) != n_slots:  # a dimension that adds layers without conditions
                    return None
                for p in range(n_slots):
                    if k[p] != k0[p]:
                        deps[p].add(i)
    group_dims = sorted({tuple(sorted(d)) for d in deps})
    slot_group = np.array([group_dims.index(tuple(sorted(d))) for d in deps], dtype=np.int64)
    table_size = [int(np.prod(sizes[list(d)])) for d in group_dims]
    strides = [
        np.cumprod(np.concatenate([[1], sizes[list(d)][1:][::-1]]))[::-1].astype(np.int64)
        if d
        else np.zeros(0, dtype=np.int64)
        for d in group_dims
    ]
    table: list[list[str | None]] = [
        [None] * table_size[group_dims.index(tuple(sorted(d)))] for d in deps
    ]
    base = bases[0]

    def fill(groups: list[int]) -> None:
        """Probe ``groups`` together: every combination of their shared dimensions, times
        the largest number of combinations of a group's own ones (walked in parallel)."""
        count: dict[int, int] = {}
        for g in groups:
            for d in group_dims[g]:
                count[d] = count.get(d, 0) + 1
        shared = sorted(d for d, c in count.items() if c > 1)
        own = {g: [d for d in group_dims[g] if count[d] == 1] for g in groups}
        n_own = {g: int(np.prod(sizes[own[g]])) for g in groups}
        for combo in itertools.product(*(range(int(sizes[d])) for d in shared)):
            for j in range(max(n_own.values())):
                row = base.copy()
                row[shared] = combo
                for g in groups:
                    if own[g]:
                        row[own[g]] = np.unravel_index(j % n_own[g], tuple(sizes[own[g]]))
                k = keys(row)
                for p in range(n_slots):
                    g = int(slot_group[p])
                    if g in n_own:
                        dims = list(group_dims[g])
                        table[p][int(row[dims] @ strides[g])] = k[p]

    every = list(range(len(group_dims)))
    count_all: dict[int, int] = {}
    for g in every:
        for d in group_dims[g]:
            count_all[d] = count_all.get(d, 0) + 1
    shared_all = [d for d, c in count_all.items() if c > 1]
    own_max = max(
        int(np.prod(sizes[[d for d in group_dims[g] if count_all[d] == 1]])) for g in every
    )
    together = int(np.prod(sizes[shared_all])) * own_max
    if min(together, sum(table_size)) > _MAX_PROBES:
        return None
    if together <= sum(table_size):
        fill(every)
    else:
        for g in every:
            fill([g])
    if any(k is None for t in table for k in t):
        return None
    width = max(1, max(len(d) for d in group_dims))
    dims = np.zeros((len(group_dims), width), dtype=np.int64)
    padded_strides = np.zeros((len(group_dims), width), dtype=np.int64)
    cond = np.zeros((len(group_dims), width), dtype=bool)
    for g, group in enumerate(group_dims):
        dims[g, : len(group)] = group
        padded_strides[g, : len(group)] = strides[g]
        cond[g, : len(group)] = conditional[list(group)]
    layout = LayerLayout(
        dims=dims,
        strides=padded_strides,
        conditional=cond,
        slot_group=slot_group,
        keys=tuple(tuple(str(k) for k in t) for t in table),
    )
    # the layout must give every network's layers, in order
    archs = [space.smallest(), space.largest(), *space.sample_many(check, rng)]
    flat_keys = np.array([k for t in layout.keys for k in t] + [""], dtype=object)
    offsets = np.cumsum([0] + [len(t) for t in layout.keys[:-1]])
    pos = layout.slot_indices(space.indices(archs), offsets, len(flat_keys) - 1)
    for arch, row in zip(archs, pos):
        if [k for k in flat_keys[row] if k] != keys(np.asarray(arch.positions)):
            return None
    return layout


class LookupTablePredictor(BasePredictor):
    """Sum of per-layer latencies, with an optional fitted correction.

    Args:
        space: the search space (its ``layers`` function must be registered).
        table: ``{LayerSpec.key: milliseconds}``.
        num_classes: classifier width the table's head layer was measured with.
        correction: ``"linear"`` (fit ``a·sum + b·n_layers + c``) or ``"scale"`` (``a·sum +
            c``); ``fit`` is where it is learned.

    Predictions (and ``encode``/``fit``) go through index rows and the space's compiled slot
    tables (module docstring); ``table`` is read into them on the first prediction.
    :meth:`layer_sum` is the per-layer loop they reproduce.
    """

    name = "lut"

    def __init__(
        self,
        space: SearchSpace,
        *,
        table: Mapping[str, float],
        num_classes: int = 1000,
        correction: str = "linear",
        encoder: str = "onehot",
        log_target: bool = False,
    ) -> None:
        super().__init__(space, encoder=encoder, log_target=False)
        if correction not in ("linear", "scale"):
            raise ValueError(f"correction must be 'linear' or 'scale', got {correction!r}")
        if not table:
            raise ValueError("table must map at least one layer key to milliseconds")
        layers = REGISTRY.entry(space.name).layers
        if layers is None:
            raise ValueError(f"search space {space.name!r} registers no layers function")
        self._layers = layers
        self.table = {str(k): float(v) for k, v in table.items()}
        self.num_classes = int(num_classes)
        self.correction = correction
        self._coef = np.array([1.0, 0.0])
        self._intercept = 0.0
        self._n_features = 2
        self._fitted = True  # the plain sum needs no fit
        self._compiled: tuple[LayerLayout, np.ndarray, np.ndarray] | bool | None = False

    def config(self) -> dict[str, Any]:
        return {"table": self.table, "num_classes": self.num_classes, "correction": self.correction}

    def layer_sum(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """``(n, 2)``: the table's sum (ms) and the number of layers of each arch."""
        out = np.empty((len(archs), 2))
        cache: dict[str, tuple[float, int]] = {}
        for i, arch in enumerate(archs):
            hit = cache.get(arch.key)
            if hit is None:
                total, count = 0.0, 0
                for spec in self._layers(self.space, arch, self.num_classes):
                    value = self.table.get(spec.key)
                    if value is None:
                        raise UnknownLayerError(
                            f"layer {spec.key!r} of architecture {arch.key} is not in the lookup "
                            f"table ({len(self.table)} layers): the table was built for another "
                            "space, resolution range or num_classes; rebuild it"
                        )
                    total += value
                    count += 1
                hit = cache[arch.key] = (total, count)
            out[i] = hit
        return out

    def encode(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """``(n, 2)``: :meth:`layer_sum` of ``archs``, through the vectorised path."""
        return self._encode_idx(arch_indices(self.space, archs))

    @property
    def vectorised(self) -> bool:
        """Whether predictions use the compiled slot tables (else the per-layer loop)."""
        return self._layout() is not None

    def _layout(self) -> tuple[LayerLayout, np.ndarray, np.ndarray] | None:
        """The compiled layout, the table's ms per slot entry (NaN: unknown key, then a final
        0.0 for absent slots) and each slot's offset; ``None`` where the space does not fit."""
        if self._compiled is False:
            layout = compile_layout(self.space, self._layers, self.num_classes)
            if layout is None:
                self._compiled = None
            else:
                values = [self.table.get(k, np.nan) for t in layout.keys for k in t] + [0.0]
                offsets = np.cumsum([0] + [len(t) for t in layout.keys[:-1]]).astype(np.int64)
                self._compiled = (layout, np.array(values, dtype=np.float64), offsets)
        return self._compiled if isinstance(self._compiled, tuple) else None

    def _encode_idx(self, idx: np.ndarray) -> np.ndarray:
        compiled = self._layout() if len(idx) else None
        if compiled is None:  # the per-layer loop (inactive positions: any value will do)
            return self.layer_sum(self.space.from_index_matrix(np.maximum(idx, 0)))
        layout, values, offsets = compiled
        pos = layout.slot_indices(idx, offsets, len(values) - 1)
        ms = values[pos]
        # in layer order, as the loop adds them (absent slots add 0.0, which changes nothing)
        total = np.cumsum(ms, axis=1)[:, -1]
        count = (pos != len(values) - 1).sum(axis=1)
        out = np.column_stack([total, count.astype(np.float64)])
        bad = np.isnan(total)
        if bad.any():  # a layer the table lacks: the loop raises, naming it
            out[bad] = self.layer_sum(self.space.from_index_matrix(np.maximum(idx[bad], 0)))
        return out

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        A = X if self.correction == "linear" else X[:, :1]
        scale = np.where(A.std(axis=0) > 0, A.std(axis=0), 1.0)
        mean = A.mean(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = HuberRegressor(alpha=1e-4, max_iter=5000).fit((A - mean) / scale, y)
        coef = m.coef_ / scale
        self._coef = np.array([coef[0], coef[1] if len(coef) > 1 else 0.0])
        self._intercept = float(m.intercept_ - coef @ mean)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self._coef + self._intercept

    def _get_state(self) -> State:
        return {"intercept": self._intercept}, {"coef": self._coef}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._coef = np.asarray(arrays["coef"], dtype=np.float64)
        self._intercept = float(meta["intercept"])
