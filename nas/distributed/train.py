"""Data-parallel supernet training on Ray Train (``TorchTrainer``; gloo on CPU, NCCL on GPU).

Every worker runs the same :func:`nas.train.train_supernet` loop on its slice of each global
batch. The subnets of a step come from ``(seed, step)``, so every rank trains the same ones;
after the step's subnets have accumulated their gradients, one flattened all-reduce averages
them, and every rank takes the same optimizer step. Rank 0 writes the run directory
(checkpoints, history); the driver reads the trained weights back from its checkpoint.

Start Ray only through :func:`nas.distributed.local.ensure_ray` (loopback, no dashboard);
this function does it for you.

Example:
    >>> from nas.distributed.train import train_supernet_distributed
    >>> result = train_supernet_distributed(
    ...     supernet, train, val, TrainConfig(epochs=2), "runs/tiny-2w", workers=2)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from nas.checkpoint import load_checkpoint
from nas.data import ImageData
from nas.distributed.local import ensure_ray, set_worker_threads
from nas.errors import ConfigError
from nas.rundir import RunDir
from nas.tasks import task_for_space
from nas.train import Progress, TrainConfig, TrainResult, check_resume, train_supernet

log = logging.getLogger(__name__)


def _all_reduce_mean(grads: list[torch.Tensor]) -> None:
    """Average gradients over the process group with one flattened all-reduce."""
    import torch.distributed as dist

    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _worker(config: dict[str, Any]) -> None:
    """The per-worker loop (runs inside a Ray Train worker process)."""
    import ray.train
    import ray.train.torch

    set_worker_threads(config["threads"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    train_config: TrainConfig = config["train_config"]
    if train_config.device != "cpu":
        train_config = dataclasses.replace(train_config, device=str(ray.train.torch.get_device()))
    queue = config["queue"]
    progress = None
    if rank == 0 and queue is not None:

        def progress(p: Progress) -> None:
            queue.put_nowait(dataclasses.asdict(p))

    supernet = config["supernet"]
    train_supernet(
        supernet,
        config["train_data"],
        config["val_data"],
        train_config,
        config["run_dir"],
        resume=config["resume"],
        progress=progress,
        _rank=rank,
        _world_size=world,
        _reduce_grads=_all_reduce_mean,
    )
    _check_in_sync(supernet)


def _check_in_sync(model: torch.nn.Module) -> None:
    """Raise if the ranks' weights differ (they must take identical optimizer steps)."""
    import torch.distributed as dist

    device = next(model.parameters()).device  # NCCL gathers CUDA tensors only
    mine = torch.stack([p.detach().double().sum() for p in model.parameters()]).to(device)
    gathered = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine.contiguous())
    if any(not torch.equal(g, mine) for g in gathered):
        raise RuntimeError("data-parallel ranks ended with different weights")


def _drain(queue: Any, progress: Callable[[Progress], None], done: threading.Event) -> None:
    from ray.util.queue import Empty

    while not done.is_set() or not queue.empty():
        try:
            item = queue.get(timeout=0.2)
        except Empty:
            continue
        progress(Progress(**item))


def train_supernet_distributed(
    supernet: Any,
    train_data: ImageData,
    val_data: ImageData,
    config: TrainConfig,
    run_dir: RunDir | str | Path,
    *,
    workers: int = 2,
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
    threads_per_worker: int = 1,
    ray_address: str | None = None,
) -> TrainResult:
    """Train ``supernet`` data-parallel on ``workers`` Ray Train workers.

    Arguments are those of :func:`nas.train.train_supernet`, plus:

    Args:
        workers: number of data-parallel workers (each takes ``config.batch_size`` images
            per step, so the global batch is ``workers * batch_size``).
        threads_per_worker: torch threads inside each worker.
        ray_address: join this Ray cluster instead of starting a local one.

    Returns:
        The :class:`TrainResult` read from the run directory; ``supernet`` holds the
        trained weights afterwards.

    Example:
        >>> train_supernet_distributed(supernet, train, val, TrainConfig(), "runs/x", workers=2)
    """
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive int, got {workers!r}")
    use_gpu = config.device != "cpu"
    if use_gpu and not torch.cuda.is_available():
        raise ConfigError(f"device={config.device!r} but CUDA is not available; use device='cpu'")
    ray = ensure_ray(ray_address)
    from ray.util.queue import Queue

    path = Path(run_dir.path if isinstance(run_dir, RunDir) else run_dir).resolve()
    run = RunDir.create(path, supernet.space, kind="supernet-training")
    check_resume(run, resume)
    queue = Queue(maxsize=10_000) if progress is not None else None
    loop_config = {"supernet": supernet.cpu(), "train_data": train_data, "val_data": val_data,
                   "train_config": config, "run_dir": str(path), "resume": resume,
                   "threads": threads_per_worker, "queue": queue}
    trainer = _trainer(loop_config, run, workers=workers, use_gpu=use_gpu)
    log.info("training on %d Ray Train workers (%s)", workers, "nccl" if use_gpu else "gloo")
    with _draining(queue, progress):
        try:
            trainer.fit()
        except Exception as exc:
            raise RuntimeError(f"distributed training failed: {exc}") from exc
    del ray
    return _read_back(supernet, config, run)


def _trainer(loop_config: dict[str, Any], run: RunDir, *, workers: int, use_gpu: bool) -> Any:
    """A ``TorchTrainer`` running :func:`_worker` on ``workers`` workers (NCCL on GPU)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    return TorchTrainer(
        _worker,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        run_config=RunConfig(name="ray-train", storage_path=str(run.subdir("supernet", "ray"))),
    )


@contextlib.contextmanager
def _draining(queue: Any, progress: Callable[[Progress], None] | None) -> Iterator[None]:
    """While the body runs, a thread hands rank 0's progress from ``queue`` to ``progress``;
    afterwards the thread stops and the queue shuts down."""
    done = threading.Event()
    drainer = None
    if queue is not None and progress is not None:
        drainer = threading.Thread(target=_drain, args=(queue, progress, done), daemon=True)
        drainer.start()
    try:
        yield
    finally:
        done.set()
        if drainer is not None:
            drainer.join(timeout=5)
        if queue is not None:
            queue.shutdown()


def _read_back(supernet: Any, config: TrainConfig, run: RunDir) -> TrainResult:
    """Load rank 0's final checkpoint into ``supernet`` and summarise the run."""
    import json

    state = load_checkpoint(run.checkpoint, space=supernet.space)
    supernet.load_state_dict(state["model"])
    supernet.to(config.device)
    history = [json.loads(line) for line in run.history.read_text().splitlines() if line]
    last = history[-1] if history else {}
    metric = task_for_space(supernet.space).metric
    final = {
        name: {metric: float(last[f"val_{metric}_{name}"]), "loss": float(last[f"val_loss_{name}"])}
        for name in ("smallest", "middle", "largest")
        if f"val_{metric}_{name}" in last
    }
    return TrainResult(
        run_dir=run.path,
        steps=int(state["step"]),
        epochs=int(state["epoch"]),
        history=history,
        final=final,
    )
