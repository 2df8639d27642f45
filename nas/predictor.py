"""The door to accuracy and latency predictors: a protocol and the backend that plugs in.

The framework fits, saves, loads and decodes predictors through one registered
:class:`PredictorBackend` (this project's ``predictors`` package registers itself through
the ``nas.predictors`` entry-point group); ``nas`` imports no predictor implementation.
Searchers receive predictor *instances* (anything with ``fit``/``predict``), never names.

Example:
    >>> p = nas.predictor.create_predictor("rf", space=space).fit(archs, y)
    >>> nas.predictor.save_predictor(p, run.predictor_stem("accuracy"))
    >>> latency = nas.predictor.latency_predictor(nas.load_profile("nb201_pixel3"), space)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from nas.errors import ConfigError
from nas.registry import load_plugins
from nas.space import ArchConfig, SearchSpace

if TYPE_CHECKING:
    from nas.hardware.profile import HardwareProfile, LatencyModel

PREDICTOR_PLUGINS = "nas.predictors"


@runtime_checkable
class Predictor(Protocol):
    """What the flow and the searchers need from a predictor."""

    space: SearchSpace

    def fit(self, archs: Sequence[ArchConfig], y: Any) -> Any:
        """Fit on architectures and their targets; returns the predictor."""

    def predict(self, archs: Sequence[ArchConfig]) -> np.ndarray:
        """One prediction per architecture."""


class PredictorBackend(Protocol):
    """What a predictor package provides to the framework."""

    def names(self) -> list[str]:
        """Predictor names :meth:`create` accepts."""

    def create(self, name: str, *, space: SearchSpace, **options: Any) -> Predictor:
        """A new, unfitted predictor."""

    def save(self, predictor: Predictor, path: Path) -> Path:
        """Write ``predictor`` to ``path`` (no pickle); returns the main file."""

    def load(self, path: Path, space: SearchSpace | None = None) -> Predictor:
        """A predictor written by :meth:`save`."""

    def to_json(self, predictor: Predictor) -> dict[str, Any]:
        """One JSON object (kept inside hardware profiles)."""

    def latency_predictor(self, profile: HardwareProfile, space: SearchSpace) -> Predictor:
        """The latency predictor (ms) a profile holds for ``space``."""

    def fit_latency_model(
        self, space: SearchSpace, archs: Sequence[ArchConfig], latency_ms: Any, **options: Any
    ) -> LatencyModel:
        """A profile's latency model fitted on measured whole architectures."""


class _BackendSlot:
    """Holds the registered backend; the plug-ins are loaded on first use."""

    def __init__(self) -> None:
        self.backend: PredictorBackend | None = None

    def get(self) -> PredictorBackend:
        if self.backend is None:
            load_plugins(PREDICTOR_PLUGINS)
        if self.backend is None:
            raise ConfigError(
                "no predictor backend is installed (the 'predictors' package registers one "
                f"through the {PREDICTOR_PLUGINS!r} entry points); reinstall the project"
            )
        return self.backend


_SLOT = _BackendSlot()


def register_predictor_backend(backend: PredictorBackend) -> None:
    """Make ``backend`` the framework's predictor backend (plug-ins call this on import)."""
    _SLOT.backend = backend


def predictor_backend() -> PredictorBackend:
    """The registered backend (loading the installed plug-ins on first use)."""
    return _SLOT.get()


def create_predictor(name: str, *, space: SearchSpace, **options: Any) -> Predictor:
    """A new predictor ``name`` for ``space`` (see :func:`list_predictors`)."""
    return predictor_backend().create(name, space=space, **options)


def list_predictors() -> list[str]:
    """Names :func:`create_predictor` accepts."""
    return predictor_backend().names()


def save_predictor(predictor: Predictor, path: str | Path) -> Path:
    """Write ``predictor`` to ``path`` (JSON + arrays, no pickle)."""
    return predictor_backend().save(predictor, Path(path))


def load_predictor(path: str | Path, space: SearchSpace | None = None) -> Predictor:
    """Read a predictor written by :func:`save_predictor`."""
    return predictor_backend().load(Path(path), space)


def predictor_to_json(predictor: Predictor) -> dict[str, Any]:
    """``predictor`` as one JSON object (as hardware profiles hold it)."""
    return predictor_backend().to_json(predictor)


def latency_predictor(profile: HardwareProfile, space: SearchSpace) -> Predictor:
    """The latency predictor (ms) that ``profile`` holds for ``space``."""
    return predictor_backend().latency_predictor(profile, space)


def fit_latency_model(
    space: SearchSpace, archs: Sequence[ArchConfig], latency_ms: Any, **options: Any
) -> LatencyModel:
    """A latency model fitted on measured whole architectures (see the backend's options)."""
    return predictor_backend().fit_latency_model(space, archs, latency_ms, **options)
