"""Hugging Face ``transformers`` GPT-2, LLaMA and Mistral weights into decoder supernets.

The functions read a model's ``config`` and ``state_dict()`` (a ``GPT2LMHeadModel`` or a
``LlamaForCausalLM``, or anything with the same names); they never import ``transformers``
and never download. The weights fill the supernet's largest network; the fused attention
projection is rearranged into the group-major layout of :mod:`nas.elastic.attention`.

Example:
    >>> hf = GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=64, n_head=4, vocab_size=256))
    >>> space = hf_space(hf.config, "gpt_from_hf", depth=[2, 3], heads=[2])
    >>> supernet = DecoderSupernet(space, num_classes=hf.config.vocab_size)
    >>> load_hf(supernet, hf)            # same logits as hf with the largest subnet active
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nas.errors import ConfigError
from nas.space import SearchSpace
from search_spaces.decoder_net import DecoderSupernet
from search_spaces.transformer_space import TransformerPlan, TransformerSize, transformer_space
from search_spaces.transformer_stack import blocks_of
from search_spaces.weight_copy import set_param as _set

SUPPORTED = ("gpt2", "llama", "mistral")
LLAMA_LIKE = ("llama", "mistral")  # the same modules and weight names
_GPT2_ACT = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}


def _rope_base(config: Any) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    kind = params.get("rope_type", "default")
    if kind != "default":
        raise ConfigError(f"rope_parameters.rope_type {kind!r} is not supported; allowed: default")
    return float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def hf_space(
    config: Any,
    name: str,
    *,
    depth: Sequence[int] = (),
    heads: Sequence[int] = (),
    embed_dim: Sequence[int] = (),
    mlp_ratio: Sequence[float] = (),
    **options: Any,
) -> SearchSpace:
    """An elastic space whose largest network is the model of a GPT-2, LLaMA or Mistral
    ``config`` (Mistral: positions capped at its sliding window, where it computes exactly).

    Choices and ``options`` are those of
    :func:`search_spaces.transformer_space.transformer_space`.

    Raises:
        ConfigError: the config's ``model_type`` is not in :data:`SUPPORTED`.
    """
    kind = getattr(config, "model_type", None)
    choices: dict[str, Any] = {"depth": depth, "heads": heads, "embed_dim": embed_dim,
                               "mlp_ratio": mlp_ratio}
    if kind == "gpt2":
        inner = config.n_inner or 4 * config.n_embd
        size = TransformerSize(layers=config.n_layer, heads=config.n_head,
                               embed_dim=config.n_embd, mlp_ratio=inner / config.n_embd)
        act = _GPT2_ACT.get(config.activation_function)
        if act is None:
            raise ConfigError(f"activation_function {config.activation_function!r}: allowed "
                             f"{sorted(_GPT2_ACT)}")
        meta = {"max_positions": config.n_positions, "seq_len": config.n_positions,
                "norm_eps": config.layer_norm_epsilon, "mlp": act,
                "tie_embeddings": bool(getattr(config, "tie_word_embeddings", True))}
        return transformer_space(name, "gpt", size, **choices, **{**meta, **options})
    if kind in LLAMA_LIKE:
        size = TransformerSize(
            layers=config.num_hidden_layers, heads=config.num_attention_heads,
            embed_dim=config.hidden_size, mlp_ratio=config.intermediate_size / config.hidden_size,
            head_dim=getattr(config, "head_dim", None), kv_heads=config.num_key_value_heads,
        )
        positions = _llama_positions(config)
        meta = {"max_positions": positions, "seq_len": positions, "norm_eps": config.rms_norm_eps,
                "rope_base": _rope_base(config),
                "bias": bool(getattr(config, "attention_bias", False)),
                "tie_embeddings": bool(config.tie_word_embeddings)}
        return transformer_space(name, "llama", size, **choices, **{**meta, **options})
    raise ConfigError(f"config.model_type must be one of {list(SUPPORTED)}, got {kind!r}")


def _llama_positions(config: Any) -> int:
    """Positions the supernet computes exactly: a sliding window (Mistral) caps them."""
    window = getattr(config, "sliding_window", None)
    positions = int(config.max_position_embeddings)
    return positions if window is None else min(positions, int(window))


def _check(fields: Mapping[str, tuple[Any, Any]]) -> None:
    """Raise naming every field where the supernet (first) and the model (second) differ."""
    bad = [f"{k}: supernet {a!r}, model {b!r}" for k, (a, b) in fields.items() if a != b]
    if bad:
        raise ConfigError("the Hugging Face model does not fit the supernet: " + "; ".join(bad))




def _group_major(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, groups: int) -> torch.Tensor:
    """Stack q (groups*per*hd, ...), k, v (groups*hd, ...) as ``[q.., k, v]`` per group."""
    parts = [t.reshape(groups, -1, *t.shape[1:]) for t in (q, k, v)]
    return torch.cat(parts, dim=1).reshape(-1, *q.shape[1:])


def _common_checks(supernet: DecoderSupernet, state: Mapping[str, torch.Tensor],
                   embed_key: str, family: str) -> TransformerPlan:
    plan = supernet.plan
    _check({"family": (plan.family, family),
            "vocabulary (num_classes)": (supernet.num_classes, state[embed_key].shape[0])})
    return plan


def load_hf_gpt2(supernet: DecoderSupernet, model: nn.Module) -> None:
    """Copy a Hugging Face ``GPT2LMHeadModel``'s weights into ``supernet``'s largest network.

    Raises:
        ConfigError: the sizes or options (depth, width, heads, MLP, positions, eps, tying)
            differ; the message lists them.
    """
    config: Any = model.config
    state = {k.removeprefix("transformer."): v for k, v in model.state_dict().items()}
    plan = _common_checks(supernet, state, "wte.weight", "gpt")
    inner = config.n_inner or 4 * config.n_embd
    _check({"depth": (plan.max_depth, config.n_layer), "embed_dim": (plan.max_width, config.n_embd),
            "heads": (plan.max_groups, config.n_head),
            "head_dim": (plan.head_dim, config.n_embd // config.n_head),
            "mlp hidden": (plan.max_hidden, inner), "max_positions": (plan.max_positions,
                                                                     config.n_positions),
            "norm_eps": (plan.norm_eps, config.layer_norm_epsilon),
            "mlp": (plan.mlp, _GPT2_ACT.get(config.activation_function)),
            "tie_embeddings": (plan.tie_embeddings,
                               bool(getattr(config, "tie_word_embeddings", True))),
            "scale_attn_by_inverse_layer_idx": (False, config.scale_attn_by_inverse_layer_idx)})
    _set(supernet.embed.weight, state["wte.weight"], "wte.weight")
    assert supernet.positions is not None
    _set(supernet.positions.weight, state["wpe.weight"], "wpe.weight")
    heads = config.n_head
    for i, block in enumerate(blocks_of(supernet.blocks, active_only=False)):
        p = f"h.{i}."
        _set(block.norm1.weight, state[p + "ln_1.weight"], p + "ln_1.weight")
        _set(getattr(block.norm1, "bias", None), state[p + "ln_1.bias"], p + "ln_1.bias")
        q, k, v = state[p + "attn.c_attn.weight"].t().chunk(3, dim=0)  # Conv1D is (in, out)
        _set(block.attn.qkv.weight, _group_major(q, k, v, heads), p + "attn.c_attn.weight")
        qb, kb, vb = state[p + "attn.c_attn.bias"].chunk(3)
        _set(block.attn.qkv.bias, _group_major(qb, kb, vb, heads), p + "attn.c_attn.bias")
        _set(block.attn.proj.weight, state[p + "attn.c_proj.weight"].t(), p + "attn.c_proj")
        _set(block.attn.proj.bias, state[p + "attn.c_proj.bias"], p + "attn.c_proj.bias")
        _set(block.norm2.weight, state[p + "ln_2.weight"], p + "ln_2.weight")
        _set(getattr(block.norm2, "bias", None), state[p + "ln_2.bias"], p + "ln_2.bias")
        mlp: Any = block.mlp
        for ours, theirs in (("fc1", "c_fc"), ("fc2", "c_proj")):
            layer = getattr(mlp, ours)
            _set(layer.weight, state[f"{p}mlp.{theirs}.weight"].t(), f"{p}mlp.{theirs}.weight")
            _set(layer.bias, state[f"{p}mlp.{theirs}.bias"], f"{p}mlp.{theirs}.bias")
    _set(supernet.norm.weight, state["ln_f.weight"], "ln_f.weight")
    _set(getattr(supernet.norm, "bias", None), state["ln_f.bias"], "ln_f.bias")
    if supernet.head is not None:
        _set(supernet.head.weight, state["lm_head.weight"], "lm_head.weight")


def load_hf_llama(supernet: DecoderSupernet, model: nn.Module) -> None:
    """Copy a Hugging Face ``LlamaForCausalLM``'s weights into ``supernet``'s largest network.

    Raises:
        ConfigError: the sizes or options (depth, width, heads, key/value heads, MLP, eps,
            rotary base, biases, tying) differ; the message lists them.
    """
    config: Any = model.config
    state = {k.removeprefix("model."): v for k, v in model.state_dict().items()}
    plan = _common_checks(supernet, state, "embed_tokens.weight", "llama")
    groups = config.num_key_value_heads
    _check({"depth": (plan.max_depth, config.num_hidden_layers),
            "embed_dim": (plan.max_width, config.hidden_size),
            "kv_heads (groups)": (plan.max_groups, groups),
            "heads": (plan.max_groups * plan.heads_per_group, config.num_attention_heads),
            "head_dim": (plan.head_dim, getattr(config, "head_dim", None)
                         or config.hidden_size // config.num_attention_heads),
            "mlp hidden": (plan.max_hidden, config.intermediate_size),
            "norm_eps": (plan.norm_eps, config.rms_norm_eps),
            "rope_base": (plan.rope_base, _rope_base(config)),
            "hidden_act": ("silu", config.hidden_act),
            "bias": (plan.bias, bool(getattr(config, "attention_bias", False))),
            "mlp_bias": (plan.bias, bool(getattr(config, "mlp_bias", False))),
            "tie_embeddings": (plan.tie_embeddings, bool(config.tie_word_embeddings))})
    _set(supernet.embed.weight, state["embed_tokens.weight"], "embed_tokens.weight")
    for i, block in enumerate(blocks_of(supernet.blocks, active_only=False)):
        p = f"layers.{i}."
        a = p + "self_attn."
        _set(block.norm1.weight, state[p + "input_layernorm.weight"], p + "input_layernorm")
        q, k, v = (state[f"{a}{n}_proj.weight"] for n in "qkv")
        _set(block.attn.qkv.weight, _group_major(q, k, v, groups), a + "q/k/v_proj.weight")
        if plan.bias:
            qb, kb, vb = (state[f"{a}{n}_proj.bias"] for n in "qkv")
            _set(block.attn.qkv.bias, _group_major(qb, kb, vb, groups), a + "q/k/v_proj.bias")
            _set(block.attn.proj.bias, state[a + "o_proj.bias"], a + "o_proj.bias")
        _set(block.attn.proj.weight, state[a + "o_proj.weight"], a + "o_proj.weight")
        _set(block.norm2.weight, state[p + "post_attention_layernorm.weight"],
             p + "post_attention_layernorm.weight")
        mlp: Any = block.mlp
        for name in ("gate", "up", "down"):
            _set(getattr(mlp, name).weight, state[f"{p}mlp.{name}_proj.weight"],
                 f"{p}mlp.{name}_proj.weight")
            if plan.bias:
                _set(getattr(mlp, name).bias, state[f"{p}mlp.{name}_proj.bias"],
                     f"{p}mlp.{name}_proj.bias")
    _set(supernet.norm.weight, state["norm.weight"], "norm.weight")
    assert supernet.head is not None
    _set(supernet.head.weight, state["lm_head.weight"], "lm_head.weight")


def load_hf(supernet: DecoderSupernet, model: nn.Module) -> None:
    """:func:`load_hf_gpt2` or :func:`load_hf_llama`, by ``model.config.model_type``."""
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if kind == "gpt2":
        load_hf_gpt2(supernet, model)
    elif kind in LLAMA_LIKE:
        load_hf_llama(supernet, model)
    else:
        raise ConfigError(f"model.config.model_type must be one of {list(SUPPORTED)}, "
                          f"got {kind!r}")
