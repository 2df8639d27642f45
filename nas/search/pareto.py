"""Pareto machinery: constrained domination, non-dominated sorting, crowding, hypervolume.

Every function works on a *minimisation* matrix ``F`` (one row per point, one column per
objective; maximised objectives are negated by :meth:`nas.search.base.Objectives.matrix`)
and an optional ``violation`` vector (0 = feasible, larger = more infeasible).

Constrained domination (Deb 2000): a feasible point dominates every infeasible one; of two
infeasible points the one with the smaller violation dominates; two feasible points compare
by plain Pareto domination.

Example:
    >>> F = np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0]])
    >>> nondominated_sort(F).tolist()
    [0, 0, 1]
    >>> hypervolume(F, reference=np.array([4.0, 5.0]))
    7.0
"""

from __future__ import annotations

import numpy as np


def dominance_matrix(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """Boolean ``(n, n)`` matrix: ``D[i, j]`` is true when point ``i`` dominates point ``j``."""
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    pareto = le & lt
    if violation is None:
        return pareto
    v = np.asarray(violation, dtype=np.float64).reshape(n)
    feas = v <= 0
    both_feasible = feas[:, None] & feas[None, :]
    feas_over_infeas = feas[:, None] & ~feas[None, :]
    both_infeasible = ~feas[:, None] & ~feas[None, :]
    less_violation = v[:, None] < v[None, :]
    return (both_feasible & pareto) | feas_over_infeas | (both_infeasible & less_violation)


def nondominated_sort(
    F: np.ndarray, violation: np.ndarray | None = None, *, enough: int | None = None
) -> np.ndarray:
    """The front index of every point (0 = non-dominated), under constrained domination.

    With ``enough``, peeling stops once that many points are ranked; the rest share the next
    front index (NSGA-II survival only needs the best ``population``).
    """
    n = len(F)
    ranks = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return ranks
    dom = dominance_matrix(F, violation)
    counts = dom.sum(axis=0)
    front = np.flatnonzero(counts == 0)
    rank = 0
    while front.size:  # at most n iterations: every pass removes at least one point
        ranks[front] = rank
        if enough is not None and np.count_nonzero(ranks >= 0) >= enough:
            ranks[ranks < 0] = rank + 1
            break
        counts = counts - dom[front].sum(axis=0)
        counts[ranks >= 0] = -1
        front = np.flatnonzero(counts == 0)
        rank += 1
    return ranks


def pareto_mask(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the non-dominated points (copies included); with ``violation``, of the
    feasible non-dominated points (none when nothing is feasible)."""
    if len(F) == 0:
        return np.zeros(0, dtype=bool)
    F = np.asarray(F, dtype=np.float64)
    if violation is not None:
        feas = np.asarray(violation) <= 0
        if not feas.any():
            return np.zeros(len(F), dtype=bool)
        out = np.zeros(len(F), dtype=bool)
        out[np.flatnonzero(feas)[_nondominated_mask(F[feas])]] = True
        return out
    return _nondominated_mask(F)


def _nondominated_mask(F: np.ndarray) -> np.ndarray:
    if F.shape[1] == 1:
        return F[:, 0] == F[:, 0].min()
    if F.shape[1] == 2:
        # O(n log n): sort by the first objective, keep strict improvements of the second.
        order = np.lexsort((F[:, 1], F[:, 0]))
        best = np.minimum.accumulate(F[order, 1])
        keep = np.ones(len(F), dtype=bool)
        keep[1:] = F[order[1:], 1] < best[:-1]
        # copies of a non-dominated point are non-dominated too (they sort next to it)
        dup = np.zeros(len(F), dtype=bool)
        dup[1:] = np.all(F[order[1:]] == F[order[:-1]], axis=1)
        for i in np.flatnonzero(dup):
            keep[i] = keep[i - 1]
        mask = np.zeros(len(F), dtype=bool)
        mask[order] = keep
        return mask
    return nondominated_sort(F) == 0


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each point within its front (boundary points: inf)."""
    F = np.asarray(F, dtype=np.float64)
    n, k = F.shape
    out = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(F[:, j], kind="stable")
        col = F[order, j]
        span = col[-1] - col[0]
        out[order[0]] = out[order[-1]] = np.inf
        if span > 0:
            out[order[1:-1]] += (col[2:] - col[:-2]) / span
    return out


def hypervolume(F: np.ndarray, reference: np.ndarray) -> float:
    """The volume dominated by ``F`` and bounded by ``reference`` (exact; minimisation).

    Two objectives use an O(n log n) sweep; more use recursive slicing (fine for fronts of a
    few hundred points in 3-4 objectives). Points not strictly better than the reference in
    every objective contribute nothing.
    """
    F = np.asarray(F, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if F.ndim != 2 or F.shape[1] != ref.shape[0]:
        raise ValueError(f"hypervolume: points have shape {F.shape}, reference {ref.shape}")
    F = F[np.all(ref > F, axis=1)]
    if len(F) == 0:
        return 0.0
    F = F[_nondominated_mask(F)]
    return float(_hv(F, ref))


def _hv(F: np.ndarray, ref: np.ndarray) -> float:
    k = F.shape[1]
    if k == 1:
        return float(ref[0] - F[:, 0].min())
    if k == 2:
        order = np.argsort(F[:, 0])
        x = F[order, 0]
        y = np.minimum.accumulate(F[order, 1])
        widths = np.diff(np.append(x, ref[0]))
        return float(np.sum(widths * (ref[1] - y)))
    # slice along the last objective
    order = np.argsort(F[:, -1])
    F = F[order]
    total = 0.0
    for i in range(len(F)):
        upper = F[i + 1, -1] if i + 1 < len(F) else ref[-1]
        depth = upper - F[i, -1]
        if depth <= 0:
            continue
        sub = F[: i + 1, :-1]
        sub = sub[_nondominated_mask(sub)] if len(sub) > 1 else sub
        total += depth * _hv(sub, ref[:-1])
    return total


def hypervolume_improvement_2d(
    front: np.ndarray, points: np.ndarray, reference: np.ndarray
) -> np.ndarray:
    """How much each of ``points`` alone would add to the 2-D hypervolume of ``front``."""
    front = np.asarray(front, dtype=np.float64).reshape(-1, 2)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    base = hypervolume(front, reference) if len(front) else 0.0
    out = np.empty(len(points))
    for i, p in enumerate(points):
        if np.any(p >= reference):
            out[i] = 0.0
            continue
        out[i] = hypervolume(np.vstack([front, p]), reference) - base
    return np.maximum(out, 0.0)
