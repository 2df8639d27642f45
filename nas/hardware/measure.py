"""Timing a model end to end: warm-up, repeats, median and spread; CUDA synchronised.

Example:
    >>> stats = measure_latency(model, (1, 3, 224, 224), warmup=5, repeats=20)
    >>> stats.median_ms, stats.iqr_ms
"""

from __future__ import annotations

import io
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

MEASURE_RUNTIMES = ("torch", "onnxruntime")
CLOCKS = ("wall", "thread_cpu")


@dataclass(frozen=True, kw_only=True)
class LatencyStats:
    """Latency of repeated forward passes, in milliseconds.

    Attributes:
        median_ms: the median (what lookup tables and profiles store).
        mean_ms, min_ms: mean and minimum.
        iqr_ms: inter-quartile range (the spread; robust to a busy machine's outliers).
        repeats: number of timed runs.
    """

    median_ms: float
    mean_ms: float
    min_ms: float
    iqr_ms: float
    repeats: int

    def to_dict(self) -> dict[str, float]:
        """The fields as a dict."""
        return {
            "median_ms": self.median_ms,
            "mean_ms": self.mean_ms,
            "min_ms": self.min_ms,
            "iqr_ms": self.iqr_ms,
            "repeats": float(self.repeats),
        }


def _stats(times_s: list[float]) -> LatencyStats:
    ms = sorted(t * 1e3 for t in times_s)
    if len(ms) >= 4:
        q = statistics.quantiles(ms, n=4)
        iqr = q[2] - q[0]
    else:
        iqr = ms[-1] - ms[0]
    return LatencyStats(
        median_ms=statistics.median(ms),
        mean_ms=statistics.fmean(ms),
        min_ms=ms[0],
        iqr_ms=iqr,
        repeats=len(ms),
    )


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...] | torch.Tensor,
    *,
    runtime: str = "torch",
    warmup: int = 3,
    repeats: int = 10,
    device: str = "cpu",
    threads: int | None = None,
    clock: str = "wall",
    min_time_s: float = 0.0,
    max_repeats: int = 1000,
) -> LatencyStats:
    """Time ``model`` on a random input of ``input_shape`` (batch included), or on a given
    input tensor (token ids for a language model, see ``LayerSpec`` kinds' ``example_input``).

    Args:
        model: a plain ``nn.Module`` (e.g. ``supernet.extract(arch)`` or ``spec.build()``);
            it is put in eval mode and, for ``torch``, moved to ``device``.
        input_shape: e.g. ``(1, 3, 224, 224)`` (a ``randn`` input), or the input tensor.
        runtime: ``"torch"`` (eager, ``inference_mode``) or ``"onnxruntime"`` (CPU; the model
            is exported to ONNX in memory first).
        warmup: untimed runs first.
        repeats: timed runs.
        device: torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``...); CUDA is synchronised
            around every timed run.
        threads: CPU threads for the run (torch or onnxruntime); ``None`` keeps the current.
        clock: ``"wall"`` (default) or ``"thread_cpu"``: the CPU time of the calling thread,
            for single-threaded torch on a CPU shared with other jobs (time spent preempted
            does not count, so rankings survive a busy machine).
        min_time_s: keep timing past ``repeats`` until the timed runs add up to this many
            seconds (at most ``max_repeats`` runs): tiny layers get many more samples, so
            their minimum or low quantile is as trustworthy as a big layer's.
        max_repeats: the cap on timed runs that ``min_time_s`` may add.

    Returns:
        The median, mean, minimum and inter-quartile range in milliseconds.

    Example:
        >>> measure_latency(spec.build(), spec.input_shape(1), repeats=5).median_ms
    """
    shape: tuple[int, ...] = (
        tuple(input_shape) if isinstance(input_shape, (tuple, list))
        else tuple(int(s) for s in input_shape.shape)
    )
    _check_options(runtime, warmup, repeats, shape, clock, min_time_s, max_repeats, device, threads)
    budget = _Budget(repeats, min_time_s, max_repeats)
    if runtime == "onnxruntime":
        return _measure_onnxruntime(model, input_shape, warmup, budget, threads)
    timer = time.thread_time if clock == "thread_cpu" else time.perf_counter
    return _measure_torch(model, input_shape, warmup, budget, device, threads, timer)


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _input(inputs: Any, device: Any = None) -> torch.Tensor:
    """The tensor to run: ``inputs`` itself, or a ``randn`` tensor of that shape."""
    import torch

    if _is_tensor(inputs):
        return inputs.to(device) if device is not None else inputs
    return torch.randn(*inputs, device=device)


def _check_options(
    runtime: str,
    warmup: int,
    repeats: int,
    input_shape: tuple[int, ...],
    clock: str,
    min_time_s: float,
    max_repeats: int,
    device: str,
    threads: int | None,
) -> None:
    """Raise ``ValueError`` naming the first argument of :func:`measure_latency` not allowed."""
    if runtime not in MEASURE_RUNTIMES:
        raise ConfigError(f"runtime must be one of {list(MEASURE_RUNTIMES)}, got {runtime!r}")
    if warmup < 0 or repeats < 1:
        raise ConfigError(f"need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}")
    if not input_shape or any(int(s) < 1 for s in input_shape):
        raise ConfigError(f"input_shape must be positive sizes, got {input_shape}")
    if clock not in CLOCKS:
        raise ConfigError(f"clock must be one of {list(CLOCKS)}, got {clock!r}")
    if min_time_s < 0 or max_repeats < repeats:
        raise ConfigError(
            f"need min_time_s >= 0 and max_repeats >= repeats, got {min_time_s} and {max_repeats}"
        )
    if clock == "thread_cpu" and (runtime != "torch" or device != "cpu" or threads != 1):
        raise ConfigError(
            "clock='thread_cpu' needs runtime='torch', device='cpu' and threads=1, got "
            f"runtime={runtime!r}, device={device!r}, threads={threads!r}"
        )


@dataclass(frozen=True)
class _Budget:
    """How many timed runs: at least ``repeats``, more until ``min_time_s`` is spent."""

    repeats: int
    min_time_s: float
    max_repeats: int

    def more(self, times: list[float]) -> bool:
        """Whether to time another run after ``times``."""
        if len(times) < self.repeats:
            return True
        return len(times) < self.max_repeats and sum(times) < self.min_time_s


def _measure_torch(
    model: nn.Module,
    shape: tuple[int, ...] | torch.Tensor,
    warmup: int,
    budget: _Budget,
    device: str,
    threads: int | None,
    timer: Callable[[], float],
) -> LatencyStats:
    import torch

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        model = model.eval().to(dev)
        x = _input(shape, dev)
        times: list[float] = []
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            while budget.more(times):
                if cuda:
                    torch.cuda.synchronize(dev)
                start = timer()
                model(x)
                if cuda:
                    torch.cuda.synchronize(dev)
                times.append(timer() - start)
    finally:
        if threads:
            torch.set_num_threads(previous_threads)
    return _stats(times)


def _onnx_bytes(model: nn.Module, x: torch.Tensor) -> bytes:
    import torch

    buffer = io.BytesIO()
    model = model.eval().cpu()
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated but needs no onnxscript and handles any module
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["input"])  # type: ignore[arg-type]
    return buffer.getvalue()


def _measure_onnxruntime(
    model: nn.Module,
    shape: tuple[int, ...] | torch.Tensor,
    warmup: int,
    budget: _Budget,
    threads: int | None,
) -> LatencyStats:
    tensor = _input(shape).cpu()
    return _time_session(_onnx_bytes(model, tensor), tensor.numpy(), warmup, budget, threads)


def measure_onnx(
    model: str | Path | bytes,
    x: Any,
    *,
    warmup: int = 2,
    repeats: int = 10,
    threads: int | None = 1,
    min_time_s: float = 0.0,
    max_repeats: int = 10_000,
) -> LatencyStats:
    """Time an ONNX model (a file or its bytes) in ONNX Runtime on CPU, on input ``x`` (an
    array or tensor): as :func:`measure_latency` does with ``runtime="onnxruntime"``.

    Example:
        >>> measure_onnx("exports/q/model.onnx", np.zeros((1, 3, 32, 32), np.float32))
    """
    import numpy as np

    _check_options("onnxruntime", warmup, repeats, (1,), "wall", min_time_s, max_repeats,
                   "cpu", threads)
    source = model if isinstance(model, bytes) else str(model)
    array = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return _time_session(source, array, warmup, _Budget(repeats, min_time_s, max_repeats),
                         threads)


def _time_session(
    source: str | bytes, x: Any, warmup: int, budget: _Budget, threads: int | None
) -> LatencyStats:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for _ in range(warmup):
        session.run(None, {name: x})
    times: list[float] = []
    while budget.more(times):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - start)
    return _stats(times)
