"""The one door to ``onnxruntime.quantization``: static QDQ Conv nodes, ``MatMulNBits`` linears.

:func:`quantize_convs` quantizes exactly the Conv nodes whose weight initializer is named in
``weights`` (weights per channel, symmetric int8; input and output per tensor, asymmetric
int8, MinMax ranges from the calibration inputs) and leaves every other node float
(``nodes_to_exclude``). :func:`quantize_matmuls` replaces exactly the chosen MatMul nodes by
``MatMulNBits`` (weight-only, 4 or 8 bits, blocks along K, asymmetric; one quantizer pass per
bit width, every other node in ``nodes_to_exclude``). The exporter names folded weights
``val_<n>``, so a MatMul is found by its weight's values (the transposed torch weight).

Example:
    >>> quantize_convs("model.onnx", "model_q.onnx", calibration, {"blocks.1.expand.conv.weight"})
    >>> quantize_matmuls("model.onnx", "model_q4.onnx", {"l0.qkv": (w.T, 4)}, block_size=32)
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
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
    with tempfile.TemporaryDirectory() as tmp, _no_preprocessing_advice():
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


class _PreprocessingAdvice(logging.Filter):
    """Drops the advice ``quantize_static`` logs on the root logger at every call (to run
    ONNX Runtime's shape-inference pre-processing, which these small graphs do not need)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _no_preprocessing_advice() -> Iterator[None]:
    root, advice = logging.getLogger(), _PreprocessingAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def _matmul_weights(model: Any) -> list[tuple[str, np.ndarray]]:
    """``(node name, B)`` of the MatMul nodes whose second input is a 2-D initializer."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits:
            b = numpy_helper.to_array(inits[node.input[1]])
            if b.ndim == 2:
                out.append((node.name, b))
    return out


def _nbits_quantizer() -> Any:
    """``MatMulNBitsQuantizer``, imported without its module's side effect: it calls
    ``logging.basicConfig(level=INFO)`` on import, which would make the root logger (and
    every library's INFO messages) loud; the root logger's handlers and level are restored."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    return MatMulNBitsQuantizer


def quantize_matmuls(
    src: str | Path, dst: str | Path, weights: Mapping[str, tuple[np.ndarray, int]], *,
    block_size: int, symmetric: bool = False, accuracy_level: int | None = None,
) -> dict[str, Any]:
    """Write ``src`` with the MatMul nodes of ``weights`` as ``MatMulNBits`` to ``dst``.

    Args:
        weights: label (``"l0.qkv"``) -> ``(B, bits)``: the MatMul's ``K x N`` weight as in
            the model (the torch weight transposed) and 4 or 8.
        block_size, symmetric, accuracy_level: ``MatMulNBitsQuantizer``'s options.

    Returns:
        ``{"quantized_nodes": {label: {"node": name, "bits": b}}, "float_nodes": n}``.

    Raises:
        ConfigError: a weight matches no MatMul of the model (or several), or bits not 4/8.
    """
    import onnx

    quantizer_class = _nbits_quantizer()
    model = onnx.load(str(src))
    candidates = _matmul_weights(model)
    chosen: dict[str, tuple[str, int]] = {}
    for label, (b, bits) in weights.items():
        if bits not in (4, 8):
            raise ConfigError(f"{label}: MatMulNBits bits must be 4 or 8, got {bits}")
        b = np.asarray(b, np.float32)
        hits = [name for name, w in candidates if w.shape == b.shape and np.array_equal(w, b)]
        if len(hits) != 1:
            raise ConfigError(f"{src}: {len(hits)} MatMul nodes have the weight of {label} "
                              f"{b.shape}; expected exactly one")
        chosen[label] = (hits[0], int(bits))
    names = [n.name for n in model.graph.node]
    for bits in sorted({b for _, b in chosen.values()}):
        include = {node for node, b in chosen.values() if b == bits}
        quantizer = quantizer_class(
            model, bits=bits, block_size=block_size, is_symmetric=symmetric,
            accuracy_level=accuracy_level, nodes_to_exclude=[n for n in names if n not in include],
        )
        quantizer.process()
        model = quantizer.model.model
    onnx.save(model, str(dst))
    float_nodes = sum(1 for n in model.graph.node if n.op_type == "MatMul")
    return {"quantized_nodes": {label: {"node": node, "bits": bits}
                                for label, (node, bits) in chosen.items()},
            "float_nodes": float_nodes}


def run_session(path: str | Path, x: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """The first output of the ONNX model at ``path`` on input ``x`` (CPU, ``threads``;
    integer inputs such as token ids are passed as they are, others as float32)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = x if x.dtype.kind in "iu" else x.astype(np.float32)
    return session.run(None, {session.get_inputs()[0].name: feed})[0]  # type: ignore[no-any-return]
