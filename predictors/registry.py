"""Predictors by name: :func:`create_predictor` and :func:`list_predictors`.

Example:
    >>> p = create_predictor("svr", space="nb201", encoder="features")
    >>> list_predictors()[:3]
    ['ensemble', 'et', 'gbm']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas.errors import ConfigError
from nas.registry import create_space
from nas.space import SearchSpace
from predictors.base import BasePredictor
from predictors.sklearn_models import MODELS, SklearnPredictor


def _sklearn(model: str) -> Callable[..., BasePredictor]:
    def make(space: SearchSpace, **kw: Any) -> BasePredictor:
        named = kw.pop("model", model)
        if named != model:
            raise ConfigError(f"predictor {model!r} got model={named!r}")
        return SklearnPredictor(space, model=model, **kw)

    return make


def _lazy(module: str, cls: str) -> Callable[..., BasePredictor]:
    def make(space: SearchSpace, **kw: Any) -> BasePredictor:
        import importlib

        built: BasePredictor = getattr(importlib.import_module(module), cls)(space, **kw)
        return built

    return make


_FACTORIES: dict[str, Callable[..., BasePredictor]] = {
    **{m: _sklearn(m) for m in MODELS},
    "mlp": _lazy("predictors.mlp", "MLPPredictor"),
    "ensemble": _lazy("predictors.ensemble", "EnsemblePredictor"),
    "transfer": _lazy("predictors.transfer", "TransferPredictor"),
    "lut": _lazy("predictors.lookup_table", "LookupTablePredictor"),
}


def list_predictors() -> list[str]:
    """Names :func:`create_predictor` accepts, sorted."""
    return sorted(_FACTORIES)


def create_predictor(name: str, *, space: SearchSpace | str, **kwargs: Any) -> BasePredictor:
    """A new (unfitted) predictor ``name`` for ``space`` (a space or its registry name).

    Args:
        name: one of :func:`list_predictors`.
        space: the search space, or its name.
        **kwargs: the predictor's own options (``encoder=``, ``log_target=``, ...).

    Example:
        >>> p = create_predictor("mlp", space=nas.create_space("ofa_mbv3_w1.0"), epochs=100)
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"unknown predictor {name!r}; available: {list_predictors()}")
    if isinstance(space, str):
        space = create_space(space)
    return factory(space, **kwargs)


def predictor_kind(predictor: BasePredictor) -> str:
    """The registry name that recreates ``predictor``."""
    if isinstance(predictor, SklearnPredictor):
        return predictor.model
    return predictor.name
