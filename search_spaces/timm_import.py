"""timm Vision Transformer / DeiT weights into a ViT supernet.

:func:`load_timm_vit` takes a timm ``VisionTransformer`` (e.g. ``deit_tiny_patch16_224``,
``vit_small_patch16_224``) or its state dict (a checkpoint file's contents), checks that it is
the plain ViT the supernet realises (class-token pooling, positions including the class token,
no register tokens, layer scale, QK-norm, pre-norm or fc-norm), and fills the supernet's
largest network. It never imports timm and never downloads.

Example:
    >>> supernet = nas.create_supernet("vit_ti16", num_classes=1000)
    >>> load_timm_vit(supernet, timm.create_model("deit_tiny_patch16_224", pretrained=False))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.errors import ConfigError
from search_spaces.transformer_stack import blocks_of
from search_spaces.vit_net import ViTSupernet
from search_spaces.weight_copy import set_param as _set

_BLOCK_KEYS = (
    "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
    "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
    "mlp.fc2.weight", "mlp.fc2.bias",
)
_TOP_KEYS = (
    "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
    "norm.weight", "norm.bias", "head.weight", "head.bias",
)


def _check_model(model: nn.Module, eps: float) -> None:
    """Refuse timm ViT variants the supernet does not compute."""
    found: dict[str, tuple[Any, Any]] = {
        "global_pool": (getattr(model, "global_pool", None), "token"),
        "num_prefix_tokens": (getattr(model, "num_prefix_tokens", None), 1),
        "no_embed_class": (getattr(model, "no_embed_class", None), False),
        "dynamic_img_size": (getattr(model, "dynamic_img_size", False), False),
    }
    for name in ("fc_norm", "norm_pre"):
        found[name] = (type(getattr(model, name, nn.Identity())).__name__, "Identity")
    block: Any = model.blocks[0]  # type: ignore[index]
    for name in ("ls1", "ls2"):
        found[f"blocks.{name}"] = (type(getattr(block, name, nn.Identity())).__name__, "Identity")
    for name in ("q_norm", "k_norm"):
        found[f"attn.{name}"] = (type(getattr(block.attn, name, nn.Identity())).__name__,
                                 "Identity")
    act = getattr(block.mlp, "act", None)
    found["mlp.act"] = (
        (type(act).__name__, getattr(act, "approximate", "none")), ("GELU", "none")
    )
    found["norm eps"] = (float(block.norm1.eps), eps)
    bad = [f"{k}={got!r} (supported: {want!r})" for k, (got, want) in found.items() if got != want]
    if bad:
        raise ConfigError("the timm model is not a plain ViT/DeiT: " + "; ".join(bad))




def _head_major(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """timm's ``[q | k | v]`` rows (each head-major) as ``[q_h, k_h, v_h]`` per head."""
    return qkv.reshape(3, heads, -1, *qkv.shape[1:]).transpose(0, 1).reshape(qkv.shape)


def load_timm_vit(supernet: ViTSupernet, source: nn.Module | Mapping[str, torch.Tensor]) -> None:
    """Copy a timm ViT's weights (a model or its state dict) into the largest network.

    Raises:
        ConfigError: the model is a ViT variant the supernet does not compute, a key is missing
            or unexpected, or a shape (depth, width, heads, MLP, patch, resolution, classes)
            differs.
    """
    plan = supernet.plan
    if isinstance(source, nn.Module):
        _check_model(source, plan.norm_eps)
        state = source.state_dict()
    else:
        state = dict(source)
    expected = set(_TOP_KEYS) | {
        f"blocks.{i}.{k}" for i in range(plan.max_depth) for k in _BLOCK_KEYS
    }
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        raise ConfigError(
            f"timm state dict does not fit the supernet: missing {missing[:6]}, "
            f"unexpected {extra[:6]} (depth {plan.max_depth}, plain ViT)"
        )
    _set(supernet.cls_token, state["cls_token"], "cls_token")
    _set(supernet.positions.weight, state["pos_embed"].reshape(state["pos_embed"].shape[1:]),
         "pos_embed")
    _set(supernet.patch_embed.proj.weight, state["patch_embed.proj.weight"], "patch_embed")
    _set(supernet.patch_embed.proj.bias, state["patch_embed.proj.bias"], "patch_embed.bias")
    heads = plan.max_groups
    for i, block in enumerate(blocks_of(supernet.blocks, active_only=False)):
        p = f"blocks.{i}."
        targets: dict[str, Any] = {
            "norm1.weight": block.norm1.weight, "norm1.bias": getattr(block.norm1, "bias", None),
            "attn.proj.weight": block.attn.proj.weight, "attn.proj.bias": block.attn.proj.bias,
            "norm2.weight": block.norm2.weight, "norm2.bias": getattr(block.norm2, "bias", None),
        }
        mlp: Any = block.mlp
        for n in ("fc1", "fc2"):
            targets[f"mlp.{n}.weight"] = getattr(mlp, n).weight
            targets[f"mlp.{n}.bias"] = getattr(mlp, n).bias
        for key, param in targets.items():
            _set(param, state[p + key], p + key)
        _set(block.attn.qkv.weight, _head_major(state[p + "attn.qkv.weight"], heads),
             p + "attn.qkv.weight")
        _set(block.attn.qkv.bias, _head_major(state[p + "attn.qkv.bias"], heads),
             p + "attn.qkv.bias")
    for ours, key in ((supernet.norm.weight, "norm.weight"), (supernet.head.weight, "head.weight"),
                      (supernet.head.bias, "head.bias")):
        _set(ours, state[key], key)
    _set(getattr(supernet.norm, "bias", None), state["norm.bias"], "norm.bias")
