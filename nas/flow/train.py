"""Flow step 1: train a supernet into a run directory, and load it back.

:func:`train` records everything a later step needs to rebuild the network and reload the
data: the task and the data (``run.json``), every build option of the supernet
(``supernet/config.json``). :func:`load_supernet` rebuilds the trained network from them.

Example:
    >>> from nas.flow import train, load_supernet
    >>> result = train("runs/tiny", "tiny", data=DataSpec(data="digits"),
    ...                config=nas.TrainConfig(epochs=2))
    >>> supernet = load_supernet("runs/tiny")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas.errors import ConfigError, RunDirError
from nas.registry import create_supernet, resolve_space
from nas.rundir import RunDir
from nas.space import SearchSpace
from nas.tasks import DataSpec, Task, task_for_space
from nas.train import Progress, TrainConfig, TrainResult, check_resume, train_supernet


def _space(space: SearchSpace | str) -> SearchSpace:
    return space if isinstance(space, SearchSpace) else resolve_space(space)


def train(
    run_dir: str | Path,
    space: SearchSpace | str,
    *,
    data: DataSpec | None = None,
    config: TrainConfig | None = None,
    supernet_options: Mapping[str, Any] | None = None,
    task: Task | None = None,
    resume: bool = False,
    workers: int = 1,
    threads_per_worker: int = 1,
    progress: Callable[[Progress], None] | None = None,
    initial_state: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train a supernet of ``space`` on ``data`` into ``run_dir`` (created if missing).

    Args:
        run_dir: the run directory.
        space: a space or its name (``module:name`` for a user's module).
        data: the data (default: the embedded digits, 10% held out).
        config: the schedule and hyper-parameters (default :class:`nas.TrainConfig`).
        supernet_options: build options of the supernet beyond the space (e.g. NAS-Bench-201's
            ``channels``); recorded so every later step rebuilds the same network.
        task: the task (default: the space's).
        resume: continue the run from its checkpoint, on the same data.
        workers: data-parallel Ray Train workers (1: in this process).
        threads_per_worker: torch threads of each Ray Train worker.
        progress: called after every step.
        initial_state: the fresh supernet's starting weights (e.g. an imported model's);
            ``supernet_options["num_classes"]`` overrides the task's output count.

    Example:
        >>> train("runs/tiny", "tiny", config=nas.TrainConfig(epochs=1))
    """
    space, data, config = _space(space), data or DataSpec(), config or TrainConfig()
    task = task or task_for_space(space)
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive int, got {workers!r}")
    _check_run(Path(run_dir), space, data, resume)
    train_data, val_data = task.load(data)  # before anything is written
    run = RunDir.create(run_dir, space, task=task.name)
    run.update_info(task=task.name, data=data.to_dict())
    options = {"num_classes": task.num_outputs(train_data), **dict(supernet_options or {})}
    supernet = _fresh_supernet(space, config.seed, options, initial_state)
    started = time.perf_counter()
    if workers > 1:
        from nas.distributed.train import train_supernet_distributed

        result = train_supernet_distributed(
            supernet, train_data, val_data, config, run, workers=workers, resume=resume,
            progress=progress, threads_per_worker=threads_per_worker,
        )
    else:
        result = train_supernet(supernet, train_data, val_data, config, run, resume=resume,
                                progress=progress, task=task)
    run.record_timing("train", time.perf_counter() - started)
    return result


def _fresh_supernet(space: SearchSpace, seed: int, options: Mapping[str, Any],
                    initial_state: Mapping[str, Any] | None) -> Any:
    """The supernet, seeded, with ``initial_state`` loaded if given."""
    import torch

    torch.manual_seed(seed)
    supernet = create_supernet(space.name, **options)
    if initial_state is not None:
        supernet.load_state_dict(initial_state)
    return supernet


def _check_run(path: Path, space: SearchSpace, data: DataSpec, resume: bool) -> None:
    """Refuse, before any work, what training would have to refuse later."""
    if not RunDir.is_run(path):
        if resume:
            raise RunDirError(f"{path}: no run to resume")
        return
    run = RunDir.open(path, space)
    check_resume(run, resume)
    before = run.info().get("data")
    if resume and before is not None and before != data.to_dict():
        raise RunDirError(f"resume: the run was trained on {before}, not {data.to_dict()}")


def load_supernet(run: RunDir | str | Path, *, device: str = "cpu") -> Any:
    """The run's supernet, rebuilt with its recorded options and the trained weights."""
    from nas.checkpoint import load_checkpoint

    run = run if isinstance(run, RunDir) else RunDir.open(run)
    checkpoint = run.require_checkpoint()
    supernet = create_supernet(run.space.name, **run.supernet_build())
    state = load_checkpoint(checkpoint, space=run.space)
    try:
        supernet.load_state_dict(state["model"])
    except RuntimeError as exc:  # shapes differ: the recorded build options are not the net's
        raise RunDirError(
            f"{checkpoint}: the weights do not fit the network that {run.supernet_config} "
            f"describes ({str(exc).splitlines()[0]})"
        ) from None
    return supernet.to(device).eval()
