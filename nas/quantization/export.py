"""Export a subnet with its quantization policy: ``model.onnx`` quantized.

:func:`export_quantized` writes a normal export (:func:`nas.export.export_subnet`), keeps the
float ONNX model as ``model_float.onnx`` and replaces ``model.onnx`` by the model in which
exactly the policy's quantized layers are quantized: for convolutional spaces their Conv
nodes (QDQ, static), calibrated on the user's data (the batches
:func:`~nas.quantization.fake.calibration_inputs` picks, as the supernet's fake quantization
does); for transformer spaces their MatMul nodes become ``MatMulNBits`` (weight-only, no
data needed: ``data`` may be ``None``). ``arch.json`` gains a ``quantization`` entry (policy,
quantized nodes, ``size_bytes``, ``onnx_bytes``) and ``metrics.json`` the sizes.

Example:
    >>> out = export_quantized(supernet, arch, "exports/q", train)
    >>> session = nas.load_subnet(out, format="onnx")    # the quantized model
    >>> export_quantized(gpt_supernet, arch, "exports/q4", None)   # MatMulNBits, no data
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nas.errors import ConfigError
from nas.quantization.fake import calibration_inputs, layer_bits, quantized_layers
from nas.quantization.onnx_quant import quantize_convs, quantize_matmuls
from nas.quantization.space import QUANT_KEY, policy_of, reduce_range, size_bytes, weight_only
from nas.space import ArchConfig

FLOAT_ONNX_FILE = "model_float.onnx"


def export_quantized(
    supernet: Any, arch: ArchConfig, out_dir: str | Path, data: Any, *,
    n_batches: int = 4, batch_size: int = 64, task: Any = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Export ``arch`` of ``supernet`` with its policy applied in ONNX (see the module doc).

    Raises:
        ConfigError: the calibration set is too small, or the ONNX export failed.
    """
    from nas.counting import count
    from nas.export import export_subnet, write_export_metrics
    from nas.rundir import ARCH_FILE, ONNX_FILE, atomic_write, atomic_write_json, read_json

    supernet.space.validate(arch)
    if weight_only(supernet.space):
        inputs = []
    else:
        inputs = calibration_inputs(data, n_batches=n_batches, batch_size=batch_size,
                                    resolution=supernet.input_resolution(arch), task=task)
    supernet.set_active(arch)
    out = export_subnet(supernet, arch, out_dir, formats=("torch", "onnx"))
    info = read_json(out / ARCH_FILE)
    if ONNX_FILE not in info["files"]:
        raise ConfigError(f"{out}: the ONNX export failed ({info['errors'].get(ONNX_FILE)}); "
                          "nothing to quantize")
    (out / ONNX_FILE).replace(out / FLOAT_ONNX_FILE)
    tmp = out / f".{ONNX_FILE}.quantizing"
    if weight_only(supernet.space):
        report = _quantize_weight_only(supernet, arch, out / FLOAT_ONNX_FILE, tmp)
    else:
        weights = {layer.weight_name for layer in quantized_layers(supernet, arch)}
        report = quantize_convs(out / FLOAT_ONNX_FILE, tmp, [x.numpy() for x in inputs],
                                weights, reduce_range=reduce_range(supernet.space))
        report["reduce_range"] = reduce_range(supernet.space)
        report["calibration_images"] = sum(len(x) for x in inputs)
    data_bytes = tmp.read_bytes()
    atomic_write(out / ONNX_FILE, lambda f: f.write(data_bytes))
    tmp.unlink()
    params = count(supernet.space, arch, supernet.num_classes)["params"]
    sizes = {"size_bytes": size_bytes(supernet.space, arch, params),
             "onnx_bytes": (out / ONNX_FILE).stat().st_size,
             "float_onnx_bytes": (out / FLOAT_ONNX_FILE).stat().st_size}
    info["files"] = {**info["files"], ONNX_FILE: _sha256(out / ONNX_FILE),
                     FLOAT_ONNX_FILE: _sha256(out / FLOAT_ONNX_FILE)}
    info["quantization"] = {"policy": policy_of(supernet.space, arch), **report, **sizes}
    atomic_write_json(out / ARCH_FILE, info)
    write_export_metrics(out, {**dict(metrics or {}), **sizes})
    return out


def _quantize_weight_only(supernet: Any, arch: ArchConfig, src: Path, dst: Path) -> dict[str, Any]:
    """``MatMulNBits`` for exactly the policy's linear layers of ``arch`` (see the module doc)."""
    from nas.quantization.weight_only import ACCURACY_LEVEL

    meta = supernet.space.meta[QUANT_KEY]
    state = supernet.extract(arch).state_dict()
    layers = layer_bits(supernet, arch)
    weights = {layer.name: (state[layer.weight_name].detach().cpu().numpy().T, bits)
               for layer, bits in layers}
    report = quantize_matmuls(src, dst, weights, block_size=int(meta["block_size"]),
                              symmetric=bool(meta["symmetric"]), accuracy_level=ACCURACY_LEVEL)
    for layer, _ in layers:
        report["quantized_nodes"][layer.name]["weight"] = layer.weight_name
    return {"scheme": "weight_only", "block_size": int(meta["block_size"]),
            "symmetric": bool(meta["symmetric"]), "accuracy_level": ACCURACY_LEVEL, **report}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
