"""Elastic transformer layers: slicing, exports, attention variants, importance sorting."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic import (
    ElasticDense,
    ElasticDepth,
    ElasticEmbedding,
    ElasticLayerNorm,
    ElasticLearnedPositions,
    ElasticMLP,
    ElasticPatchEmbed,
    ElasticRMSNorm,
    ElasticSelfAttention,
    ElasticSwiGLU,
    apply_rotary,
    mlp_hidden,
    rotary_cos_sin,
)
from search_spaces.transformer_blocks import MLP, SelfAttention, SwiGLU


def _randomize(module: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.3)
    return module


def test_dense_slices_both_sides_and_exports() -> None:
    fc = _randomize(ElasticDense(16, 24))
    assert isinstance(fc, ElasticDense)
    fc.active_out_features = 10
    x = torch.randn(3, 5, 8)
    y = fc(x)
    assert y.shape == (3, 5, 10)
    assert torch.equal(y, F.linear(x, fc.weight[:10, :8], fc.bias[:10]))  # type: ignore[index]
    fc.active_in_features = 8
    static = fc.export()
    assert type(static) is nn.Linear and (static.in_features, static.out_features) == (8, 10)
    assert torch.equal(static(x), y)
    with pytest.raises(ValueError, match=r"active_out_features must be an int in 1\.\.24"):
        fc.active_out_features = 25


@pytest.mark.parametrize("cls", [ElasticLayerNorm, ElasticRMSNorm])
def test_norms_normalise_over_active_width(cls: type[nn.Module]) -> None:
    norm = _randomize(cls(12, eps=1e-6))
    x = torch.randn(2, 3, 7)
    weight = norm.weight[:7]  # type: ignore[index]
    if cls is ElasticLayerNorm:
        ref = F.layer_norm(x, (7,), weight, norm.bias[:7], 1e-6)  # type: ignore[index]
    else:  # Hugging Face's LlamaRMSNorm
        ref = weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))
    assert torch.allclose(norm(x), ref, atol=1e-6)
    norm.active_features = 7  # type: ignore[assignment]
    static = norm.export()  # type: ignore[operator]
    assert type(static) in (nn.LayerNorm, nn.RMSNorm)
    assert torch.equal(static(x), norm(x))


def test_embedding_width_tied_logits_and_export() -> None:
    emb = ElasticEmbedding(50, 16)
    emb.active_width = 6
    ids = torch.randint(0, 50, (2, 9))
    h = emb(ids)
    assert torch.equal(h, emb.weight[ids][..., :6])
    assert torch.equal(emb.logits(h), h @ emb.weight[:, :6].T)
    static = emb.export()
    assert type(static) is nn.Embedding and static.embedding_dim == 6
    assert torch.equal(static(ids), h)


def test_positions_and_patch_embed() -> None:
    pos = _randomize(ElasticLearnedPositions(10, 8))
    x = torch.randn(2, 4, 5)
    assert torch.equal(pos(x), x + pos.weight[:4, :5])  # type: ignore[index]
    with pytest.raises(ValueError, match="max_positions=10"):
        pos(torch.randn(1, 11, 5))
    patch = _randomize(ElasticPatchEmbed(3, 16, patch_size=4))
    assert isinstance(patch, ElasticPatchEmbed)
    patch.active_width = 12
    img = torch.randn(2, 3, 8, 8)
    tokens = patch(img)
    assert tokens.shape == (2, 4, 12)
    conv = patch.export()
    assert torch.equal(conv(img).flatten(2).transpose(1, 2), tokens)


def test_rotary_matches_rotate_half_convention() -> None:
    cos, sin = rotary_cos_sin(5, 8, base=10000.0)
    x = torch.randn(1, 2, 5, 8)
    out = apply_rotary(x, cos, sin)
    inv = 1.0 / 10000.0 ** (torch.arange(0, 8, 2).float() / 8)
    angle = torch.arange(5).float()[:, None] * inv  # (5, 4): pair (i, i + 4) rotates by angle i
    x1, x2 = x[..., :4], x[..., 4:]
    ref = torch.cat([x1 * angle.cos() - x2 * angle.sin(), x2 * angle.cos() + x1 * angle.sin()], -1)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(apply_rotary(x, *rotary_cos_sin(5, 8, base=1e4))[..., 0, :], x[..., 0, :])


def _reference_attention(
    x: torch.Tensor, attn: ElasticSelfAttention, groups: int
) -> torch.Tensor:
    """Grouped-query attention written out with separate q/k/v weights (HF's layout)."""
    b, t, d = x.shape
    per, hd = attn.heads_per_group, attn.head_dim
    w = attn.qkv.weight.view(attn.max_groups, per + 2, hd, -1)[:groups, :, :, :d]
    bias = attn.qkv.bias.view(attn.max_groups, per + 2, hd)[:groups]  # type: ignore[union-attr]
    q = (x @ w[:, :per].reshape(-1, d).T + bias[:, :per].reshape(-1)).view(b, t, -1, hd)
    k = (x @ w[:, per].reshape(-1, d).T + bias[:, per].reshape(-1)).view(b, t, -1, hd)
    v = (x @ w[:, per + 1].reshape(-1, d).T + bias[:, per + 1].reshape(-1)).view(b, t, -1, hd)
    q, k, v = (z.transpose(1, 2) for z in (q, k, v))
    k, v = k.repeat_interleave(per, dim=1), v.repeat_interleave(per, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if attn.causal:
        scores = scores.masked_fill(torch.ones(t, t).triu(1).bool(), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
    proj = attn.proj
    return y @ proj.weight[:d, : y.shape[-1]].T + proj.bias[:d]  # type: ignore[index]


@pytest.mark.parametrize("per,causal", [(1, False), (1, True), (2, True)])
def test_attention_matches_reference_and_export(per: int, causal: bool) -> None:
    attn = _randomize(ElasticSelfAttention(
        24, head_dim=4, max_groups=3, heads_per_group=per, causal=causal
    ))
    assert isinstance(attn, ElasticSelfAttention)
    attn.active_groups = 2
    attn.active_width = 16
    x = torch.randn(2, 6, 16)
    y = attn(x)
    assert y.shape == x.shape
    assert torch.allclose(y, _reference_attention(x, attn, 2), atol=1e-5)
    parts = attn.export_linears()
    static = SelfAttention(parts["qkv"], parts["proj"], head_dim=4, heads_per_group=per,
                           causal=causal)
    assert torch.equal(static(x), y)
    if causal:  # the first positions do not see the later ones
        x2 = x.clone()
        x2[:, 4:] = torch.randn(2, 2, 16)
        assert torch.allclose(attn(x2)[:, :4], y[:, :4], atol=1e-6)


@pytest.mark.parametrize("kind", ["gelu", "gelu_tanh", "swiglu"])
def test_mlps_slice_hidden_and_export(kind: str) -> None:
    mlp = ElasticSwiGLU(16, 40) if kind == "swiglu" else ElasticMLP(16, 40, activation=kind)
    _randomize(mlp)
    mlp.active_hidden = mlp_hidden(12, 2.5)
    mlp.active_width = 12
    x = torch.randn(2, 5, 12)
    y = mlp(x)
    if isinstance(mlp, ElasticSwiGLU):
        static: nn.Module = SwiGLU(**mlp.export_linears())
        g, u, dn = mlp.gate.weight[:30, :12], mlp.up.weight[:30, :12], mlp.down.weight[:12, :30]
        ref = (F.silu(x @ g.T) * (x @ u.T)) @ dn.T
    else:
        fc = mlp.export_linears()
        static = MLP(fc["fc1"], fc["fc2"], activation=kind)
        h = F.linear(x, mlp.fc1.weight[:30, :12], mlp.fc1.bias[:30])  # type: ignore[index]
        approx = "tanh" if kind == "gelu_tanh" else "none"
        ref = F.linear(F.gelu(h, approximate=approx), mlp.fc2.weight[:12, :30],
                       mlp.fc2.bias[:12])  # type: ignore[index]
    assert torch.allclose(y, ref, atol=1e-5)
    assert torch.equal(static(x), y)


def test_depth_runs_first_k_layers() -> None:
    layers = ElasticDepth([nn.Linear(4, 4) for _ in range(3)])
    x = torch.randn(2, 4)
    layers.active_depth = 2
    assert torch.equal(layers(x), layers[1](layers[0](x)))
    with pytest.raises(ValueError, match=r"active_depth must be an int in 1\.\.3"):
        layers.active_depth = 4


@pytest.mark.parametrize("per", [1, 2])
def test_attention_sorting_keeps_function_and_orders_groups(per: int) -> None:
    attn = _randomize(ElasticSelfAttention(16, head_dim=4, max_groups=4, heads_per_group=per,
                                           causal=True, bias=False, rope_base=100.0))
    assert isinstance(attn, ElasticSelfAttention)
    x = torch.randn(2, 5, 16)
    before = attn(x)
    attn.reorganize_channels()
    assert torch.allclose(attn(x), before, atol=1e-5)
    cols = attn.proj.weight.abs().view(16, 4, per * 4).sum(dim=(0, 2))
    assert torch.all(cols[:-1] >= cols[1:])


@pytest.mark.parametrize("kind", ["gelu", "swiglu"])
def test_mlp_sorting_keeps_function_and_orders_units(kind: str) -> None:
    mlp = ElasticSwiGLU(8, 20) if kind == "swiglu" else ElasticMLP(8, 20)
    _randomize(mlp)
    x = torch.randn(3, 8)
    before = mlp(x)
    mlp.reorganize_channels()
    assert torch.allclose(mlp(x), before, atol=1e-5)
    out = mlp.down if isinstance(mlp, ElasticSwiGLU) else mlp.fc2
    importance = out.weight.abs().sum(dim=0)
    assert torch.all(importance[:-1] >= importance[1:])
