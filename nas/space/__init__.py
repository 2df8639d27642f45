"""Search spaces: discrete choices, architecture configs and the operations searchers need.

A :class:`SearchSpace` is an ordered list of :class:`Choice` dimensions with dotted names
(``s3.b1.kernel``, ``s3.depth``, ``resolution``). A dimension may be *conditional*: the blocks
of an elastic stage exist only while the stage's depth reaches them. An :class:`ArchConfig`
holds one value per dimension; inactive dimensions keep a value (so OFA's fixed-length lists
round-trip) but do not change the network, its ``key`` or its encoding.

Modules: :mod:`~nas.space.choice` (dimensions), :mod:`~nas.space.conditions` (which are
active), :mod:`~nas.space.search_space` (the space and its architectures).

Example:
    >>> space = SearchSpace("toy", [*stage("s1", depth=[1, 2], block={"kernel": [3, 5]}),
    ...                             choice("resolution", [32, 48])])
    >>> arch = space.sample(np.random.default_rng(0))
    >>> space.validate(arch)
"""

from __future__ import annotations

from nas.errors import InvalidArchError
from nas.space.choice import Choice, Condition, Value, choice, stage
from nas.space.search_space import ArchConfig, Encoding, SearchSpace

__all__ = [
    "ArchConfig",
    "Choice",
    "Condition",
    "Encoding",
    "InvalidArchError",
    "SearchSpace",
    "Value",
    "choice",
    "stage",
]
