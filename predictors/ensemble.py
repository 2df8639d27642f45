"""An ensemble of predictors: the mean as prediction, the members' spread as uncertainty.

Members are diverse models fitted on the same data (by default gradient boosting, an RBF SVR
and extra trees on the engineered ``features`` encoding: on NAS-Bench-201 with 100 training
archs their mean ranks better than any one of them). ``predict(archs, return_std=True)`` gives
the standard deviation across members, which Bayesian-style searches use as an acquisition
bonus.

Example:
    >>> p = EnsemblePredictor(space).fit(archs, acc)
    >>> mean, std = p.predict(archs[:10], return_std=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace
from predictors.base import BasePredictor, State

DEFAULT_MEMBERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("gbm", {}),
    ("svr", {}),
    ("et", {}),
)


class EnsemblePredictor(BasePredictor):
    """Mean of several member predictors, with their standard deviation as uncertainty.

    Args:
        space: the search space.
        members: ``(name, keywords)`` pairs for :func:`predictors.create_predictor`; every
            member shares this ensemble's ``encoder`` and ``log_target``.
        encoder: feature encoder of all members.
        log_target: fit ``log(y)``.
    """

    name = "ensemble"

    def __init__(
        self,
        space: SearchSpace,
        *,
        members: Sequence[tuple[str, dict[str, Any]] | list[Any]] = DEFAULT_MEMBERS,
        encoder: str = "features",
        log_target: bool = False,
    ) -> None:
        super().__init__(space, encoder=encoder, log_target=log_target)
        from predictors.registry import create_predictor

        if not members:
            raise ConfigError("members must name at least one predictor")
        self.members_spec = [(str(m[0]), dict(m[1])) for m in members]
        self.members: list[BasePredictor] = [
            create_predictor(name, space=space, encoder=encoder, **kw)
            for name, kw in self.members_spec
        ]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "members": [list(m) for m in self.members_spec]}

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        for member in self.members:
            member.fit_features(X, y)

    def _member_predictions(self, X: np.ndarray) -> np.ndarray:
        return np.stack([m.predict_features(X) for m in self.members])

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._member_predictions(X).mean(axis=0))

    @overload
    def predict(
        self, archs: Sequence[ArchConfig], return_std: Literal[False] = ...
    ) -> np.ndarray: ...

    @overload
    def predict(
        self, archs: Sequence[ArchConfig], return_std: Literal[True]
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def predict(
        self, archs: Sequence[ArchConfig], return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Mean prediction, and with ``return_std=True`` also the members' standard deviation."""
        X = self.encode(archs)
        self._check_fitted(X)
        preds = self._member_predictions(X)
        if self.log_target:
            preds = np.exp(preds)
        mean = preds.mean(axis=0)
        return (mean, preds.std(axis=0)) if return_std else mean

    def predict_with_std(self, archs: Sequence[ArchConfig]) -> tuple[np.ndarray, np.ndarray]:
        """Same as ``predict(archs, return_std=True)``."""
        return self.predict(archs, return_std=True)

    def _get_state(self) -> State:
        meta: dict[str, Any] = {"members": []}
        arrays: dict[str, np.ndarray] = {}
        for i, member in enumerate(self.members):
            m_meta, m_arrays = member.get_state()
            meta["members"].append(m_meta)
            arrays.update({f"m{i}.{k}": v for k, v in m_arrays.items()})
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        for i, (member, m_meta) in enumerate(zip(self.members, meta["members"])):
            prefix = f"m{i}."
            member.set_state(
                m_meta, {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            )
