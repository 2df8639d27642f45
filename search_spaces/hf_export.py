"""Export format ``"hf"``: a decoder subnet as a Hugging Face ``save_pretrained`` folder.

``export_subnet(supernet, arch, out, formats=["torch", "hf"])`` writes ``out/hf/``
(``config.json``, ``model.safetensors``, ``generation_config.json``) that plain
``transformers.AutoModelForCausalLM.from_pretrained`` loads, no custom code. The config is
the imported model's (``space.meta["hf_config"]``, see :mod:`search_spaces.hf_space`) with
the subnet's sizes, or one made from the space's plan for the built-in ``gpt``/``llama``
spaces. A Hugging Face config has one head count and one MLP width for all layers, and GPT-2
derives its head size from ``n_embd / n_head``: a subnet outside that is refused by
:meth:`HFFormat.check`, before any work (``from_hf(..., exportable=True)`` makes a space
whose every subnet fits).

Example:
    >>> nas.export_subnet(supernet, arch, "exports/a", formats=["torch", "hf"])
    >>> model = AutoModelForCausalLM.from_pretrained("exports/a/hf")
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from nas.errors import ConfigError, InvalidArchError
from nas.space import ArchConfig

HF_DIR = "hf"
_GPT2_ACT_NAMES = {"gelu_tanh": "gelu_new", "gelu": "gelu"}


def _plan(supernet: Any) -> Any:
    plan = getattr(supernet, "plan", None)
    if plan is None or getattr(plan, "family", None) not in ("gpt", "llama"):
        raise ConfigError(f"format 'hf' writes decoder language models (families gpt, llama); "
                          f"space {supernet.space.name!r} is not one")
    return plan


def base_config(supernet: Any) -> dict[str, Any]:
    """The imported model's config, or one equivalent to the space's plan."""
    plan = _plan(supernet)
    imported = supernet.space.meta.get("hf_config")
    if imported:
        return dict(imported)
    if plan.family == "gpt":
        if plan.norm != "layernorm" or plan.mlp not in _GPT2_ACT_NAMES:
            raise ConfigError(f"format 'hf': a gpt space needs layernorm and a GELU MLP, got "
                              f"{plan.norm} and {plan.mlp}")
        return {"model_type": "gpt2", "vocab_size": supernet.num_classes,
                "n_positions": plan.max_positions, "layer_norm_epsilon": plan.norm_eps,
                "activation_function": _GPT2_ACT_NAMES[plan.mlp],
                "tie_word_embeddings": plan.tie_embeddings}
    if plan.norm != "rmsnorm" or plan.mlp != "swiglu" or plan.positions != "rotary":
        raise ConfigError("format 'hf': a llama space needs rmsnorm, swiglu and rotary positions")
    return {"model_type": "llama", "vocab_size": supernet.num_classes,
            "max_position_embeddings": plan.max_positions, "rms_norm_eps": plan.norm_eps,
            "rope_parameters": {"rope_type": "default", "rope_theta": plan.rope_base},
            "attention_bias": plan.bias, "mlp_bias": plan.bias,
            "tie_word_embeddings": plan.tie_embeddings}


def subnet_config(supernet: Any, arch: ArchConfig) -> dict[str, Any]:
    """The Hugging Face config of ``arch``; :class:`InvalidArchError` if it has none."""
    plan = _plan(supernet)
    config = base_config(supernet)
    shape = plan.shape(arch)
    heads = sorted({layer.heads for layer in shape.layers})
    hidden = sorted({layer.hidden for layer in shape.layers})
    if len(heads) > 1 or len(hidden) > 1:
        raise InvalidArchError(
            f"format 'hf': {arch.key} has per-layer head counts {heads} and MLP widths "
            f"{hidden}; a Hugging Face config holds one of each (use a space whose layers "
            "share them, e.g. from_hf(..., exportable=True))")
    h, groups = shape.layers[0].heads, shape.layers[0].groups
    if config["model_type"] == "gpt2":
        if shape.width != h * plan.head_dim:
            raise InvalidArchError(
                f"format 'hf': GPT-2 needs embed_dim = heads x head_dim, {arch.key} has "
                f"embed_dim {shape.width} and {h} heads of {plan.head_dim}")
        config.update(n_layer=len(shape.layers), n_embd=shape.width, n_head=h,
                      n_inner=hidden[0])
    else:
        config.update(num_hidden_layers=len(shape.layers), hidden_size=shape.width,
                      num_attention_heads=h, num_key_value_heads=groups,
                      intermediate_size=hidden[0], head_dim=plan.head_dim)
    return config


def _ungroup(t: Any, groups: int, per: int) -> tuple[Any, Any, Any]:
    """Inverse of the group-major ``[q.., k, v]`` layout: the q, k and v rows."""
    g = t.reshape(groups, per + 2, -1, *t.shape[1:])
    q, k, v = g[:, :per], g[:, per], g[:, per + 1]
    return (q.reshape(-1, *t.shape[1:]), k.reshape(-1, *t.shape[1:]),
            v.reshape(-1, *t.shape[1:]))


def hf_state_dict(model: Any, config: dict[str, Any], per: int) -> dict[str, Any]:
    """The Hugging Face weight names and layouts of an extracted ``DecoderLM``."""
    state: dict[str, Any] = {}
    gpt = config["model_type"] == "gpt2"
    pre, layers = ("transformer.", "h") if gpt else ("model.", "layers")
    state[pre + ("wte" if gpt else "embed_tokens") + ".weight"] = model.embed.weight
    if gpt:
        state["transformer.wpe.weight"] = model.positions.weight
    for i, block in enumerate(model.blocks):
        p = f"{pre}{layers}.{i}."
        groups = block.attn.proj.in_features // (per * block.attn.head_dim)
        q, k, v = _ungroup(block.attn.qkv.weight, groups, per)
        if gpt:
            _gpt2_block(state, p, block, q, k, v)
            continue
        state[p + "input_layernorm.weight"] = block.norm1.weight
        state[p + "post_attention_layernorm.weight"] = block.norm2.weight
        a = p + "self_attn."
        for name, t in zip(("q", "k", "v"), (q, k, v)):
            state[f"{a}{name}_proj.weight"] = t
        state[a + "o_proj.weight"] = block.attn.proj.weight
        if block.attn.qkv.bias is not None:
            for name, t in zip("qkv", _ungroup(block.attn.qkv.bias, groups, per)):
                state[f"{a}{name}_proj.bias"] = t
            state[a + "o_proj.bias"] = block.attn.proj.bias
        for name in ("gate", "up", "down"):
            layer = getattr(block.mlp, name)
            state[f"{p}mlp.{name}_proj.weight"] = layer.weight
            if layer.bias is not None:
                state[f"{p}mlp.{name}_proj.bias"] = layer.bias
    norm = "transformer.ln_f" if gpt else "model.norm"
    state[norm + ".weight"] = model.norm.weight
    if getattr(model.norm, "bias", None) is not None:
        state[norm + ".bias"] = model.norm.bias
    state["lm_head.weight"] = model.embed.weight if model.head is None else model.head.weight
    return state


def _gpt2_block(state: dict[str, Any], p: str, block: Any, q: Any, k: Any, v: Any) -> None:
    """One GPT-2 block's tensors (``Conv1D`` weights are ``(in, out)``)."""
    import torch

    groups = q.shape[0] // block.attn.head_dim
    state[p + "attn.c_attn.weight"] = torch.cat([q, k, v]).t()
    state[p + "attn.c_attn.bias"] = torch.cat(_ungroup(block.attn.qkv.bias, groups, 1))
    state[p + "attn.c_proj.weight"] = block.attn.proj.weight.t()
    state[p + "attn.c_proj.bias"] = block.attn.proj.bias
    for ours, theirs in (("norm1", "ln_1"), ("norm2", "ln_2")):
        state[f"{p}{theirs}.weight"] = getattr(block, ours).weight
        state[f"{p}{theirs}.bias"] = getattr(block, ours).bias
    for ours, theirs in (("fc1", "c_fc"), ("fc2", "c_proj")):
        state[f"{p}mlp.{theirs}.weight"] = getattr(block.mlp, ours).weight.t()
        state[f"{p}mlp.{theirs}.bias"] = getattr(block.mlp, ours).bias


def build_hf_model(supernet: Any, arch: ArchConfig) -> Any:
    """A ``transformers`` model computing ``arch`` of ``supernet`` (weights copied)."""
    try:
        import transformers
    except ModuleNotFoundError:
        raise ConfigError("format 'hf' needs transformers (pip install 'ofa-nas[hf]')") from None
    import torch

    fields = subnet_config(supernet, arch)
    kind = fields.pop("model_type")
    config = transformers.AutoConfig.for_model(kind, **fields)
    model = transformers.AutoModelForCausalLM.from_config(config).eval()
    source = supernet.extract(arch).eval()
    state = {k: v.detach().contiguous() for k, v in
             hf_state_dict(source, {"model_type": kind}, supernet.plan.heads_per_group).items()}
    wanted = model.state_dict()
    missing = sorted(set(wanted) - set(state))
    extra = sorted(set(state) - set(wanted))
    if missing or extra:
        raise ConfigError(f"format 'hf': weight names differ from {type(model).__name__}'s: "
                          f"missing {missing[:5]}, unexpected {extra[:5]}")
    with torch.no_grad():
        for name, tensor in wanted.items():
            if tensor.shape != state[name].shape:
                raise ConfigError(f"format 'hf': {name} has shape {tuple(state[name].shape)}, "
                                  f"{type(model).__name__} wants {tuple(tensor.shape)}")
            tensor.copy_(state[name])
    return model


class HFFormat:
    """The ``"hf"`` export format (:mod:`search_spaces.hf_plugin` registers it)."""

    name = "hf"

    def check(self, supernet: Any, arch: ArchConfig) -> None:
        """Refuse an arch that no Hugging Face config describes."""
        subnet_config(supernet, arch)

    def write(self, supernet: Any, arch: ArchConfig, out_dir: Path) -> list[Path]:
        """``out_dir/hf/``, replaced as a whole once complete."""
        model = build_hf_model(supernet, arch)
        target = out_dir / HF_DIR
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".hf-") as tmp:
            staged = Path(tmp) / HF_DIR
            model.save_pretrained(str(staged))
            if target.exists():
                shutil.rmtree(target)
            staged.rename(target)
        return sorted(p for p in target.rglob("*") if p.is_file())

