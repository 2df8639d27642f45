"""The dimensions of a search space: :class:`Choice`, its :class:`Condition`, and helpers.

Example:
    >>> [c.name for c in stage("s1", depth=[1, 2], block={"kernel": [3, 5]})]
    ['s1.depth', 's1.b0.kernel', 's1.b1.kernel']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError, InvalidArchError

Value = int | float | str


@dataclass(frozen=True, kw_only=True)
class Condition:
    """A dimension is active only while ``arch[dim] >= at_least``."""

    dim: str
    at_least: int | float

    def holds(self, value: Value) -> bool:
        """Whether ``value`` of :attr:`dim` activates the dimension."""
        if isinstance(value, str):
            raise TypeError(f"a condition needs a numeric dimension, got value {value!r}")
        return value >= self.at_least


@dataclass(frozen=True)
class Choice:
    """One discrete dimension of a search space.

    Args:
        name: dotted name, e.g. ``"s2.b0.kernel"``.
        values: the allowed values, in their natural order (ordinal encoding uses it).
        when: the condition under which the dimension is active; ``None`` means always.
    """

    name: str
    values: tuple[Value, ...]
    when: Condition | None = None

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError(f"choice {self.name!r} has no values")
        if len(set(self.values)) != len(self.values):
            raise ConfigError(f"choice {self.name!r} repeats a value: {self.values}")

    def index(self, value: Any) -> int:
        """Position of ``value`` in :attr:`values`; raises :class:`InvalidArchError`."""
        try:
            return self.values.index(value)
        except ValueError:
            pass
        raise InvalidArchError(
            f"{self.name}: {value!r} is not allowed; allowed values are {list(self.values)}"
        )


def choice(name: str, values: Iterable[Value], *, when: Condition | None = None) -> Choice:
    """A dimension named ``name`` taking one of ``values``."""
    return Choice(name, tuple(values), when)


def stage(
    name: str, *, depth: Sequence[int], block: Mapping[str, Sequence[Value]]
) -> list[Choice]:
    """An elastic stage: ``<name>.depth`` and, per block, the choices of ``block``.

    Block ``i`` (0-based) exists only while the depth is at least ``i + 1``; blocks every
    depth keeps are unconditional.

    Example:
        >>> [c.name for c in stage("s1", depth=[1, 2], block={"kernel": [3, 5]})]
        ['s1.depth', 's1.b0.kernel', 's1.b1.kernel']
    """
    depths = sorted(depth)
    dims = [choice(f"{name}.depth", depths)]
    for i in range(max(depths)):
        when = None if i + 1 <= min(depths) else Condition(dim=f"{name}.depth", at_least=i + 1)
        dims += [choice(f"{name}.b{i}.{key}", values, when=when) for key, values in block.items()]
    return dims
