"""The one door to ``onnxruntime.quantization``: static QDQ quantization of chosen Conv nodes.

:func:`quantize_convs` quantizes exactly the Conv nodes whose weight initializer is named in
``weights`` (weights per channel, symmetric int8; input and output per tensor, asymmetric
int8, MinMax ranges from the calibration inputs) and leaves every other node float
(``nodes_to_exclude``).

Example:
    >>> quantize_convs("model.onnx", "model_q.onnx", calibration, {"blocks.1.expand.conv.weight"})
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import ConfigError


class _Reader:
    """An ``onnxruntime`` calibration data reader over a list of input arrays."""

    def __init__(self, name: str, inputs: Sequence[np.ndarray]) -> None:
        self._items: Iterator[np.ndarray] = iter(inputs)
        self._name = name

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._items, None)
        return None if item is None else {self._name: item}

    def rewind(self) -> None:  # pragma: no cover - called by some calibrators only
        raise NotImplementedError


def quantize_convs(
    src: str | Path, dst: str | Path, calibration: Sequence[np.ndarray], weights: Collection[str],
    *, reduce_range: bool = False,
) -> dict[str, Any]:
    """Write ``src`` quantized (QDQ, static) to ``dst``: the Conv nodes of ``weights`` only.

    ``reduce_range`` quantizes weights to 7 bits (``[-64, 64]``), which ONNX Runtime advises on
    x86 CPUs without VNNI, whose int8 kernels otherwise saturate 16-bit sums.

    Returns:
        ``{"quantized_nodes": [...], "float_nodes": n}``.

    Raises:
        ConfigError: a weight names no Conv node of the model, or no calibration input.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if not calibration:
        raise ConfigError("static quantization needs at least one calibration batch")
    model = onnx.load(str(src))
    by_weight = {n.input[1]: n.name for n in model.graph.node if n.op_type == "Conv"}
    missing = sorted(set(weights) - set(by_weight))
    if missing:
        raise ConfigError(f"{src}: no Conv node has weight {missing[:3]}; the model's Conv "
                          f"weights are {sorted(by_weight)[:6]}...")
    include = {by_weight[w] for w in weights}
    exclude = [n.name for n in model.graph.node if n.name not in include]
    if not include:
        shutil.copyfile(src, dst)
        return {"quantized_nodes": [], "float_nodes": len(exclude)}
    name = model.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "q.onnx"
        quantize_static(
            str(src), str(out), _Reader(name, [np.asarray(x, np.float32) for x in calibration]),
            quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"], per_channel=True,
            nodes_to_exclude=exclude, activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8, reduce_range=reduce_range,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
        shutil.copyfile(out, dst)
    return {"quantized_nodes": sorted(include), "float_nodes": len(exclude)}


def run_session(path: str | Path, x: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """The first output of the ONNX model at ``path`` on input ``x`` (CPU, ``threads``)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]  # type: ignore[no-any-return]
