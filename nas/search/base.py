"""The search problem and the plug-in points: objectives, constraints, Searcher, Evaluator.

Searchers see :class:`~nas.space.ArchConfig` objects and metric dicts only (no torch), through
a batched ask/tell interface. Searchers that work on integer index rows internally may also
offer ``ask_indices``/``tell_indices`` (:class:`ArraySearcher`); paired with an evaluator
that offers ``evaluate_indices`` (:class:`ArrayEvaluator`, e.g. predictors) the run loop
then never builds per-architecture objects, which is what makes predictor-based search fast.

Example:
    >>> problem = Problem.create(space, {"accuracy": "max", "latency_ms": "min"},
    ...                          {"latency_ms": 10.0})
    >>> F, violation = problem.scores(problem.columns([{"accuracy": 0.9, "latency_ms": 12.0}]))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace

Direction = Literal["min", "max"]
Bound = Literal["upper", "lower"]
Metrics = dict[str, float]
EvaluateFn = Callable[[list[ArchConfig]], list[Metrics]]


@runtime_checkable
class Searcher(Protocol):
    """Proposes architectures (``ask``) and learns from their measured metrics (``tell``).

    ``tell`` may receive architectures the searcher never asked for (a resumed run replays
    its trials); searchers must accept them.
    """

    def ask(self, n: int) -> list[ArchConfig]:
        """Up to ``n`` architectures to evaluate next (fewer when the space is exhausted)."""
        ...

    def tell(self, archs: Sequence[ArchConfig], metrics: Sequence[Mapping[str, float]]) -> None:
        """Report the metrics of ``archs`` (same order)."""
        ...


@runtime_checkable
class ArraySearcher(Searcher, Protocol):
    """A searcher that also speaks index rows (``space.indices(..., fill_inactive=False)``)."""

    def ask_indices(self, n: int) -> np.ndarray:
        """Up to ``n`` index rows, shape ``(m, dims)``."""
        ...

    def tell_indices(self, rows: np.ndarray, metrics: Mapping[str, np.ndarray]) -> None:
        """Report metric columns (one array per metric) for ``rows``."""
        ...


@runtime_checkable
class Evaluator(Protocol):
    """Measures or predicts metrics of a batch of architectures."""

    def evaluate(self, archs: list[ArchConfig]) -> list[Metrics]:
        """One metric dict per architecture, in order."""
        ...


@runtime_checkable
class ArrayEvaluator(Protocol):
    """An evaluator of index rows: ``evaluate_indices(rows) -> {metric: values}``."""

    def evaluate_indices(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """One array of length ``len(rows)`` per metric."""
        ...


@dataclass(frozen=True, kw_only=True)
class Objectives:
    """Metric names and whether each is minimised or maximised; the first one ranks ``best``."""

    names: tuple[str, ...]
    directions: tuple[Direction, ...]

    @classmethod
    def parse(cls, spec: Mapping[str, str] | Objectives) -> Objectives:
        """From ``{"accuracy": "max", "latency_ms": "min"}``."""
        if isinstance(spec, Objectives):
            return spec
        if not isinstance(spec, Mapping) or not spec:
            raise ConfigError(
                f"objectives must be a non-empty mapping of metric to 'min' or 'max', got {spec!r}"
            )
        for name, direction in spec.items():
            if direction not in ("min", "max"):
                raise ConfigError(
                    f"objectives[{name!r}] = {direction!r}; allowed values are 'min' and 'max'"
                )
        return cls(names=tuple(spec), directions=tuple(spec.values()))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, str]:
        """The ``{metric: direction}`` mapping."""
        return dict(zip(self.names, self.directions))

    def matrix(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(n, k)`` minimisation matrix: maximised metrics are negated."""
        cols = [
            -np.asarray(columns[n], dtype=np.float64)
            if d == "max"
            else np.asarray(columns[n], dtype=np.float64)
            for n, d in zip(self.names, self.directions)
        ]
        return np.stack(cols, axis=1)


@dataclass(frozen=True, kw_only=True)
class Constraint:
    """``metric <= limit`` (``bound="upper"``) or ``metric >= limit`` (``bound="lower"``)."""

    metric: str
    limit: float
    bound: Bound = "upper"

    def violation(self, values: np.ndarray) -> np.ndarray:
        """How far each value is outside the bound, relative to ``|limit|`` (0 = satisfied)."""
        values = np.asarray(values, dtype=np.float64)
        scale = max(abs(self.limit), 1e-12)
        excess = values - self.limit if self.bound == "upper" else self.limit - values
        return np.maximum(excess, 0.0) / scale

    def to_spec(self) -> float | list[float | str]:
        """The form :meth:`Constraints.parse` reads back."""
        return self.limit if self.bound == "upper" else ["min", self.limit]


@dataclass(frozen=True, kw_only=True)
class Constraints:
    """A set of bounds on metrics; an architecture is feasible when it violates none."""

    items: tuple[Constraint, ...] = ()

    @classmethod
    def parse(
        cls, spec: Mapping[str, float | Sequence[float | str]] | Constraints | None
    ) -> Constraints:
        """From ``{"latency_ms": 10.0, "accuracy": ("min", 70.0)}`` (numbers: upper bounds)."""
        if spec is None:
            return cls()
        if isinstance(spec, Constraints):
            return spec
        if not isinstance(spec, Mapping):
            raise ConfigError(f"constraints must be a mapping of metric to limit, got {spec!r}")
        items = []
        for metric, value in spec.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                items.append(Constraint(metric=metric, limit=float(value)))
                continue
            if (
                isinstance(value, (list, tuple))
                and len(value) == 2
                and value[0] in ("min", "max")
                and isinstance(value[1], (int, float))
            ):
                bound: Bound = "lower" if value[0] == "min" else "upper"
                items.append(Constraint(metric=metric, limit=float(value[1]), bound=bound))
                continue
            raise ConfigError(
                f"constraints[{metric!r}] = {value!r}; allowed forms are a number (upper bound), "
                "('max', number) or ('min', number)"
            )
        return cls(items=tuple(items))

    @property
    def metrics(self) -> tuple[str, ...]:
        """The constrained metric names."""
        return tuple(c.metric for c in self.items)

    def to_dict(self) -> dict[str, float | list[float | str]]:
        """The mapping :meth:`parse` reads back."""
        return {c.metric: c.to_spec() for c in self.items}

    def violation(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Summed relative violation per architecture (0 = feasible)."""
        total = np.zeros(n)
        for c in self.items:
            total += c.violation(columns[c.metric])
        return total


@dataclass(frozen=True, kw_only=True)
class Problem:
    """What a searcher optimises: a space, objectives and constraints."""

    space: SearchSpace
    objectives: Objectives
    constraints: Constraints

    @classmethod
    def create(
        cls,
        space: SearchSpace,
        objectives: Mapping[str, str] | Objectives,
        constraints: Mapping[str, float | Sequence[float | str]] | Constraints | None = None,
    ) -> Problem:
        """Validate and build a problem."""
        if not isinstance(space, SearchSpace):
            raise ConfigError(f"space must be a SearchSpace, got {type(space).__name__}")
        return cls(
            space=space,
            objectives=Objectives.parse(objectives),
            constraints=Constraints.parse(constraints),
        )

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric an evaluator must return (objectives, then constrained metrics)."""
        seen = dict.fromkeys(self.objectives.names)
        seen.update(dict.fromkeys(self.constraints.metrics))
        return tuple(seen)

    def columns(self, metrics: Sequence[Mapping[str, float]]) -> dict[str, np.ndarray]:
        """Metric dicts as columns; raises ``ValueError`` naming a missing metric."""
        out: dict[str, np.ndarray] = {}
        for name in self.metrics:
            try:
                out[name] = np.array([float(m[name]) for m in metrics], dtype=np.float64)
            except KeyError:
                raise ConfigError(
                    f"the evaluator returned no {name!r} metric; "
                    f"the search needs {list(self.metrics)}"
                ) from None
        return out

    def check_columns(self, columns: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        """Validate array-evaluator output: every metric present with ``n`` values."""
        out = {}
        for name in self.metrics:
            if name not in columns:
                raise ConfigError(
                    f"the evaluator returned no {name!r} metric; "
                    f"the search needs {list(self.metrics)}"
                )
            col = np.asarray(columns[name], dtype=np.float64).reshape(-1)
            if len(col) != n:
                raise ConfigError(
                    f"the evaluator returned {len(col)} values of {name!r} for {n} archs"
                )
            out[name] = col
        return out

    def scores(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(F, violation)``: the minimisation matrix and the summed relative violation.

        A trial whose objectives or constrained metrics are not finite (NaN, inf: the
        evaluation failed) gets the worst finite objectives and violation (:data:`FAILED`):
        it stays in the log but is never feasible, best or on the front (:meth:`failed`)."""
        F = self.objectives.matrix(columns)
        violation = self.constraints.violation(columns, len(F))
        failed = self.failed(columns, len(F))
        if failed.any():
            F, violation = F.copy(), np.asarray(violation, dtype=np.float64).copy()
            F[failed], violation[failed] = FAILED, FAILED
        return F, violation

    def failed(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Mask of trials with a non-finite objective or constrained metric."""
        out = np.zeros(n, dtype=bool)
        for name in self.metrics:
            if name in columns:
                out |= ~np.isfinite(np.asarray(columns[name], dtype=np.float64))
        return out


FAILED = 1e300  # objectives and violation of a failed trial: worse than any real one


def canonical_rows(space: SearchSpace, rows: np.ndarray) -> np.ndarray:
    """Index rows with inactive dimensions set to -1: equal rows are the same network."""
    out = np.array(rows, dtype=np.int64, copy=True)
    if out.ndim != 2 or out.shape[1] != len(space.choices):
        raise ConfigError(
            f"index rows must have shape (n, {len(space.choices)}), got {out.shape}"
        )
    return space.mask_inactive(out)


def row_keys(space: SearchSpace, rows: np.ndarray) -> list[int]:
    """One integer per row naming its network (:meth:`~nas.space.SearchSpace.network_ids`)."""
    return space.network_ids(rows).tolist()  # type: ignore[no-any-return]
