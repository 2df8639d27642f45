"""Latency from a per-layer lookup table, plus a learned correction for what a sum misses.

The table maps ``LayerSpec.key`` to a layer's median latency (ms) measured alone (see
``nas.hardware.build_lookup_table``). An architecture's raw estimate is the sum over its layers.
Timing layers one by one misses per-call overheads, cache effects between layers and the
glue a whole network runs; :meth:`LookupTablePredictor.fit` learns a robust linear correction
``a · sum + b · n_layers + c`` from a few whole networks measured end to end. Unfitted, the
predictor returns the plain sum.

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
from nas.registry import REGISTRY
from nas.space import ArchConfig, SearchSpace
from predictors.base import BasePredictor, State
from predictors.encoding import arch_indices
from predictors.layer_layout import LayerLayout, compile_layout


class UnknownLayerError(ValueError):
    """An architecture has a layer the lookup table does not list."""


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
            raise ConfigError(f"correction must be 'linear' or 'scale', got {correction!r}")
        if not table:
            raise ConfigError("table must map at least one layer key to milliseconds")
        layers = REGISTRY.entry(space.name).layers
        if layers is None:
            raise ConfigError(f"search space {space.name!r} registers no layers function")
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
