"""Building a latency lookup table on this machine: every distinct layer, timed once.

:func:`distinct_layers` lists the distinct ``LayerSpec`` s of a space at every resolution
without enumerating the space: with every stage at full depth, each block's layer depends on
its own choices and the resolution, so the architectures whose blocks all share one setting
(e.g. all kernel 5, expand 4) at each resolution cover them. A seeded random sample on top
catches layers that depend on a neighbour's choice. :func:`build_lookup_table` times each
layer alone (warm-up, repeats, median) and saves partial results atomically every few
seconds and after every round, so an interrupted build resumes where it stopped. Each layer
runs on its own kind of input (:mod:`nas.hardware.inputs`: token ids, features, images); a
language-model space is timed at ``seq_len`` tokens (default its ``meta["seq_len"]``), while
the table's keys stay the space's layer keys, as they do not name the batch either.

On a machine shared with other jobs, measure in several ``rounds``: every round sweeps all
layers (or subnets, in :func:`measure_subnets`) in a fresh random order, so a busy spell
touches random layers rather than a run of similar ones (the layers are listed resolution by
resolution); keep the minimum over rounds, and give tiny layers more runs with
``min_time_s``.

A quantized space (``nas.quantized``) has one entry per (layer, precision); in ONNX Runtime
its layers and subnets are timed as :func:`nas.export_quantized` deploys them
(:mod:`nas.hardware.quantized`); ``runtime="torch"`` refuses layers below 32 bits.

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

from nas.errors import ConfigError
from nas.hardware.inputs import layer_case, subnet_input
from nas.hardware.measure import LatencyStats, measure_latency, measure_onnx
from nas.hardware.quantized import (
    check_layers,
    check_subnets,
    deployed_layer,
    deployed_subnet,
    deploys_quantized,
    input_tensor,
    timed_seq_len,
)
from nas.registry import REGISTRY
from nas.rundir import atomic_write_json, read_json
from nas.space import ArchConfig, SearchSpace

log = logging.getLogger(__name__)

# per-block dimensions: ``s1.b0.kernel`` (CNN stages) or ``l3.heads`` (transformer layers)
_BLOCK = re.compile(r"^(?:[^.]+\.b|l)\d+\.(?P<field>.+)$")
MAX_UNIFORM = 5000
SAVE_EVERY_S = 2.0
"""Seconds between rewrites of the partial-results file (and at the end of every round)."""


def layers_function(space: SearchSpace) -> Callable[..., list[Any]]:
    """The space's registered ``layers(space, arch, num_classes)``; ``ValueError`` if none."""
    layers = REGISTRY.entry(space.name).layers
    if layers is None:
        raise ConfigError(f"search space {space.name!r} registers no layers function")
    return layers


def covering_archs(space: SearchSpace, *, extra: int = 200, seed: int = 0) -> list[ArchConfig]:
    """Architectures whose layers include every distinct layer of ``space`` (see module doc)."""
    depth_dims = [c for c in space.choices if c.name == "depth" or c.name.endswith(".depth")]
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
    seq_len: int | None = None,
) -> dict[str, dict[str, float]]:
    """Time every distinct layer of ``space``; ``{key: LatencyStats.to_dict()}``.

    Args:
        space: the search space (its ``layers`` function must be registered).
        runtime, batch_size, device, threads, warmup, repeats, clock: as in measure_latency.
        num_classes: classifier width (vocabulary) used to describe the head.
        rounds: sweeps over all layers, each in its own random order (seeded by ``seed``);
            the stats merge them (median of medians, minimum).
        min_time_s: per layer and round, time until this many seconds are spent (ditto).
        partial_path: a JSON file with the layers timed so far; read to resume, rewritten
            atomically every :data:`SAVE_EVERY_S` seconds and after every round.
        seq_len: tokens per sequence of a language model (default ``meta["seq_len"]``).
        progress: called with ``(done, total)`` after every layer.
    """
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    seq_len = timed_seq_len(space, seq_len, runtime)
    timing: dict[str, Any] = {"runtime": runtime, "warmup": warmup, "repeats": repeats,
                              "device": device, "threads": threads, "clock": clock,
                              "min_time_s": min_time_s}
    specs = distinct_layers(space, num_classes=num_classes)
    exported = _layer_models(space, specs, runtime)
    partial = _PartialTable(partial_path, space, batch_size, timing, seq_len)
    done = partial.load(len(specs))

    def visit(i: int, r: int) -> bool:
        if len(done.get(specs[i].key, [])) > r:
            return False  # timed before an interruption
        module, x = layer_case(specs[i], batch=batch_size, seq_len=seq_len)
        stats = _time_layer(space, specs[i], module, x, timing, exported, keep=rounds > 1)
        done.setdefault(specs[i].key, []).append(stats.to_dict())
        partial.save(done, force=False)
        return True

    try:
        _sweep(len(specs), rounds, seed, visit, progress,
               done=sum(min(len(v), rounds) for v in done.values()),
               end_round=lambda: partial.save(done, force=True))
    except BaseException:
        partial.save(done, force=True)  # keep what was timed, for the resume
        raise
    return {s.key: _merge(done[s.key][:rounds]) for s in specs}


def _layer_models(space: SearchSpace, specs: list[Any], runtime: str) -> dict[str, bytes] | None:
    """Where a quantized space in ONNX Runtime keeps its layers' deployed ONNX models (``None``
    for any other); refuses layers below 32 bits in any other runtime."""
    check_layers(space, specs, runtime)
    return {} if deploys_quantized(space, runtime) else None


def _time_layer(
    space: SearchSpace, spec: Any, module: Any, x: Any, timing: dict[str, Any],
    exported: dict[str, bytes] | None, *, keep: bool,
) -> LatencyStats:
    """Time one layer (before its entry is made: an error leaves none): with ``exported`` (a
    quantized space in ONNX Runtime) the ONNX model its quantized export deploys (kept in
    ``exported`` for later rounds when ``keep``), else ``measure_latency``."""
    if exported is None:
        return measure_latency(module, x, **timing)
    tensor = input_tensor(x)
    data = exported.get(spec.key) or deployed_layer(space, spec, module, tensor)
    if keep:
        exported[spec.key] = data
    return _time_onnx(data, tensor, timing, timing["warmup"])


def _time_onnx(model: bytes, x: Any, timing: dict[str, Any], warmup: int) -> LatencyStats:
    return measure_onnx(model, x, warmup=warmup, repeats=timing["repeats"],
                        threads=timing["threads"], min_time_s=timing["min_time_s"],
                        max_repeats=1000)


class _PartialTable:
    """The partial-results file of :func:`build_lookup_table`: the layers timed so far."""

    def __init__(
        self,
        path: str | Path | None,
        space: SearchSpace,
        batch_size: int,
        timing: dict[str, Any],
        seq_len: int | None = None,
    ) -> None:
        self.path = path
        # what a resumed build must share with the partial results (warm-up and repeats may
        # change between runs)
        self.settings: dict[str, Any] = {
            "space": space.name, "fingerprint": space.fingerprint(), "runtime": timing["runtime"],
            "batch_size": batch_size, "device": timing["device"], "threads": timing["threads"],
            "clock": timing["clock"],
        }
        if timing["min_time_s"]:
            self.settings["min_time_s"] = timing["min_time_s"]
        if seq_len is not None:
            self.settings["seq_len"] = seq_len
        self._saved_at = time.monotonic()

    def load(self, n_specs: int) -> dict[str, list[dict[str, float]]]:
        """The stats per layer key timed before (empty without a file); raises if the file
        was measured with other settings."""
        if self.path is None or not Path(self.path).is_file():
            return {}
        partial = read_json(self.path)
        if not isinstance(partial, dict) or partial.get("settings") != self.settings:
            raise ConfigError(
                f"{self.path}: partial results were measured with other settings "
                f"({partial.get('settings') if isinstance(partial, dict) else partial!r}); "
                "delete the file or use the same settings"
            )
        done = {k: list(v) for k, v in partial.get("layers", {}).items()}
        log.info("resuming: %d of %d layers already timed", len(done), n_specs)
        return done

    def save(self, done: dict[str, list[dict[str, float]]], *, force: bool) -> None:
        """Rewrite the file atomically (at most every :data:`SAVE_EVERY_S` unless ``force``)."""
        if self.path is not None and (
            force or time.monotonic() - self._saved_at >= SAVE_EVERY_S
        ):
            atomic_write_json(self.path, {"settings": self.settings, "layers": done})
            self._saved_at = time.monotonic()


def _sweep(
    n: int,
    rounds: int,
    seed: int,
    visit: Callable[[int, int], bool],
    progress: Callable[[int, int], None] | None,
    *,
    done: int = 0,
    end_round: Callable[[], None] | None = None,
) -> None:
    """``visit(i, r)`` every item ``i < n`` in each round ``r``, in the round's order (see
    :func:`_order`); ``progress(done, n * rounds)`` after each visit that measured (``True``).

    Rounds sweep every item in turn, each in a new order, so a busy spell hits random items,
    not a run of similar ones.
    """
    for r in range(rounds):
        for i in _order(list(range(n)), rounds, seed, r):
            if visit(i, r):
                done += 1
                if progress is not None:
                    progress(done, n * rounds)
        if end_round is not None:
            end_round()


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
    seq_len: int | None = None,
    keep_models: bool = True,
    calibration: Any = None,
) -> list[dict[str, float]]:
    """Time whole subnets end to end (``supernet.extract(arch)``), one stats dict per arch;
    a quantized space in ONNX Runtime: what ``export_quantized`` writes (module doc),
    calibrated on the image set ``calibration`` (default random images).

    With ``rounds > 1`` the subnets stay built and are timed round-robin, each round in its
    own seeded random order (robust to a shared machine, see the module doc); the stats
    merge the rounds (median of medians, overall minimum). ``min_time_s`` as in
    :func:`nas.hardware.measure_latency`. A language model reads ``seq_len`` random tokens
    (default its ``meta["seq_len"]``), other networks their supernet's ``example_input``.
    ``keep_models=False`` extracts each subnet again every round instead of keeping all of
    them built (for subnets too big to hold at once).

    Example:
        >>> rows = measure_subnets(space, space.sample_many(50, rng), repeats=10)
        >>> [r["median_ms"] for r in rows]
    """
    from nas.registry import create_supernet

    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    deployed = _deploys_subnets(space, archs, runtime)
    seq_len = timed_seq_len(space, seq_len, runtime)
    supernet: Any = create_supernet(space.name, num_classes=num_classes)
    supernet.eval()
    runs: list[list[dict[str, float]]] = [[] for _ in archs]
    # with several rounds the models stay built and are timed in turn, round after round
    models: dict[int, Any] = {}
    timing: dict[str, Any] = {"runtime": runtime, "repeats": repeats, "device": device,
                              "threads": threads, "clock": clock, "min_time_s": min_time_s}

    def visit(i: int, r: int) -> bool:
        model = models.get(i) or _subnet_model(supernet, archs[i], deployed, calibration)
        if rounds > 1 and keep_models:
            models[i] = model
        x = subnet_input(supernet, space, archs[i], batch=batch_size, seq_len=seq_len)
        runs[i].append(_time_subnet(model, x, timing, warmup if r == 0 else 1, deployed))
        return True

    _sweep(len(archs), rounds, seed, visit, progress)
    return [_merge(x) for x in runs]


def _deploys_subnets(space: SearchSpace, archs: list[ArchConfig], runtime: str) -> bool:
    """Whether subnets are timed as quantized exports; refuses bits below 32 outside ORT."""
    check_subnets(space, archs, runtime)
    return deploys_quantized(space, runtime)


def _subnet_model(supernet: Any, arch: ArchConfig, deployed: bool, calibration: Any) -> Any:
    """The model to time: what ``export_quantized`` writes (ONNX bytes) when ``deployed``, else
    the extracted subnet."""
    if deployed:
        return deployed_subnet(supernet, arch, calibration)
    return supernet.extract(arch)


def _time_subnet(model: Any, x: Any, timing: dict[str, Any], warmup: int,
                 deployed: bool) -> dict[str, float]:
    if deployed:
        return _time_onnx(model, input_tensor(x), timing, warmup).to_dict()
    return measure_latency(model, x, warmup=warmup, **timing).to_dict()
