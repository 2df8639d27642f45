"""ViT / DeiT spaces (family ``vit``): one small enough for 2 CPU cores, three published sizes.

* ``vit_mini`` — 28x28 images in 7x7 patches (16 patches + class token), width {32, 48, 64},
  depth {2, 3, 4}, heads {2, 3, 4} of 16, MLP ratio {2, 3, 4}: trains on digits or MNIST on
  2 CPU cores.
* ``vit_ti16``, ``vit_s16``, ``vit_b16`` — DeiT-Ti (= ViT-Ti/16), DeiT-S (= ViT-S/16) and
  ViT-B/16 at 224x224 as the largest network (timm's ``deit_tiny_patch16_224``,
  ``vit_small_patch16_224``, ``vit_base_patch16_224``), with depth 10-12, widths down to 3/4,
  fewer heads and MLP ratios {3, 3.5, 4}.

* ``vit_flex`` — ``vit_mini`` with an elastic patch size {4, 7, 14} (FlexiViT).

The resolution is fixed per space (``meta``), the patch size too except in ``vit_flex``; see
:func:`search_spaces.transformer_space.transformer_space` to derive others.
"""

from __future__ import annotations

from nas.space import SearchSpace
from search_spaces.transformer_registry import register_transformer
from search_spaces.transformer_space import TransformerSize, transformer_space

_RATIOS = (3.0, 3.5)


def vit_mini() -> SearchSpace:
    """``vit_mini``: a ViT for 28x28 digits/MNIST (at most 0.2M parameters)."""
    size = TransformerSize(layers=4, heads=4, embed_dim=64, mlp_ratio=4.0, head_dim=16)
    return transformer_space(
        "vit_mini", "vit", size, depth=[2, 3], heads=[2, 3], embed_dim=[32, 48],
        mlp_ratio=[2, 3], resolution=28, patch_size=7,
    )


def vit_flex() -> SearchSpace:
    """``vit_flex``: ``vit_mini`` with an elastic patch size (FlexiViT): 4x4 patches (49 + the
    class token) at the largest, 7x7 and 14x14 in smaller subnets."""
    size = TransformerSize(layers=4, heads=4, embed_dim=64, mlp_ratio=4.0, head_dim=16)
    return transformer_space(
        "vit_flex", "vit", size, depth=[2, 3], heads=[2, 3], embed_dim=[32, 48],
        mlp_ratio=[2, 3], patch_sizes=[7, 14], resolution=28, patch_size=4,
    )


def vit_ti16() -> SearchSpace:
    """``vit_ti16``: up to DeiT-Ti / ViT-Ti/16 (12 x 192, 3 heads)."""
    size = TransformerSize(layers=12, heads=3, embed_dim=192, mlp_ratio=4.0)
    return transformer_space(
        "vit_ti16", "vit", size, depth=[10, 11], heads=[2], embed_dim=[144, 168],
        mlp_ratio=_RATIOS,
    )


def vit_s16() -> SearchSpace:
    """``vit_s16``: up to DeiT-S / ViT-S/16 (12 x 384, 6 heads)."""
    size = TransformerSize(layers=12, heads=6, embed_dim=384, mlp_ratio=4.0)
    return transformer_space(
        "vit_s16", "vit", size, depth=[10, 11], heads=[4, 5], embed_dim=[288, 336],
        mlp_ratio=_RATIOS,
    )


def vit_b16() -> SearchSpace:
    """``vit_b16``: up to ViT-B/16 (12 x 768, 12 heads)."""
    size = TransformerSize(layers=12, heads=12, embed_dim=768, mlp_ratio=4.0)
    return transformer_space(
        "vit_b16", "vit", size, depth=[10, 11], heads=[8, 10], embed_dim=[576, 672],
        mlp_ratio=_RATIOS,
    )


register_transformer("vit_mini", vit_mini, description="small ViT for 28x28 digits/MNIST")
register_transformer("vit_flex", vit_flex, description="vit_mini with elastic patch size")
register_transformer("vit_ti16", vit_ti16, description="ViT up to DeiT-Ti / ViT-Ti/16 (5.7M)")
register_transformer("vit_s16", vit_s16, description="ViT up to DeiT-S / ViT-S/16 (22M)")
register_transformer("vit_b16", vit_b16, description="ViT up to ViT-B/16 (86M)")
