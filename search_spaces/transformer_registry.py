"""Registering a transformer space: its supernet (ViT or decoder) and layers function.

Kept apart from :mod:`search_spaces.transformer_space` (the space and its plan) so that the
networks, which read the plan, are imported only when a supernet is built (never at
registration, which stays torch-free).

Example:
    >>> register_transformer("my_llama", make_space, description="my LLaMA space")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas.registry import register_space
from nas.space import ArchConfig, SearchSpace
from search_spaces import transformer_quant  # noqa: F401  (registers quantization support)
from search_spaces.transformer_space import TransformerPlan


def make_supernet(space: SearchSpace, **kwargs: Any) -> Any:
    """The supernet of a transformer space: ``ViTSupernet`` or ``DecoderSupernet`` (lazy)."""
    if TransformerPlan.of(space).family == "vit":
        from search_spaces.vit_net import ViTSupernet

        return ViTSupernet(space, **kwargs)
    from search_spaces.decoder_net import DecoderSupernet

    return DecoderSupernet(space, **kwargs)


def layers(space: SearchSpace, arch: ArchConfig, num_classes: int = 1000) -> list[Any]:
    """The layers (``nas.layers.LayerSpec``) of ``arch``; ``num_classes`` is the vocabulary
    size of a language model."""
    from search_spaces.transformer_layers import layer_specs

    return layer_specs(space, arch, num_classes)


def register_transformer(
    name: str, make_space: Callable[[], SearchSpace], *, description: str = ""
) -> None:
    """Register a transformer space with its supernet and layers function (``nas`` registry)."""
    register_space(name, make_space, make_supernet, layers=layers, description=description)
