"""The logged trials of a resumed search, consumed in order while the loop runs again.

Exact resume works by deterministic replay rather than by saving searcher state: the resumed
loop rebuilds the searcher from the same seed and runs the same ask/evaluate/tell steps, but
each evaluation the log already holds is answered from ``trials.csv`` (metrics are logged with
``repr(float)``, so they read back bit for bit). Every searcher (and the loop's own stand-in
draws) then sees exactly what it saw before the interruption, so its RNG, archive, pending
set, Optuna study or fitted surrogates end in the same state, and the continuation matches an
uninterrupted run with the same seed. Nothing but ``trials.csv`` has to be written atomically,
and new searchers need no serialisation code. The cost is the searchers' own compute for the
logged steps (never an evaluation). A batch torn by a crash (a prefix of it logged) is
finished live. When the log stops matching (another seed, searcher or budget, or a searcher
that is not deterministic) the rest of it is told to the searcher as plain trials and the run
continues from there: nothing is lost or evaluated twice, only exactness is.

Example:
    >>> recorded = Recorded(*store.load_trials(), budget=100)
    >>> k = recorded.match(new_archs, iteration)  # leading archs the log already holds
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.search.base import Metrics
from nas.space import ArchConfig

MISMATCH = -1  # :meth:`Recorded.match`: the log does not continue with this batch


class Recorded:
    """Logged trials in iteration order with a cursor; ``budget`` is the logged run's."""

    def __init__(
        self,
        archs: Sequence[ArchConfig],
        metrics: Sequence[Metrics],
        iterations: Sequence[int],
        walls: Sequence[float],
        *,
        budget: int,
    ) -> None:
        order = np.argsort(np.asarray(iterations, dtype=np.int64), kind="stable").tolist()
        self.archs = [archs[i] for i in order]
        self.metrics = [metrics[i] for i in order]
        self.iterations = [int(iterations[i]) for i in order]
        self.walls = [float(walls[i]) for i in order]
        self.budget = budget
        self.pos = 0

    @property
    def active(self) -> bool:
        """Whether logged trials remain to be consumed."""
        return self.pos < len(self.archs)

    @property
    def last_wall(self) -> float:
        """The wall time of the last logged trial (0 without any)."""
        return max(self.walls, default=0.0)

    def match(self, new: Sequence[ArchConfig], it: int) -> int:
        """How many leading archs of ``new`` (iteration ``it``) are the next logged trials, or
        :data:`MISMATCH` when the log holds more trials that do not continue this batch."""
        k, pos = 0, self.pos
        while (
            k < len(new)
            and pos + k < len(self.archs)
            and self.iterations[pos + k] == it
            and self.archs[pos + k].key == new[k].key
        ):
            k += 1
        end = pos + k
        if end < len(self.archs) and (k < len(new) or self.iterations[end] == it):
            return MISMATCH
        return k

    def take(self, k: int) -> tuple[list[Metrics], float]:
        """Consume ``k`` trials: their metrics and the batch's wall time."""
        part = slice(self.pos, self.pos + k)
        self.pos += k
        return list(self.metrics[part]), max(self.walls[part], default=0.0)

    def rest(self) -> tuple[list[ArchConfig], list[Metrics], list[int], list[float]]:
        """Consume every remaining trial (for a plain replay)."""
        part = slice(self.pos, len(self.archs))
        self.pos = len(self.archs)
        return self.archs[part], self.metrics[part], self.iterations[part], self.walls[part]
