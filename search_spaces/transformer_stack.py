"""The block stack shared by the transformer supernets: build, activate, export, initialise.

:func:`elastic_stack` builds the elastic blocks of a :class:`TransformerPlan` (norms, attention
and MLP as the family says) under :class:`nas.elastic.ElasticDepth`; :func:`activate_stack`
pushes an :class:`ArchShape` into it; :func:`export_stack` copies the active blocks into
static :class:`TransformerBlock` s.

Example:
    >>> plan = TransformerPlan.of(space)
    >>> stack = elastic_stack(plan)
    >>> activate_stack(stack, plan.shape(arch))
    >>> blocks = export_stack(stack)            # list of plain TransformerBlock
"""

from __future__ import annotations

import math
from typing import cast

from torch import nn

from nas.elastic import (
    ElasticDepth,
    ElasticLayerNorm,
    ElasticLearnedPositions,
    ElasticMLP,
    ElasticRMSNorm,
    ElasticSelfAttention,
    ElasticSwiGLU,
    ElasticTransformerBlock,
)
from search_spaces.transformer_blocks import MLP, SelfAttention, SwiGLU, TransformerBlock
from search_spaces.transformer_space import ArchShape, TransformerPlan


def elastic_norm(plan: TransformerPlan) -> ElasticLayerNorm | ElasticRMSNorm:
    """A fresh norm of the plan's kind at the largest width."""
    if plan.norm == "rmsnorm":
        return ElasticRMSNorm(plan.max_width, eps=plan.norm_eps)
    return ElasticLayerNorm(plan.max_width, eps=plan.norm_eps)


def elastic_block(plan: TransformerPlan) -> ElasticTransformerBlock:
    """One elastic block at the plan's largest size."""
    attn = ElasticSelfAttention(
        plan.max_width, head_dim=plan.head_dim, max_groups=plan.max_groups,
        heads_per_group=plan.heads_per_group, causal=plan.causal, bias=plan.bias,
        rope_base=plan.rope_base if plan.positions == "rotary" else None,
    )
    mlp: ElasticMLP | ElasticSwiGLU
    if plan.mlp == "swiglu":
        mlp = ElasticSwiGLU(plan.max_width, plan.max_hidden, bias=plan.bias)
    else:
        mlp = ElasticMLP(plan.max_width, plan.max_hidden, activation=plan.mlp, bias=plan.bias)
    return ElasticTransformerBlock(elastic_norm(plan), attn, elastic_norm(plan), mlp)


def elastic_stack(plan: TransformerPlan) -> ElasticDepth:
    """``plan.max_depth`` elastic blocks, of which the first ``active_depth`` run."""
    return ElasticDepth(elastic_block(plan) for _ in range(plan.max_depth))


def blocks_of(stack: ElasticDepth, active_only: bool = True) -> list[ElasticTransformerBlock]:
    """The stack's (active) blocks, typed."""
    layers = stack.active_layers() if active_only else list(stack)
    return cast(list[ElasticTransformerBlock], layers)


def activate_stack(stack: ElasticDepth, shape: ArchShape) -> None:
    """Activate ``shape``'s depth and, per active block, its width, groups and hidden units."""
    stack.active_depth = len(shape.layers)
    for block, layer in zip(blocks_of(stack), shape.layers):
        block.set_active(width=shape.width, groups=layer.groups, hidden=layer.hidden)


def export_block(block: ElasticTransformerBlock) -> TransformerBlock:
    """A static copy of ``block`` at its active size."""
    attn = block.attn
    qkv = attn.export_linears()
    static_attn = SelfAttention(
        qkv["qkv"], qkv["proj"], head_dim=attn.head_dim, heads_per_group=attn.heads_per_group,
        causal=attn.causal, rope_base=attn.rope_base,
    )
    mlp: nn.Module
    if isinstance(block.mlp, ElasticSwiGLU):
        mlp = SwiGLU(**block.mlp.export_linears())
    else:
        fc = block.mlp.export_linears()
        mlp = MLP(fc["fc1"], fc["fc2"], activation=block.mlp.activation)
    return TransformerBlock(block.norm1.export(), static_attn, block.norm2.export(), mlp)


def export_stack(stack: ElasticDepth) -> list[TransformerBlock]:
    """Static copies of the active blocks, in order."""
    return [export_block(block) for block in blocks_of(stack)]


def init_transformer_weights(module: nn.Module, std: float = 0.02) -> None:
    """GPT-2-style initialisation: linear, embedding and position weights ~ N(0, std), biases
    0, norm scales 1 and shifts 0; the projections writing into the residual stream (attention
    output, MLP output) ~ N(0, std / sqrt(2 * blocks))."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Embedding | nn.Conv2d | ElasticLearnedPositions):
            nn.init.normal_(m.weight, std=std)
            bias = getattr(m, "bias", None)
            if isinstance(bias, nn.Parameter):
                nn.init.zeros_(bias)
        elif isinstance(m, ElasticLayerNorm | ElasticRMSNorm):
            nn.init.ones_(m.weight)
            if isinstance(m, ElasticLayerNorm):
                nn.init.zeros_(m.bias)
    blocks = [m for m in module.modules() if isinstance(m, ElasticTransformerBlock)]
    for block in blocks:
        out = block.mlp.down if isinstance(block.mlp, ElasticSwiGLU) else block.mlp.fc2
        for layer in (block.attn.proj, out):
            nn.init.normal_(layer.weight, std=std / math.sqrt(2 * len(blocks)))
