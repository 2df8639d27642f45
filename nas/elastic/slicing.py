"""Prefix slices of parameters: ``t[:n0, :n1, ...]`` as one view op where that is cheapest.

An elastic layer's active weight is a *prefix* of the stored one (``weight[:out, :in]``).
Chained ``narrow`` calls make one view op, and one autograd node, per sliced dimension; in
``backward`` each node allocates a zero-filled gradient of its input's size and copies into
it. A prefix keeps the strides and the storage offset of its tensor, so a single
``as_strided`` is the same view: one op forward, one node backward (one full-size zero fill
instead of one per sliced dimension). For a small subnet, where the matmuls are cheap, this
per-slice overhead is a visible part of a training step.

:func:`prefix` uses the single view when two or more dimensions are sliced and the call runs
eagerly; under TorchScript tracing, ``torch.compile`` and ``torch.export`` it
uses ``narrow`` (what exporters handle best), as it does when :func:`set_fast_slicing` turned
the single view off (the reference). Values and gradients are the same either way.

Example:
    >>> w = torch.randn(8, 6, requires_grad=True)
    >>> view = prefix(w, (4, 3))                  # w[:4, :3], one as_strided
    >>> view.sum().backward()                     # w.grad: (8, 6), zero outside the prefix
    >>> previous = set_fast_slicing(False)        # chained narrow (reference)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nas.errors import ConfigError

_FAST = True


def set_fast_slicing(enabled: bool) -> bool:
    """Enable or disable the single-view prefix of :func:`prefix`; returns the previous
    setting. Disabled, every sliced dimension is a ``narrow`` (the reference)."""
    global _FAST
    previous, _FAST = _FAST, bool(enabled)
    return previous


def fast_slicing() -> bool:
    """Whether :func:`prefix` may use a single ``as_strided`` view (:func:`set_fast_slicing`)."""
    return _FAST


def _eager() -> bool:
    """True unless TorchScript tracing (``torch.jit.trace``, the TorchScript ONNX exporter),
    ``torch.compile`` or ``torch.export`` is running. (Nothing scripts these layers.)"""
    return _tracing_state() is None and not _is_compiling() and not _is_exporting()


_tracing_state = torch._C._get_tracing_state
_is_compiling = torch.compiler.is_compiling
_is_exporting = torch.compiler.is_exporting


def prefix(t: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``t[:size[0], :size[1], ...]`` as a view (``t`` itself when already that size).

    Raises:
        ConfigError: ``size`` has the wrong number of dimensions or exceeds ``t``.
    """
    shape = t.shape
    if len(size) != len(shape):
        raise ConfigError(f"prefix size {tuple(size)} does not fit a tensor of {tuple(shape)}")
    sliced = 0
    for n, m in zip(size, shape):
        if n != m:
            if not 0 <= n <= m:
                raise ConfigError(
                    f"prefix size {tuple(size)} does not fit a tensor of {tuple(shape)}")
            sliced += 1
    if sliced == 0:
        return t
    if sliced > 1 and _FAST and _eager():
        # a prefix keeps the strides and the storage offset: one as_strided is the view
        return t.as_strided(tuple(size), t.stride())
    for dim, (n, m) in enumerate(zip(size, shape)):
        if n != m:
            t = t.narrow(dim, 0, n)
    return t
