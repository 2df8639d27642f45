"""Timing a quantized space in ONNX Runtime as it deploys: its layers and whole subnets.

A quantized space's latency is the latency of the models :func:`nas.export_quantized` writes:
the dynamo ONNX export with exactly the policy's Conv nodes quantized (QDQ, static, weights
per channel with the space's ``reduce_range``), or for a weight-only (transformer) space
exactly the policy's linear layers as ``MatMulNBits``. So each lookup-table layer is exported
alone the same way (:func:`nas.export.onnx_model_bytes`) and its quantized weights (the
family's :func:`~nas.quantization.layers.quantized_weight_bits` for a spec tagged
``bits < 32``) quantized as ``export_quantized`` does (:func:`deployed_layer`): convs by
:func:`~nas.quantization.onnx_quant.quantize_convs`, calibrated on a few random inputs of its
shape; linears by :func:`~nas.quantization.onnx_quant.quantize_matmuls` with the space's
block size and symmetry (no calibration). Then it is timed in ONNX Runtime; a whole subnet is
what ``export_quantized`` writes itself (:func:`deployed_subnet`), calibrated on the user's
images or random ones (weight-only: none needed). Torch eager has no int8 kernels here:
:func:`check_runtime` refuses ``runtime="torch"`` for layers or subnets below 32 bits.

A language-model subnet is exported at its space's ``meta["seq_len"]`` (as
``export_quantized`` writes it), so its ONNX Runtime timings are at that length.

Example:
    >>> stats = measure_onnx(deployed_layer(qspace, spec, spec.build(), x), x, repeats=20)
    >>> onnx_bytes = deployed_subnet(supernet, arch)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError
from nas.quantization.layers import bits_of, layer_groups, quantized_weight_bits
from nas.quantization.space import QUANT_KEY, is_quantized, policy_of, reduce_range, weight_only
from nas.quantization.support import FLOAT_BITS
from nas.space import ArchConfig, SearchSpace

if TYPE_CHECKING:
    import torch

    from nas.data import ImageData

CALIBRATION_INPUTS = 4
CALIBRATION_IMAGES = 16  # random images a subnet is calibrated on without the user's


def deploys_quantized(space: SearchSpace, runtime: str) -> bool:
    """Whether ``space`` is timed as it deploys quantized (a quantized space in ONNX Runtime)."""
    return runtime == "onnxruntime" and is_quantized(space)


def check_runtime(runtime: str, bits: Iterable[int], what: str) -> None:
    """:class:`ConfigError` if ``runtime`` cannot time ``what`` at these ``bits``."""
    low = sorted({int(b) for b in bits if int(b) < FLOAT_BITS})
    if low and runtime != "onnxruntime":
        raise ConfigError(f"runtime {runtime!r} cannot time {what} at {low} bits (torch eager "
                          "has no int8 kernels here); use runtime 'onnxruntime'")


def check_layers(space: SearchSpace, specs: Iterable[Any], runtime: str) -> None:
    """:func:`check_runtime` for a lookup table of ``specs``; :class:`ConfigError` too for a
    quantized space whose family registers no layer groups (its table could not tell the
    precisions apart)."""
    if is_quantized(space) and layer_groups(space) is None:
        raise ConfigError(f"space {space.name!r}: no lookup table per (layer, precision) for "
                          f"family {space.meta.get('family')!r} (it registers no layer groups, "
                          "see nas.quantization.layers)")
    check_runtime(runtime, (bits_of(s) for s in specs), f"the layers of space {space.name!r}")


def check_subnets(space: SearchSpace, archs: Iterable[ArchConfig], runtime: str) -> None:
    """:func:`check_runtime` for whole subnets of ``archs``."""
    bits = (b for arch in archs for b in policy_of(space, arch).values())
    check_runtime(runtime, bits, f"subnets of space {space.name!r}")


def timed_seq_len(space: SearchSpace, seq_len: int | None, runtime: str) -> int | None:
    """:func:`nas.sequence.sequence_length`, refusing (:class:`ConfigError`) a quantized
    language-model space timed in ONNX Runtime at another sequence length than its
    ``meta["seq_len"]`` (its exported subnets have that length fixed, see the module docstring)."""
    from nas.sequence import sequence_length

    default = space.meta.get("seq_len")
    if (deploys_quantized(space, runtime) and seq_len is not None and default is not None
            and int(seq_len) != int(default)):
        raise ConfigError(f"space {space.name!r} is timed in ONNX Runtime as its quantized "
                          f"export deploys, at its seq_len {default}; got seq_len {seq_len} "
                          "(leave it out)")
    return sequence_length(space, seq_len)


def deployed_layer(space: SearchSpace, spec: Any, module: Any, x: torch.Tensor, *,
                   seed: int = 0) -> bytes:
    """The ONNX model of ``spec``'s ``module`` alone, exported and quantized as a quantized
    export of ``space`` deploys it (see the module docstring)."""
    import numpy as np
    import torch

    from nas.export import onnx_model_bytes
    from nas.quantization.onnx_quant import quantize_convs

    data = onnx_model_bytes(module, x)
    bits = quantized_weight_bits(space, spec)
    if not bits:
        return data
    if weight_only(space):
        return _weight_only_layer(space, data, module, bits)
    if not torch.is_floating_point(x):
        raise ConfigError(f"layer {spec.key!r} reads {x.dtype} inputs: only float-input layers "
                          "can be quantized")
    rng = np.random.default_rng(seed)
    shape = (1, *x.shape[1:])
    calibration = [rng.standard_normal(shape, dtype=np.float32) for _ in range(CALIBRATION_INPUTS)]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "layer.onnx", Path(tmp) / "layer_q.onnx"
        src.write_bytes(data)
        quantize_convs(src, dst, calibration, list(bits), reduce_range=reduce_range(space))
        return dst.read_bytes()


def _weight_only_layer(space: SearchSpace, data: bytes, module: Any,
                       bits: dict[str, int]) -> bytes:
    """``data`` (``module`` exported) with the MatMuls of the weights in ``bits`` (name ->
    4 or 8) as ``MatMulNBits``, with the options ``export_quantized`` uses."""
    from nas.quantization.onnx_quant import quantize_matmuls
    from nas.quantization.weight_only import ACCURACY_LEVEL

    meta = space.meta[QUANT_KEY]
    state = module.state_dict()
    missing = sorted(set(bits) - set(state))
    if missing:
        raise ConfigError(f"the module has no weights {missing[:3]} to quantize; its weights "
                          f"are {sorted(state)[:6]}")
    weights = {name: (state[name].detach().cpu().numpy().T, b) for name, b in bits.items()}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "layer.onnx", Path(tmp) / "layer_q.onnx"
        src.write_bytes(data)
        quantize_matmuls(src, dst, weights, block_size=int(meta["block_size"]),
                         symmetric=bool(meta["symmetric"]), accuracy_level=ACCURACY_LEVEL)
        return dst.read_bytes()


def random_images(resolution: int, *, n: int = CALIBRATION_IMAGES, seed: int = 0) -> ImageData:
    """``n`` random RGB images of ``resolution`` (a calibration set when the user gives none)."""
    import torch

    from nas.data import TensorData

    generator = torch.Generator().manual_seed(seed)
    images = torch.rand((n, 3, resolution, resolution), generator=generator)
    return TensorData(images, torch.zeros(n, dtype=torch.int64), num_classes=1)


def deployed_subnet(supernet: Any, arch: ArchConfig, data: ImageData | None = None) -> bytes:
    """The ``model.onnx`` :func:`nas.export_quantized` writes for ``arch`` (calibrated on
    ``data``, default :func:`random_images` at the arch's resolution; a weight-only space
    needs none)."""
    from nas.quantization.export import export_quantized
    from nas.rundir import ONNX_FILE

    if data is None and not weight_only(supernet.space):
        data = random_images(int(supernet.input_resolution(arch)))
    with tempfile.TemporaryDirectory() as tmp:
        out = export_quantized(supernet, arch, Path(tmp) / "subnet", data)
        return (out / ONNX_FILE).read_bytes()


def input_tensor(x: tuple[int, ...] | torch.Tensor) -> torch.Tensor:
    """``x`` itself, or a random normal tensor of that shape."""
    import torch

    return x if isinstance(x, torch.Tensor) else torch.randn(*x)
