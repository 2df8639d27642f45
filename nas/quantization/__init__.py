"""Quantization policies as search dimensions, fake quantization and quantized ONNX export.

* :mod:`~nas.quantization.space` — :func:`quantized` adds ``<group>.bits`` dimensions;
  :func:`policy_of`, :func:`size_bytes`.
* :mod:`~nas.quantization.support` — which space families can be quantized (plug-ins
  register) and :class:`QuantLayer`, what a supernet's ``quant_groups(arch)`` lists.
* :mod:`~nas.quantization.fake` — calibrated fake quantization in the supernet.
* :mod:`~nas.quantization.weight_only` — 4/8-bit weight-only linear layers of transformer
  spaces, as ONNX Runtime's ``MatMulNBits`` stores them (no calibration).
* :mod:`~nas.quantization.onnx_quant` — the one door to ``onnxruntime.quantization``
  (QDQ static Conv nodes, ``MatMulNBits``).
* :mod:`~nas.quantization.export` — :func:`export_quantized`.
* :mod:`~nas.quantization.qat` — quantization-aware training steps (straight-through
  estimators), what ``TrainConfig(quantization_aware=True)`` turns on.

Names needing torch are imported on first use (``import nas`` stays torch-free).

Example:
    >>> qspace = nas.quantized(nas.create_space("tiny"), granularity="block", bits=(8, 32))
    >>> gspace = nas.quantized(nas.create_space("gpt_tiny"), bits=(4, 8, 32))   # l<i>.bits
"""

from __future__ import annotations

import importlib
from typing import Any

from nas.quantization.space import is_quantized, policy_of, quantized, size_bytes
from nas.quantization.support import QuantLayer, QuantSupport, register_quant_support

_LAZY = {
    "Ranges": "nas.quantization.fake",
    "calibrate": "nas.quantization.fake",
    "calibration_inputs": "nas.quantization.fake",
    "fake_quantized": "nas.quantization.fake",
    "policy_applied": "nas.quantization.fake",
    "export_quantized": "nas.quantization.export",
    "fake_quant_blockwise": "nas.quantization.weight_only",
    "quantization_aware": "nas.quantization.qat",
}

__all__ = [
    "QuantLayer",
    "QuantSupport",
    "is_quantized",
    "policy_of",
    "quantized",
    "register_quant_support",
    "size_bytes",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nas.quantization' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
