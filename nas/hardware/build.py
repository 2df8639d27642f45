"""Building a latency lookup table on this machine: every distinct layer, timed once.

:func:`distinct_layers` lists the distinct ``LayerSpec`` s of a space at every resolution
without enumerating the space: with every stage at full depth, each block's layer depends on
its own choices and the resolution, so the architectures whose blocks all share one setting
(e.g. all kernel 5, expand 4) at each resolution cover them. A seeded random sample on top
catches layers that depend on a neighbour's choice. :func:`build_lookup_table` times each
layer alone (warm-up, repeats, median) and saves partial results atomically every few
seconds and after every round, so an interrupted build resumes where it stopped.

On a machine shared with other jobs, measure in several ``rounds``: every round sweeps all
layers (or subnets, in :func:`measure_subnets`) in a fresh random order, so a busy spell
touches random layers rather than a run of similar ones (the layers are listed resolution by
resolution); keep the minimum over rounds, and give tiny layers more runs with
``min_time_s``.

Example:
    >>> specs = distinct_layers(space)
    >>> table = build_lookup_table(space, partial_path="runs/lut_partial.json", repeats=5)
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nas.hardware.measure import measure_latency
from nas.registry import REGISTRY
from nas.rundir import atomic_write_json, read_json
from nas.space import ArchConfig, SearchSpace

log = logging.getLogger(__name__)

_BLOCK = re.compile(r"^(?P<stage>[^.]+)\.b\d+\.(?P<field>.+)$")
MAX_UNIFORM = 5000
SAVE_EVERY_S = 2.0
"""Seconds between rewrites of the partial-results file (and at the end of every round)."""


def layers_function(space: SearchSpace) -> Callable[..., list[Any]]:
    """The space's registered ``layers(space, arch, num_classes)``; ``ValueError`` if none."""
    layers = REGISTRY.entry(space.name).layers
    if layers is None:
        raise ValueError(f"search space {space.name!r} registers no layers function")
    return layers


def covering_archs(space: SearchSpace, *, extra: int = 200, seed: int = 0) -> list[ArchConfig]:
    """Architectures whose layers include every distinct layer of ``space`` (see module doc)."""
    depth_dims = [c for c in space.choices if c.name.endswith(".depth")]
    block_fields: dict[str, tuple[Any, ...]] = {}
    block_dims: dict[str, list[str]] = {}
    other = []
    for c in space.choices:
        match = _BLOCK.match(c.name)
        if match:
            block_fields.setdefault(match["field"], c.values)
            block_dims.setdefault(match["field"], []).append(c.name)
        elif c not in depth_dims:
            other.append(c)
    fields = sorted(block_fields)
    grids = [block_fields[f] for f in fields] + [c.values for c in other]
    archs = []
    if int(np.prod([len(g) for g in grids])) <= MAX_UNIFORM:
        for combo in itertools.product(*grids):
            values: dict[str, Any] = {c.name: max(c.values) for c in depth_dims}  # type: ignore[type-var]
            for f, v in zip(fields, combo[: len(fields)]):
                for dim in block_dims[f]:
                    if v in space[dim].values:
                        values[dim] = v
                    else:
                        values[dim] = space[dim].values[-1]
            for c, v in zip(other, combo[len(fields) :]):
                values[c.name] = v
            archs.append(space.arch(values))
    return archs + space.sample_many(extra, np.random.default_rng(seed))


def distinct_layers(
    space: SearchSpace, *, num_classes: int = 1000, extra: int = 200, seed: int = 0
) -> list[Any]:
    """The distinct ``LayerSpec`` s of ``space`` (deduplicated by key), in first-seen order."""
    layers = layers_function(space)
    seen: dict[str, Any] = {}
    for arch in covering_archs(space, extra=extra, seed=seed):
        for spec in layers(space, arch, num_classes):
            seen.setdefault(spec.key, spec)
    return list(seen.values())


def build_lookup_table(
    space: SearchSpace,
    *,
    runtime: str = "torch",
    batch_size: int = 1,
    device: str = "cpu",
    threads: int | None = 1,
    warmup: int = 2,
    repeats: int = 5,
    num_classes: int = 1000,
    partial_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    clock: str = "wall",
    rounds: int = 1,
    min_time_s: float = 0.0,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Time every distinct layer of ``space``; ``{key: LatencyStats.to_dict()}``.

    Args:
        space: the search space (its ``layers`` function must be registered).
        runtime, batch_size, device, threads, warmup, repeats: as in
            :func:`nas.hardware.measure_latency`.
        num_classes: classifier width used to describe the head.
        clock: ``"wall"`` or ``"thread_cpu"`` (see :func:`nas.hardware.measure_latency`).
        rounds: sweeps over all layers, each in its own random order (seeded by ``seed``);
            the stats merge them (median of medians, minimum).
        min_time_s: per layer and round, time past ``repeats`` until this many seconds are
            spent (see :func:`nas.hardware.measure_latency`).
        partial_path: a JSON file with the layers timed so far; read to resume, rewritten
            atomically every :data:`SAVE_EVERY_S` seconds and after every round.
        progress: called with ``(done, total)`` after every layer.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    specs = distinct_layers(space, num_classes=num_classes)
    done: dict[str, list[dict[str, float]]] = {}
    settings: dict[str, Any] = {
        "space": space.name, "fingerprint": space.fingerprint(), "runtime": runtime,
        "batch_size": batch_size, "device": device, "threads": threads, "clock": clock,
    }
    if min_time_s:
        settings["min_time_s"] = min_time_s
    if partial_path is not None and Path(partial_path).is_file():
        partial = read_json(partial_path)
        if not isinstance(partial, dict) or partial.get("settings") != settings:
            raise ValueError(
                f"{partial_path}: partial results were measured with other settings "
                f"({partial.get('settings') if isinstance(partial, dict) else partial!r}); "
                "delete the file or use the same settings"
            )
        done = {k: list(v) for k, v in partial.get("layers", {}).items()}
        log.info("resuming: %d of %d layers already timed", len(done), len(specs))
    total = len(specs) * rounds
    saved_at = time.monotonic()

    def save(force: bool) -> None:
        nonlocal saved_at
        if partial_path is not None and (force or time.monotonic() - saved_at >= SAVE_EVERY_S):
            atomic_write_json(partial_path, {"settings": settings, "layers": done})
            saved_at = time.monotonic()

    count = sum(min(len(v), rounds) for v in done.values())
    try:
        for r in range(rounds):
            # rounds sweep every layer in turn, each in a new order, so a busy spell hits
            # random layers, not a run of similar ones
            for spec in _order(specs, rounds, seed, r):
                if len(done.get(spec.key, [])) > r:
                    continue  # timed before an interruption
                stats = measure_latency(
                    spec.build(),
                    spec.input_shape(batch_size),
                    runtime=runtime,
                    warmup=warmup,
                    repeats=repeats,
                    device=device,
                    threads=threads,
                    clock=clock,
                    min_time_s=min_time_s,
                )
                done.setdefault(spec.key, []).append(stats.to_dict())
                count += 1
                save(force=False)
                if progress is not None:
                    progress(count, total)
            save(force=True)
    except BaseException:
        save(force=True)  # keep what was timed, for the resume
        raise
    return {s.key: _merge(done[s.key][:rounds]) for s in specs}


def _order(items: list[Any], rounds: int, seed: int, r: int) -> list[Any]:
    """``items`` in round ``r``'s order: as given for a single round, else a seeded shuffle."""
    if rounds == 1:
        return items
    perm = np.random.default_rng([seed, r]).permutation(len(items))
    return [items[i] for i in perm]


def _merge(rounds: list[dict[str, float]]) -> dict[str, float]:
    """One stats dict from several rounds: median of medians, overall minimum."""
    if len(rounds) == 1:
        return rounds[0]
    return {
        "median_ms": float(np.median([r["median_ms"] for r in rounds])),
        "mean_ms": float(np.mean([r["mean_ms"] for r in rounds])),
        "min_ms": float(min(r["min_ms"] for r in rounds)),
        "iqr_ms": float(np.median([r["iqr_ms"] for r in rounds])),
        "repeats": float(sum(r["repeats"] for r in rounds)),
    }


def measure_subnets(
    space: SearchSpace,
    archs: list[ArchConfig],
    *,
    num_classes: int = 1000,
    runtime: str = "torch",
    batch_size: int = 1,
    device: str = "cpu",
    threads: int | None = 1,
    warmup: int = 3,
    repeats: int = 10,
    progress: Callable[[int, int], None] | None = None,
    clock: str = "wall",
    rounds: int = 1,
    min_time_s: float = 0.0,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Time whole subnets end to end (``supernet.extract(arch)``), one stats dict per arch.

    With ``rounds > 1`` the subnets stay built and are timed round-robin, each round in its
    own seeded random order (robust to a shared machine, see the module doc); the stats
    merge the rounds (median of medians, overall minimum). ``min_time_s`` as in
    :func:`nas.hardware.measure_latency`.

    Example:
        >>> rows = measure_subnets(space, space.sample_many(50, rng), repeats=10)
        >>> [r["median_ms"] for r in rows]
    """
    from nas.registry import create_supernet

    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    supernet: Any = create_supernet(space.name, num_classes=num_classes)
    supernet.eval()
    runs: list[list[dict[str, float]]] = [[] for _ in archs]
    # with several rounds the models stay built and are timed in turn, round after round
    models: dict[int, Any] = {}
    done = 0
    for r in range(rounds):
        for i in _order(list(range(len(archs))), rounds, seed, r):
            arch = archs[i]
            model = models.get(i) or supernet.extract(arch)
            if rounds > 1:
                models[i] = model
            res = int(arch["resolution"]) if "resolution" in space.names else int(
                space.meta.get("resolution", 224)
            )
            stats = measure_latency(
                model,
                (batch_size, 3, res, res),
                runtime=runtime,
                warmup=warmup if r == 0 else 1,
                repeats=repeats,
                device=device,
                threads=threads,
                clock=clock,
                min_time_s=min_time_s,
            )
            runs[i].append(stats.to_dict())
            done += 1
            if progress is not None:
                progress(done, rounds * len(archs))
    return [_merge(x) for x in runs]
