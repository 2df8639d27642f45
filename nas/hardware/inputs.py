"""The inputs layers and whole subnets are timed on: images, features or token ids.

A CNN layer takes a random float tensor of ``LayerSpec.input_shape(batch)``. Kinds that read
something else (token ids for an embedding, ``(batch, tokens, width)`` features for a
transformer block, images for a patch embedding) say so with an ``example_input(spec,
batch)`` method, which :func:`layer_input` uses. A whole subnet takes its supernet's
``example_input(arch, batch)``; for a language model at another sequence length, random token
ids of that length (:func:`subnet_input`).

Example:
    >>> module, x = layer_case(spec, batch=1, seq_len=128)
    >>> measure_latency(module, x)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError
from nas.layers import LayerSpec, layer_kind
from nas.sequence import at_seq_len
from nas.space import ArchConfig, SearchSpace

if TYPE_CHECKING:
    import torch
    from torch import nn


def layer_input(spec: LayerSpec, batch: int) -> tuple[int, ...] | torch.Tensor:
    """What ``spec``'s module is timed on: its kind's ``example_input``, else the shape of a
    random float input."""
    example = getattr(layer_kind(spec.kind), "example_input", None)
    if example is None:
        return spec.input_shape(batch)
    return example(spec, batch)  # type: ignore[no-any-return]


def layer_case(
    spec: LayerSpec, *, batch: int, seq_len: int | None = None
) -> tuple[nn.Module, tuple[int, ...] | torch.Tensor]:
    """A fresh module of ``spec`` and its input, on ``seq_len`` tokens when given."""
    spec = at_seq_len([spec], seq_len)[0]
    return spec.build(), layer_input(spec, batch)


def subnet_input(
    supernet: Any, space: SearchSpace, arch: ArchConfig, *, batch: int, seq_len: int | None = None
) -> tuple[int, ...] | torch.Tensor:
    """What a whole subnet of ``arch`` is timed on (see the module doc)."""
    if seq_len is not None:
        import torch

        return torch.randint(0, int(supernet.num_classes), (batch, seq_len))
    example = getattr(supernet, "example_input", None)
    if example is not None:
        try:
            return example(arch, batch)  # type: ignore[no-any-return]
        except ConfigError:  # no resolution anywhere: the default below
            pass
    return (batch, 3, _resolution(space, arch), _resolution(space, arch))


def _resolution(space: SearchSpace, arch: ArchConfig) -> int:
    """The input resolution of ``arch``: its ``resolution`` dimension, else the space's."""
    if "resolution" in space.names:
        return int(arch["resolution"])
    return int(space.meta.get("resolution", 224))
