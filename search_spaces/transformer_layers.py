"""Layer descriptions of transformer subnets (ViT, GPT, LLaMA), for counting and lookup tables.

Adds the layer kinds ``token_embed``, ``positions``, ``patch_embed``, ``transformer_block``,
``norm`` and ``lm_head`` to :mod:`nas.layers` (importing this module registers them); counting
needs no torch, building imports it.

MACs are per sample: per image for a ViT, per sequence of ``meta["seq_len"]`` tokens for a
language model (the count is at that length; attention grows with its square). They count the
linear layers (bias-free) and the two attention products ``Q Kᵀ`` and ``A V`` in full (the
causal mask does not halve them: SDPA computes every score); embeddings, norms, activations,
softmax and rotary are free, as fvcore counts.

Example:
    >>> space = nas.create_space("gpt2_small")
    >>> sum(s.params() for s in layer_specs(space, space.largest(), num_classes=50257))
    124439808
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nas.layers import LayerSpec, register_layer_kind
from nas.space import ArchConfig, SearchSpace, Value
from search_spaces.transformer_space import LayerShape, TransformerPlan

if TYPE_CHECKING:
    import torch
    from torch import nn


def _int(spec: LayerSpec, name: str) -> int:
    return int(spec.get(name, 0))


def _tokens(spec: LayerSpec) -> int:
    return _int(spec, "tokens")


class TokenEmbedKind:
    """``token_embed``: a ``in_channels`` (vocabulary) x ``out_channels`` table; no MACs."""

    def params(self, spec: LayerSpec) -> int:
        return spec.in_channels * spec.out_channels

    def macs(self, spec: LayerSpec) -> int:
        return 0

    def build(self, spec: LayerSpec) -> nn.Module:
        from torch import nn

        return nn.Embedding(spec.in_channels, spec.out_channels)

    def example_input(self, spec: LayerSpec, batch: int = 1) -> torch.Tensor:
        """Token ids ``(batch, tokens)``."""
        import torch

        return torch.randint(0, spec.in_channels, (batch, _tokens(spec)))


class PositionsKind:
    """``positions``: learned positions (``in_channels`` of them, ``out_channels`` wide),
    plus a class token when ``extra`` ``cls`` is 1 (ViT); no MACs."""

    def params(self, spec: LayerSpec) -> int:
        return (spec.in_channels + _int(spec, "cls")) * spec.out_channels

    def macs(self, spec: LayerSpec) -> int:
        return 0

    def build(self, spec: LayerSpec) -> nn.Module:
        from nas.elastic import ElasticLearnedPositions

        return ElasticLearnedPositions(spec.in_channels, spec.out_channels)

    def example_input(self, spec: LayerSpec, batch: int = 1) -> torch.Tensor:
        """Features ``(batch, tokens, width)``."""
        import torch

        return torch.randn(batch, _tokens(spec), spec.out_channels)


class PatchEmbedKind:
    """``patch_embed``: ``kernel x kernel`` patches of an ``input_hw`` image, projected."""

    def params(self, spec: LayerSpec) -> int:
        return spec.in_channels * spec.kernel**2 * spec.out_channels + spec.out_channels

    def macs(self, spec: LayerSpec) -> int:
        patches = (spec.input_hw // spec.kernel) ** 2
        return patches * spec.in_channels * spec.kernel**2 * spec.out_channels

    def build(self, spec: LayerSpec) -> nn.Module:
        from torch import nn

        from search_spaces.transformer_blocks import PatchEmbed

        return PatchEmbed(nn.Conv2d(spec.in_channels, spec.out_channels, spec.kernel,
                                    stride=spec.kernel))

    def example_input(self, spec: LayerSpec, batch: int = 1) -> torch.Tensor:
        """Images ``(batch, in_channels, input_hw, input_hw)``."""
        import torch

        return torch.randn(batch, spec.in_channels, spec.input_hw, spec.input_hw)


class TransformerBlockKind:
    """``transformer_block``: pre-norm attention + MLP on ``tokens`` x ``in_channels``.

    ``mid_channels`` is the MLP's hidden width, ``act`` its kind (``gelu``, ``gelu_tanh``,
    ``swiglu``); ``extra`` holds ``heads``, ``groups`` (key/value heads), ``head_dim``,
    ``tokens``, ``norm`` (``layernorm``/``rmsnorm``), ``causal`` and ``rope`` (0/1).
    """

    def params(self, spec: LayerSpec) -> int:
        d, hidden, b = spec.in_channels, spec.mid_channels, int(spec.bias)
        heads, groups, hd = _int(spec, "heads"), _int(spec, "groups"), _int(spec, "head_dim")
        norms = 2 * (2 * d if spec.get("norm") == "layernorm" else d)
        qkv_out = (heads + 2 * groups) * hd
        attn = d * qkv_out + b * qkv_out + heads * hd * d + b * d
        if spec.act == "swiglu":
            mlp = 3 * d * hidden + b * (2 * hidden + d)
        else:
            mlp = 2 * d * hidden + b * (hidden + d)
        return norms + attn + mlp

    def macs(self, spec: LayerSpec) -> int:
        d, hidden, t = spec.in_channels, spec.mid_channels, _tokens(spec)
        heads, groups, hd = _int(spec, "heads"), _int(spec, "groups"), _int(spec, "head_dim")
        linear = d * (heads + 2 * groups) * hd + heads * hd * d
        linear += (3 if spec.act == "swiglu" else 2) * d * hidden
        return t * linear + 2 * heads * t * t * hd

    def build(self, spec: LayerSpec) -> nn.Module:
        from torch import nn

        from search_spaces.transformer_blocks import MLP, SelfAttention, SwiGLU, TransformerBlock

        d, hidden, b = spec.in_channels, spec.mid_channels, spec.bias
        heads, groups, hd = _int(spec, "heads"), _int(spec, "groups"), _int(spec, "head_dim")
        attn = SelfAttention(
            nn.Linear(d, (heads + 2 * groups) * hd, bias=b), nn.Linear(heads * hd, d, bias=b),
            head_dim=hd, heads_per_group=heads // groups, causal=bool(_int(spec, "causal")),
            rope_base=10000.0 if _int(spec, "rope") else None,
        )
        mlp: nn.Module
        if spec.act == "swiglu":
            mlp = SwiGLU(nn.Linear(d, hidden, bias=b), nn.Linear(d, hidden, bias=b),
                         nn.Linear(hidden, d, bias=b))
        else:
            mlp = MLP(nn.Linear(d, hidden, bias=b), nn.Linear(hidden, d, bias=b),
                      activation=spec.act)
        return TransformerBlock(_norm(spec), attn, _norm(spec), mlp)

    def example_input(self, spec: LayerSpec, batch: int = 1) -> torch.Tensor:
        """Features ``(batch, tokens, width)``."""
        import torch

        return torch.randn(batch, _tokens(spec), spec.in_channels)


def _norm(spec: LayerSpec) -> nn.Module:
    from torch import nn

    if spec.get("norm") == "rmsnorm":
        return nn.RMSNorm(spec.in_channels)
    return nn.LayerNorm(spec.in_channels)


class NormKind:
    """``norm``: the final LayerNorm (``extra`` ``norm=layernorm``) or RMSNorm; no MACs."""

    def params(self, spec: LayerSpec) -> int:
        return (2 if spec.get("norm") == "layernorm" else 1) * spec.in_channels

    def macs(self, spec: LayerSpec) -> int:
        return 0

    def build(self, spec: LayerSpec) -> nn.Module:
        return _norm(spec)

    def example_input(self, spec: LayerSpec, batch: int = 1) -> torch.Tensor:
        """Features ``(batch, tokens, width)``."""
        import torch

        return torch.randn(batch, _tokens(spec), spec.in_channels)


class LMHeadKind:
    """``lm_head``: width ``in_channels`` → vocabulary ``out_channels`` on every token; no
    parameters of its own when ``extra`` ``tied`` is 1 (the token embedding's table)."""

    def params(self, spec: LayerSpec) -> int:
        return 0 if _int(spec, "tied") else spec.in_channels * spec.out_channels

    def macs(self, spec: LayerSpec) -> int:
        return _tokens(spec) * spec.in_channels * spec.out_channels

    def build(self, spec: LayerSpec) -> nn.Module:
        from torch import nn

        return nn.Linear(spec.in_channels, spec.out_channels, bias=False)

    def example_input(self, spec: LayerSpec, batch: int = 1) -> torch.Tensor:
        """Features ``(batch, tokens, width)``."""
        import torch

        return torch.randn(batch, _tokens(spec), spec.in_channels)


register_layer_kind("token_embed", TokenEmbedKind())
register_layer_kind("positions", PositionsKind())
register_layer_kind("patch_embed", PatchEmbedKind())
register_layer_kind("transformer_block", TransformerBlockKind())
register_layer_kind("norm", NormKind())
register_layer_kind("lm_head", LMHeadKind())


def _extra(**fields: Value) -> tuple[tuple[str, Value], ...]:
    return tuple(sorted(fields.items()))


def _block(plan: TransformerPlan, width: int, layer: LayerShape, tokens: int) -> LayerSpec:
    return LayerSpec(
        kind="transformer_block", in_channels=width, out_channels=width,
        mid_channels=layer.hidden, act=plan.mlp, bias=plan.bias,
        extra=_extra(heads=layer.heads, groups=layer.groups, head_dim=plan.head_dim,
                     tokens=tokens, norm=plan.norm, causal=int(plan.causal),
                     rope=int(plan.positions == "rotary")),
    )


def layer_specs(space: SearchSpace, arch: ArchConfig, num_classes: int = 1000) -> list[LayerSpec]:
    """The layers of ``arch``'s network, input to output (``num_classes``: the vocabulary of a
    language model, the classes of a ViT).

    Raises:
        InvalidArchError: ``arch`` is not an architecture of ``space``.
        ConfigError: ``space`` is not a transformer space.
    """
    space.validate(arch)
    plan = TransformerPlan.of(space)
    shape = plan.shape(arch)
    d, t = shape.width, shape.tokens
    specs: list[LayerSpec] = []
    if plan.family == "vit":
        specs.append(LayerSpec(
            kind="patch_embed", in_channels=plan.in_channels, out_channels=d,
            kernel=shape.patch_size, stride=shape.patch_size, input_hw=plan.resolution,
            bias=True,
        ))
        specs.append(LayerSpec(kind="positions", in_channels=t, out_channels=d,
                               extra=_extra(cls=1, tokens=t)))
    else:
        specs.append(LayerSpec(kind="token_embed", in_channels=num_classes, out_channels=d,
                               extra=_extra(tokens=t)))
        if plan.positions == "learned":
            specs.append(LayerSpec(kind="positions", in_channels=plan.max_positions,
                                   out_channels=d, extra=_extra(tokens=t)))
    specs += [_block(plan, d, layer, t) for layer in shape.layers]
    specs.append(LayerSpec(kind="norm", in_channels=d, out_channels=d,
                           extra=_extra(norm=plan.norm, tokens=t)))
    if plan.family == "vit":
        specs.append(LayerSpec(kind="linear", in_channels=d, out_channels=num_classes, bias=True))
    else:
        specs.append(LayerSpec(kind="lm_head", in_channels=d, out_channels=num_classes,
                               extra=_extra(tied=int(plan.tie_embeddings), tokens=t)))
    return specs
