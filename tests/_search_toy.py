"""Toy search problems with optima known by enumeration (shared by the search tests)."""

from __future__ import annotations

import itertools

import numpy as np

import nas
from nas.search.base import canonical_rows
from nas.space import ArchConfig, SearchSpace, choice


def tiny() -> SearchSpace:
    return nas.create_space("tiny")


def toy_metrics(space: SearchSpace, archs: list[ArchConfig]) -> list[dict[str, float]]:
    """accuracy: a weighted sum of active choice positions (largest is best);
    latency_ms: grows with resolution, depth and expand (conflicts with accuracy)."""
    idx = space.indices(archs)
    weights = np.linspace(1.0, 2.0, idx.shape[1])
    acc = (np.clip(idx, 0, None) * weights).sum(axis=1) + (idx >= 0).sum(axis=1)
    res = np.array([float(a["resolution"]) for a in archs])
    depth = np.array([float(a["s1.depth"]) + float(a["s2.depth"]) for a in archs])
    lat = res / 8.0 + 1.5 * depth + 0.25 * (np.clip(idx, 0, None)).sum(axis=1)
    return [{"accuracy": float(a), "latency_ms": float(t)} for a, t in zip(acc, lat)]


def all_networks(space: SearchSpace) -> list[ArchConfig]:
    """Every distinct network of a small space."""
    rows = np.array(list(itertools.product(*[range(len(c.values)) for c in space.choices])))
    _, first = np.unique(canonical_rows(space, rows), axis=0, return_index=True)
    return [space.from_indices(r) for r in rows[np.sort(first)]]


def optimum(space: SearchSpace, limit: float) -> float:
    """Best toy accuracy under ``latency_ms <= limit``."""
    metrics = toy_metrics(space, all_networks(space))
    return max(m["accuracy"] for m in metrics if m["latency_ms"] <= limit)


def micro_space() -> SearchSpace:
    """Six networks: for exhaustion tests."""
    return SearchSpace("micro", [choice("a", [1, 2, 3]), choice("b", ["x", "y"])])
