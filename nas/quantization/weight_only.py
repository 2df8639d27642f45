"""Weight-only block quantization of linear layers, exactly as ONNX Runtime's ``MatMulNBits``.

ONNX Runtime 1.32's ``matmul_nbits_quantizer`` (``DefaultWeightOnlyQuantConfig``, round to
nearest) stores the ``MatMul`` weight ``B`` (``K x N``, the transpose of the torch weight) in
blocks of ``block_size`` consecutive inputs (along ``K``) per output column; ``K`` is padded
with zeros to whole blocks. Asymmetric (its default, ``is_symmetric=False``), per block::

    lo, hi = min(min(block), 0), max(max(block), 0)
    scale  = (hi - lo) / (2**bits - 1)                         # float32, stored
    zp     = clamp(roundf(-lo / scale), 0, 2**bits - 1)        # uint8, stored packed
    q      = clamp(roundf(w * (1 / scale) + zp), 0, 2**bits - 1)
    w'     = (q - zp) * scale                                  # what the kernel multiplies by

(``roundf`` rounds halves away from zero; a block of zeros has scale 0 and q = zp.) 4 and 8
bits are both ``MatMulNBits`` in 1.32 (``quantize_matmul_4bits`` / ``_8bits``). Activations
stay float32: ``accuracy_level`` is left unset (ORT's default), so the CPU kernel dequantizes
``B`` and multiplies in float32, and the supernet's fake quantization (:func:`fake_quantized`)
is the exported model up to float summation order.

Block size: :data:`BLOCK_SIZE` = 32, not ORT's default 128: the widths of the CPU-sized spaces
are 32-256, where 128 would mean one block per output column. Stored bytes per quantized
``K x N`` weight (:func:`stored_bytes`): ``N * blocks * block_size * bits / 8`` packed values,
``4 N blocks`` for the float32 scales and ``N * ceil(blocks / (8 / bits))`` for the packed
zero points.

Example:
    >>> w4 = fake_quant_blockwise(linear.weight, bits=4)        # (out, in), blocks along in
    >>> with fake_quantized(layer_bits(supernet, arch)):
    ...     logits = supernet(ids)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where used: sizes and constants stay torch-free
    import torch

BLOCK_SIZE = 32
SYMMETRIC = False
ACCURACY_LEVEL: int | None = None  # ORT's default: float32 compute on the dequantized weight
NBITS = (4, 8)


def _roundf(x: torch.Tensor) -> torch.Tensor:
    """C's ``roundf``: halves away from zero (``torch.round`` rounds them to even)."""
    import torch

    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def block_qparams(
    w: torch.Tensor, bits: int, block_size: int = BLOCK_SIZE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(q, scale, zero_point)`` of a torch-layout weight ``(N, K)``: ``q`` ``(N, blocks,
    block_size)`` on the zero-padded ``K``; ``scale``, ``zero_point`` ``(N, blocks)``."""
    import torch

    n, k = w.shape
    blocks = -(-k // block_size)
    padded = torch.zeros(n, blocks * block_size, dtype=torch.float32, device=w.device)
    padded[:, :k] = w.detach().to(torch.float32)
    x = padded.view(n, blocks, block_size)
    qmax = float((1 << bits) - 1)
    lo = torch.clamp(x.amin(2), max=0.0)
    hi = torch.clamp(x.amax(2), min=0.0)
    scale = (hi - lo) / qmax
    nonzero = scale != 0
    safe = torch.where(nonzero, scale, torch.ones_like(scale))
    zf = torch.where(nonzero, 0.0 - lo / safe, lo)
    zero = torch.clamp(_roundf(zf), 0.0, qmax)
    reciprocal = torch.where(nonzero, 1.0 / safe, torch.zeros_like(scale))
    q = torch.clamp(_roundf(x * reciprocal[..., None] + zero[..., None]), 0.0, qmax)
    return q, scale, zero


def fake_quant_blockwise(w: torch.Tensor, bits: int, block_size: int = BLOCK_SIZE) -> torch.Tensor:
    """``w`` ``(N, K)`` quantized and dequantized as ``MatMulNBits`` stores it (see the module
    docstring); same shape and dtype."""
    n, k = w.shape
    q, scale, zero = block_qparams(w, bits, block_size)
    deq = (q - zero[..., None]) * scale[..., None]
    return deq.reshape(n, -1)[:, :k].to(w.dtype)


def stored_bytes(k: int, n: int, bits: int, block_size: int = BLOCK_SIZE) -> int:
    """Bytes ONNX Runtime stores for a ``K x N`` weight at ``bits``: packed values, float32
    scales and packed zero points (asymmetric)."""
    blocks = -(-k // block_size)
    per_byte = 8 // bits
    packed = n * blocks * (block_size * bits // 8)
    return packed + 4 * n * blocks + n * -(-blocks // per_byte)


@contextlib.contextmanager
def fake_quantized(layers: Sequence[tuple[Any, int]]) -> Iterator[None]:
    """Within the block, each ``(QuantLayer, bits)`` of ``layers`` (the active subnet's, from
    :func:`nas.quantization.fake.layer_bits`) computes with its weight fake-quantized."""
    for layer, bits in layers:
        original = layer.conv.active_weight
        layer.conv.active_weight = (  # an instance attribute, removed on exit
            lambda *a, _f=original, _b=bits, **kw: fake_quant_blockwise(_f(*a, **kw), _b))
    try:
        yield
    finally:
        for layer, _ in layers:
            if "active_weight" in vars(layer.conv):
                del layer.conv.active_weight
