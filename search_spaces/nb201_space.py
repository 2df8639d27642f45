"""The NAS-Bench-201 cell space: 6 edges of a 4-node cell, 5 operations each (15,625 cells).

Cell strings use the standard form ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``: group ``n`` lists
the inputs of node ``n`` (1..3), ``op~j`` the operation on the edge from node ``j``.
Reference: Dong & Yang, "NAS-Bench-201", ICLR 2020.

Example:
    >>> space = make_space()
    >>> space.format(space.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|"))
"""

from __future__ import annotations

from nas.space import ArchConfig, InvalidArchError, SearchSpace, choice

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
N_NODES = 4
EDGES = tuple((to, frm) for to in range(1, N_NODES) for frm in range(to))


def edge_name(to: int, frm: int) -> str:
    """Dimension name of the edge ``frm -> to``, e.g. ``n2.from0``."""
    return f"n{to}.from{frm}"


class NB201Space(SearchSpace):
    """The NAS-Bench-201 space with :meth:`parse` and :meth:`format` of cell strings."""

    def parse(self, text: str) -> ArchConfig:
        """The architecture of a cell string.

        Example:
            >>> space.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|")
        """
        if not isinstance(text, str):
            raise InvalidArchError(f"a NAS-Bench-201 cell is a string, got {type(text).__name__}")
        groups = text.strip().split("+")
        if len(groups) != N_NODES - 1:
            raise InvalidArchError(
                f"NAS-Bench-201 cell {text!r}: expected {N_NODES - 1} '+'-separated node groups, "
                f"got {len(groups)}"
            )
        values: dict[str, str] = {}
        for to, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|")):
                raise InvalidArchError(
                    f"NAS-Bench-201 cell {text!r}: group {group!r} must be |...|"
                )
            tokens = group[1:-1].split("|")
            if len(tokens) != to:
                raise InvalidArchError(
                    f"NAS-Bench-201 cell {text!r}: node {to} needs {to} inputs, got {len(tokens)}"
                )
            for frm, token in enumerate(tokens):
                op, sep, src = token.partition("~")
                if not sep or src != str(frm):
                    raise InvalidArchError(
                        f"NAS-Bench-201 cell {text!r}: token {token!r} must be '<op>~{frm}'"
                    )
                values[edge_name(to, frm)] = op
        return self.arch(values)

    def format(self, arch: ArchConfig) -> str:
        """The standard cell string of ``arch``."""
        self.validate(arch)
        groups = [
            "|" + "|".join(f"{arch[edge_name(to, frm)]}~{frm}" for frm in range(to)) + "|"
            for to in range(1, N_NODES)
        ]
        return "+".join(groups)


def make_space() -> NB201Space:
    """The NAS-Bench-201 space, with the CIFAR macro skeleton in ``meta``."""
    dims = [choice(edge_name(to, frm), OPS) for to, frm in EDGES]
    meta = {"family": "nb201", "channels": 16, "cells_per_stage": 5, "resolution": 32}
    return NB201Space("nb201", dims, meta)
