"""Copying a reference model's tensors into a supernet's parameters, checked by name and shape.

Example:
    >>> set_param(supernet.head.weight, hf_model.lm_head.weight, "lm_head.weight")
"""

from __future__ import annotations

import torch

from nas.errors import ConfigError


@torch.no_grad()
def set_param(param: torch.Tensor | None, value: torch.Tensor, name: str) -> None:
    """Copy ``value`` into ``param``; a :class:`ConfigError` naming ``name`` if the supernet
    has no such parameter or its shape differs."""
    if param is None:
        raise ConfigError(f"{name}: the supernet has no such parameter")
    if param.shape != value.shape:
        raise ConfigError(f"{name}: shape {tuple(value.shape)}, supernet has {tuple(param.shape)}")
    param.copy_(value.to(param.dtype))
