"""Flow step 2: measure random subnets through the trained supernet (BN recalibrated).

The rows go to ``samples/<task metric>.csv`` (e.g. ``samples/accuracy.csv`` with columns
``key``, ``arch``, ``accuracy``, ``loss``), saved after every chunk; calling again with a larger
``n`` and the same seed measures only the subnets not yet there.

Example:
    >>> samples = collect_samples("runs/tiny", n=100, seed=0)
    >>> samples.values("accuracy")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nas.errors import ConfigError
from nas.rundir import RunDir, Samples


def _positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")
    return value


def collect_samples(
    run: RunDir | str | Path,
    n: int,
    *,
    seed: int = 0,
    bn_batches: int = 20,
    batch_size: int = 256,
    device: str = "cpu",
    chunk: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> Samples:
    """Measure ``n`` random subnets of the run's supernet on its validation data.

    Args:
        run: the trained run.
        n: subnets drawn (repeats dropped; those already in the file are not re-measured).
        seed: which subnets (``space.sample_many(n, default_rng(seed))``).
        bn_batches: BN recalibration batches per subnet (on the training data).
        batch_size: measuring batch size.
        device: where to measure.
        chunk: subnets measured between two saves.
        progress: called with ``(done, total)`` after every chunk.

    Returns:
        Every sample of the file, the earlier ones included.
    """
    from nas.evaluation import evaluate
    from nas.flow.train import load_supernet

    _positive("n", n)
    _positive("chunk", chunk)
    if not isinstance(bn_batches, int) or bn_batches < 0:
        raise ConfigError(f"bn_batches must be an int >= 0, got {bn_batches!r}")
    run = run if isinstance(run, RunDir) else RunDir.open(run)
    task = run.task
    supernet = load_supernet(run, device=device)
    train_data, val_data = task.load(run.data_spec())
    archs = list({a.key: a for a in run.space.sample_many(n, np.random.default_rng(seed))}.values())
    earlier = run.read_samples(task.metric, columns=task.metrics)
    done = {a.key for a in earlier.archs}
    todo = [a for a in archs if a.key not in done]
    kept = list(earlier.archs)
    rows: list[dict[str, float]] = [
        {m: float(r[m]) for m in task.metrics}
        for r in earlier.frame[list(task.metrics)].to_dict("records")
    ]
    started = time.perf_counter()
    for start in range(0, len(todo), chunk):
        part = todo[start : start + chunk]
        measured = evaluate(supernet, part, val_data, bn_data=train_data, n_bn_batches=bn_batches,
                            batch_size=batch_size, device=device, task=task)
        kept += part
        rows += [{m: r[m] for m in task.metrics} for r in measured]
        run.write_samples(task.metric, kept, rows)
        if progress is not None:
            progress(len(archs) - len(todo) + start + len(part), len(archs))
    if todo:
        run.record_timing("collect samples", time.perf_counter() - started)
    return run.read_samples(task.metric, columns=task.metrics)
