"""Latency from a per-layer lookup table, plus a learned correction for what a sum misses.

The table maps ``LayerSpec.key`` to a layer's median latency (ms) measured alone (see
``nas.hardware.build_lookup_table``). An architecture's raw estimate is the sum over its layers.
Timing layers one by one misses per-call overheads, cache effects between layers and the
glue a whole network runs; :meth:`LookupTablePredictor.fit` learns a robust linear correction
``a · sum + b · n_layers + c`` from a few whole networks measured end to end. Unfitted, the
predictor returns the plain sum.

Example:
    >>> p = LookupTablePredictor(space, table=profile.latency[space.name].lut)
    >>> p.fit(measured_archs, measured_ms)        # optional correction
    >>> p.predict(space.sample_many(1000, rng))
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import HuberRegressor

from nas.registry import REGISTRY
from nas.space import ArchConfig, SearchSpace
from predictors.base import BasePredictor, State


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
        for arch in archs[:1]:
            if not isinstance(arch, ArchConfig) or arch.space != self.space.name:
                raise ValueError(f"architectures must be ArchConfigs of space {self.space.name!r}")
        return self.layer_sum(archs)

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
