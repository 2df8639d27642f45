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

from nas.errors import ConfigError


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
    if len(F) == 0:
        return np.full(0, -1, dtype=np.int64)
    F = np.asarray(F, dtype=np.float64)
    if F.ndim == 2 and F.shape[1] == 2 and np.isfinite(F).all():
        return _sort_two(F, violation, enough)
    return _peel_fronts(F, violation, enough)


def _peel_fronts(F: np.ndarray, violation: np.ndarray | None, enough: int | None) -> np.ndarray:
    """:func:`nondominated_sort` for any number of objectives: peel fronts off the
    constrained dominance matrix, O(n^2) memory."""
    ranks = np.full(len(F), -1, dtype=np.int64)
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


def _sort_two(F: np.ndarray, violation: np.ndarray | None, enough: int | None) -> np.ndarray:
    """:func:`nondominated_sort` for two objectives in O(n log n) (same ranks).

    Feasible points in (f1, f2) order: a point joins the first front whose last member (the
    one with the smallest f2 so far) has a larger f2 or is an identical point; those last
    f2 values increase with the front index, so a binary search finds it. Infeasible points
    follow, one front per distinct violation, smallest first.
    """
    n = len(F)
    ranks = np.full(n, -1, dtype=np.int64)
    if violation is None:
        feas = np.ones(n, dtype=bool)
        v = np.zeros(n)
    else:
        v = np.asarray(violation, dtype=np.float64).reshape(n)
        feas = v <= 0
    idx = np.flatnonzero(feas)
    order = idx[np.lexsort((F[idx, 1], F[idx, 0]))]
    last_f2: list[float] = []  # per front, the f2 of its last member (increasing)
    last_pt: list[int] = []
    f1s, f2s = F[:, 0].tolist(), F[:, 1].tolist()
    from bisect import bisect_right

    for i in order.tolist():
        f2 = f2s[i]
        k = bisect_right(last_f2, f2)  # first front whose last f2 > f2
        if k > 0:  # the front just before may end in an identical point (no domination)
            j = last_pt[k - 1]
            if f2s[j] == f2 and f1s[j] == f1s[i]:
                k -= 1
        if k == len(last_f2):
            last_f2.append(f2)
            last_pt.append(i)
        else:
            last_f2[k] = f2
            last_pt[k] = i
        ranks[i] = k
    n_fronts = len(last_f2)
    if (~feas).any():
        bad = np.flatnonzero(~feas)
        _, level = np.unique(v[bad], return_inverse=True)
        ranks[bad] = n_fronts + level.reshape(-1)
    if enough is not None and enough < n:
        # as the peeling version does: whole fronts until ``enough`` are ranked, the rest after
        counts = np.bincount(ranks)
        cut = int(np.searchsorted(np.cumsum(counts), enough))
        ranks[ranks > cut] = cut + 1
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
        raise ConfigError(f"hypervolume: points have shape {F.shape}, reference {ref.shape}")
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
    """How much each of ``points`` alone would add to the 2-D hypervolume of ``front``
    (exact, vectorised over the points: each is clipped against the front's staircase)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    front = np.asarray(front, dtype=np.float64).reshape(-1, 2)
    if len(front):
        front = front[np.argsort(front[:, 0])]
        xs = front[:, 0]
        ys = np.minimum.accumulate(front[:, 1])
    else:
        xs = ys = np.empty(0)
    lo = np.concatenate([[-np.inf], xs])  # segment j spans [lo[j], hi[j]) at staircase level[j]
    hi = np.concatenate([xs, [reference[0]]])
    level = np.minimum(np.concatenate([[reference[1]], ys]), reference[1])
    a, b = points[:, :1], points[:, 1:]
    width = np.clip(np.minimum(hi, reference[0])[None, :] - np.maximum(lo[None, :], a), 0, None)
    height = np.clip(level[None, :] - b, 0, None)
    return (width * height).sum(axis=1)


def crowding_by_front(F: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """:func:`crowding_distance` of every point within its front (same values), vectorised
    over all fronts at once."""
    F = np.asarray(F, dtype=np.float64)
    ranks = np.asarray(ranks)
    n, k = F.shape
    out = np.zeros(n)
    if n == 0:
        return out
    for j in range(k):
        order = np.lexsort((F[:, j], ranks))  # by front, then by objective j (stable)
        r, col = ranks[order], F[order, j]
        change = r[1:] != r[:-1]
        start = np.concatenate([[True], change])
        end = np.concatenate([change, [True]])
        group = np.cumsum(start) - 1
        span = (col[end] - col[start])[group]
        interior = ~(start | end) & (span > 0)
        gap = np.zeros(n)
        gap[1:-1] = col[2:] - col[:-2]
        contrib = np.zeros(n)
        contrib[interior] = gap[interior] / span[interior]
        out[order] += contrib
        out[order[start | end]] = np.inf
    return out
