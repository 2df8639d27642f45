"""Latency from a per-layer lookup table, plus a learned correction for what a sum misses.

The table maps ``LayerSpec.key`` to a layer's median latency (ms) measured alone (see
``nas.hardware.build_lookup_table``). An architecture's raw estimate is the sum over its layers.
Timing layers one by one misses per-call overheads, cache effects between layers and the
glue a whole network runs; :meth:`LookupTablePredictor.fit` learns a robust linear correction
``a · sum + b · n_layers + c`` from a few whole networks measured end to end. Unfitted, the
predictor returns the plain sum.

In a space quantized with QDQ nodes (layer keys tagged ``bits=…``,
:mod:`nas.quantization.layers`; not the weight-only transformer spaces) the default correction
is ``"precision"``: ``a · sum + b · n_layers + d · n_low + e · n_runs + c``.
A low-precision layer timed alone pays a quantize at its input and a dequantize at its output;
inside a whole network, consecutive low-precision layers share them (ONNX Runtime removes the
DequantizeLinear → QuantizeLinear pairs between them), so the network pays one pair per *run*
of consecutive low-precision layers. ``n_low`` counts the low-precision layers, ``n_runs`` the
runs.

Predictions are vectorised: on first use the space's layer structure is compiled once into
layer *slots* (:func:`predictors.layer_layout.compile_layout`); the table then becomes one
array of milliseconds per slot, and an index matrix's sums are gathers and one sequential
``cumsum`` in layer order, the same additions as the per-layer loop (:meth:`layer_sum`). A
space the layout does not fit keeps the per-architecture path.

Example:
    >>> p = LookupTablePredictor(space, table=profile.latency[space.name].lut)
    >>> p.fit(measured_archs, measured_ms)        # optional correction
    >>> p.predict(space.sample_many(1000, rng))
    >>> p.predict_indices(space.indices(archs))   # the same numbers, ~1 µs a network
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor

from nas.errors import ConfigError
from nas.quantization.layers import key_bits
from nas.quantization.space import weight_only
from nas.quantization.support import FLOAT_BITS
from nas.registry import REGISTRY
from nas.space import ArchConfig, SearchSpace
from predictors.base import BasePredictor, State
from predictors.encoding import arch_indices
from predictors.layer_layout import LayerLayout, compile_layout

CORRECTIONS = ("linear", "scale", "precision")
# the feature columns each correction fits (of sum, n_layers, n_low, n_runs)
_COLUMNS = {"linear": [0, 1], "scale": [0], "precision": [0, 1, 2, 3]}
N_FEATURES = 4
# a compiled layout: the layout, ms and low-precision flag per slot entry, slot offsets
_Compiled = tuple[LayerLayout, np.ndarray, np.ndarray, np.ndarray]


class UnknownLayerError(ValueError):
    """An architecture has a layer the lookup table does not list."""


def precision_runs(low: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``(n,)`` runs of consecutive low-precision layers per row of ``(n, slots)`` flags, layers
    in order; absent slots (``present`` False) are skipped, they neither start nor end a run."""
    n, slots = low.shape
    if slots == 0:
        return np.zeros(n, dtype=np.int64)
    at = np.where(present, np.arange(slots), -1)
    last = np.maximum.accumulate(at, axis=1)  # the last present slot at or before each one
    before = np.concatenate([np.full((n, 1), -1), last[:, :-1]], axis=1)
    low_before = np.where(before >= 0,
                          np.take_along_axis(low, np.maximum(before, 0), axis=1), False)
    return (low & present & ~low_before).sum(axis=1)


def _default_correction(space: SearchSpace, table: Mapping[str, float]) -> str:
    """``"precision"`` for a table with low-precision entries of a space quantized with
    quantize/dequantize nodes (static QDQ), else ``"linear"`` (weight-only ``MatMulNBits``
    layers add no such nodes to share)."""
    low = any(key_bits(k) < FLOAT_BITS for k in table)
    return "precision" if low and not weight_only(space) else "linear"


class LookupTablePredictor(BasePredictor):
    """Sum of per-layer latencies, with an optional fitted correction.

    Args:
        space: the search space (its ``layers`` function must be registered).
        table: ``{LayerSpec.key: milliseconds}``.
        num_classes: classifier width the table's head layer was measured with.
        correction: ``"linear"`` (fit ``a·sum + b·n_layers + c``), ``"scale"`` (``a·sum +
            c``) or ``"precision"`` (``"linear"`` plus the low-precision layers and their runs,
            module docstring); default ``"precision"`` when ``table`` has low-precision
            entries of a static-QDQ space, else ``"linear"``. ``fit`` is where it is learned.

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
        correction: str | None = None,
        encoder: str = "onehot",
        log_target: bool = False,
    ) -> None:
        super().__init__(space, encoder=encoder, log_target=False)
        if not table:
            raise ConfigError("table must map at least one layer key to milliseconds")
        correction = _default_correction(space, table) if correction is None else correction
        if correction not in CORRECTIONS:
            raise ConfigError(f"correction must be one of {', '.join(CORRECTIONS)}; "
                              f"got {correction!r}")
        layers = REGISTRY.entry(space.name).layers
        if layers is None:
            raise ConfigError(f"search space {space.name!r} registers no layers function")
        self._layers = layers
        self.table = {str(k): float(v) for k, v in table.items()}
        self.num_classes = int(num_classes)
        self.correction = correction
        self._coef = np.array([1.0, 0.0, 0.0, 0.0])
        self._intercept = 0.0
        self._n_features = N_FEATURES
        self._fitted = True  # the plain sum needs no fit
        self._compiled: _Compiled | bool | None = False

    def config(self) -> dict[str, Any]:
        return {"table": self.table, "num_classes": self.num_classes, "correction": self.correction}

    def layer_sum(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """``(n, 2)``: the table's sum (ms) and the number of layers of each arch."""
        return self.layer_features(archs)[:, :2]

    def layer_features(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """``(n, 4)`` by the per-layer loop: the table's sum (ms), the number of layers, of
        low-precision layers and of their runs (module docstring) of each arch."""
        out = np.empty((len(archs), N_FEATURES))
        cache: dict[str, tuple[float, int, int, int]] = {}
        for i, arch in enumerate(archs):
            hit = cache.get(arch.key)
            if hit is None:
                total, count, low, runs, previous_low = 0.0, 0, 0, 0, False
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
                    is_low = key_bits(spec.key) < FLOAT_BITS
                    low += is_low
                    runs += is_low and not previous_low
                    previous_low = is_low
                hit = cache[arch.key] = (total, count, low, runs)
            out[i] = hit
        return out

    def encode(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """``(n, 4)``: :meth:`layer_features` of ``archs``, through the vectorised path."""
        return self._encode_idx(arch_indices(self.space, archs))

    @property
    def vectorised(self) -> bool:
        """Whether predictions use the compiled slot tables (else the per-layer loop)."""
        return self._layout() is not None

    def _layout(self) -> _Compiled | None:
        """The compiled layout, the table's ms per slot entry (NaN: unknown key, then a final
        0.0 for absent slots), whether each entry is low-precision and each slot's offset;
        ``None`` where the space does not fit."""
        if self._compiled is False:
            layout = compile_layout(self.space, self._layers, self.num_classes)
            if layout is None:
                self._compiled = None
            else:
                keys = [k for t in layout.keys for k in t]
                values = np.array([self.table.get(k, np.nan) for k in keys] + [0.0])
                low = np.array([key_bits(k) < FLOAT_BITS for k in keys] + [False])
                offsets = np.cumsum([0] + [len(t) for t in layout.keys[:-1]]).astype(np.int64)
                self._compiled = (layout, values, low, offsets)
        return self._compiled if isinstance(self._compiled, tuple) else None

    def _encode_idx(self, idx: np.ndarray) -> np.ndarray:
        compiled = self._layout() if len(idx) else None
        if compiled is None:  # the per-layer loop (inactive positions: any value will do)
            return self.layer_features(self.space.from_index_matrix(np.maximum(idx, 0)))
        layout, values, low, offsets = compiled
        absent = len(values) - 1
        pos = layout.slot_indices(idx, offsets, absent)
        ms = values[pos]
        # in layer order, as the loop adds them (absent slots add 0.0, which changes nothing)
        total = np.cumsum(ms, axis=1)[:, -1]
        present = pos != absent
        slot_low = low[pos]
        out = np.column_stack([total, present.sum(axis=1), slot_low.sum(axis=1),
                               precision_runs(slot_low, present)]).astype(np.float64)
        bad = np.isnan(total)
        if bad.any():  # a layer the table lacks: the loop raises, naming it
            out[bad] = self.layer_features(self.space.from_index_matrix(np.maximum(idx[bad], 0)))
        return out

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        columns = _COLUMNS[self.correction]
        A = X[:, columns]
        spread = A.std(axis=0)
        scale = np.where(spread > 0, spread, 1.0)
        mean = A.mean(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = HuberRegressor(alpha=1e-4, max_iter=5000).fit((A - mean) / scale, y)
        coef = np.where(spread > 0, m.coef_ / scale, 0.0)  # a constant column adds nothing
        self._coef = np.zeros(N_FEATURES)
        self._coef[columns] = coef
        self._intercept = float(m.intercept_ - coef @ mean)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self._coef + self._intercept

    def _get_state(self) -> State:
        return {"intercept": self._intercept}, {"coef": self._coef}

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        coef = np.asarray(arrays["coef"], dtype=np.float64)
        self._coef = np.zeros(N_FEATURES)
        self._coef[: len(coef)] = coef  # saved before the precision columns: two
        self._n_features = N_FEATURES
        self._intercept = float(meta["intercept"])
