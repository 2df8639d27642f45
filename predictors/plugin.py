"""This package as the framework's predictor backend (``nas.predictor.PredictorBackend``).

Registered on ``import predictors``; the framework imports the package through the
``nas.predictors`` entry-point group, so ``nas`` never imports it by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.hardware.profile import HardwareProfile, LatencyModel
from nas.space import ArchConfig, SearchSpace
from predictors import io, registry


class PredictorsBackend:
    """Delegates each backend call to the function of this package that does it."""

    def names(self) -> list[str]:
        return registry.list_predictors()

    def create(self, name: str, *, space: SearchSpace, **options: Any) -> Any:
        return registry.create_predictor(name, space=space, **options)

    def save(self, predictor: Any, path: Path) -> Path:
        return io.save_predictor(predictor, path)

    def load(self, path: Path, space: SearchSpace | None = None) -> Any:
        return io.load_predictor(path, space)

    def to_json(self, predictor: Any) -> dict[str, Any]:
        return io.predictor_to_json(predictor)

    def latency_predictor(self, profile: HardwareProfile, space: SearchSpace) -> Any:
        return io.latency_predictor(profile, space)

    def fit_latency_model(
        self, space: SearchSpace, archs: Sequence[ArchConfig], latency_ms: Any, **options: Any
    ) -> LatencyModel:
        from predictors.table_import import fit_latency_model

        return fit_latency_model(space, archs, latency_ms, **options)
