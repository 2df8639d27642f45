"""A pretrained Hugging Face causal LM as a supernet: :func:`from_hf`.

:func:`from_hf` reads a local ``save_pretrained`` folder (never downloading) or takes a
``transformers`` model object, derives an elastic space from its config (the model's own
sizes are the largest choice; smaller choices by default at 1/2 and 3/4 of depth, query
groups, width and MLP ratio, each overridable), registers that space and returns its supernet
with the model's weights loaded: the largest subnet computes the model. Supported
``model_type`` s: :data:`search_spaces.hf_import.SUPPORTED` (GPT-2, LLaMA, Mistral).

The space records its recipe and the model's config in ``meta`` (``recipe``, ``hf_config``),
so later verbs rebuild it from a run's ``space.json`` without the model
(:mod:`nas.space_recipes`), and ``export_subnet(..., formats=["hf"])`` writes a folder that
``transformers`` loads (:mod:`search_spaces.hf_export`).

Example:
    >>> supernet = from_hf("models/my-gpt2")                 # folder of save_pretrained
    >>> supernet = from_hf(model, depth=[2], exportable=True)  # every subnet exports to HF
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from nas.errors import ConfigError, MissingFileError
from nas.space import SearchSpace
from search_spaces.decoder_net import DecoderSupernet
from search_spaces.hf_import import SUPPORTED, hf_space, load_hf
from search_spaces.transformer_registry import register_transformer

FRACTIONS = (0.5, 0.75)  # the default smaller choices, as fractions of the model's sizes
_DROPPED_KEYS = ("transformers_version",)  # would change the fingerprint across versions


def read_model_type(folder: Path) -> str:
    """The ``model_type`` of a local folder's ``config.json``; errors for unsupported ones."""
    path = folder / "config.json"
    if not path.is_file():
        raise MissingFileError(f"{folder}: no config.json (expected a save_pretrained folder)")
    kind = json.loads(path.read_text()).get("model_type")
    check_model_type(kind)
    return str(kind)


def check_model_type(kind: Any) -> None:
    """A :class:`ConfigError` naming ``kind`` and the supported ones if it is not one."""
    if kind not in SUPPORTED:
        raise ConfigError(f"model_type {kind!r} is not supported; supported: {list(SUPPORTED)}")


def load_model(source: str | Path | nn.Module) -> nn.Module:
    """The model object: ``source`` itself, or loaded (float32, local files only) from a folder."""
    if isinstance(source, nn.Module):
        check_model_type(getattr(getattr(source, "config", None), "model_type", None))
        return source
    folder = Path(source)
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: no such model folder")
    read_model_type(folder)
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, dtype=torch.float32
    ).eval()


def config_dict(config: Any) -> dict[str, Any]:
    """The model config as plain JSON (every field, not only those differing from defaults)."""
    data = json.loads(config.to_json_string(use_diff=False))
    return {k: v for k, v in data.items() if k not in _DROPPED_KEYS and not k.startswith("_")}


def default_choices(config: Any, exportable: bool = False) -> dict[str, list[Any]]:
    """Smaller choices at :data:`FRACTIONS` of the model's depth, key/value groups, width (in
    whole heads for GPT-2, multiples of 8 otherwise) and MLP ratio. ``exportable``: one head
    count and one MLP ratio for all layers (GPT-2: also one width), so every subnet can be
    written as a Hugging Face config."""
    c = SimpleNamespace(**config) if isinstance(config, dict) else config
    gpt = c.model_type == "gpt2"
    layers = c.n_layer if gpt else c.num_hidden_layers
    width = c.n_embd if gpt else c.hidden_size
    heads = c.n_head if gpt else c.num_attention_heads
    groups = heads if gpt else c.num_key_value_heads
    hidden = (c.n_inner or 4 * width) if gpt else c.intermediate_size
    out: dict[str, list[Any]] = {
        "depth": _scaled(layers, 1), "heads": [], "embed_dim": [], "mlp_ratio": []}
    if gpt and not exportable:
        out["embed_dim"] = [h * (width // heads) for h in _scaled(heads, 1)]
    elif not gpt:
        out["embed_dim"] = _scaled(width, 8)
    if not exportable:
        out["heads"] = [g * (heads // groups) for g in _scaled(groups, 1)]
        out["mlp_ratio"] = [round(f * hidden / width, 4) for f in FRACTIONS]
    return out


def _scaled(value: int, step: int) -> list[int]:
    """``value`` times each fraction, in multiples of ``step`` (at least one ``step``)."""
    return sorted({max(step, round(value * f / step) * step) for f in FRACTIONS} - {value})


def space_name(source: str | Path | nn.Module, model_type: str) -> str:
    """``hf_<model_type>[_<folder name>]``, with characters other than ``[A-Za-z0-9_.-]``
    replaced by ``_``."""
    stem = "" if isinstance(source, nn.Module) else "_" + Path(source).resolve().name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"hf_{model_type}{stem}")


def rebuild_space(
    name: str, hf_config: dict[str, Any], choices: dict[str, list[Any]],
    options: dict[str, Any],
) -> SearchSpace:
    """Build and register the space of ``hf_config`` (the recipe a run records)."""
    config = SimpleNamespace(**hf_config)
    base = hf_space(config, name, **choices, **options)
    recipe = {"module": __name__, "function": "rebuild_space",
              "args": {"name": name, "hf_config": hf_config, "choices": choices,
                       "options": options}}
    space = SearchSpace(name, base.choices, {**base.meta, "hf_config": hf_config,
                                             "recipe": recipe})
    register_transformer(name, lambda: space,
                         description=f"imported Hugging Face {hf_config['model_type']} model")
    return space


def from_hf(
    source: str | Path | nn.Module,
    *,
    name: str | None = None,
    depth: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    embed_dim: Sequence[int] | None = None,
    mlp_ratio: Sequence[float] | None = None,
    exportable: bool = False,
    seq_len: int | None = None,
    **options: Any,
) -> DecoderSupernet:
    """The supernet of a Hugging Face causal LM, its largest subnet loaded with the weights.

    Args:
        source: a local ``save_pretrained`` folder or a ``transformers`` model object.
        name: the registered space's name (default :func:`space_name`).
        depth, heads, embed_dim, mlp_ratio: smaller choices (default
            :func:`default_choices`; ``[]`` keeps a dimension fixed at the model's size).
        exportable: default choices whose every subnet exports to a Hugging Face config.
        seq_len: tokens per example of the space (MACs, export traces; default
            ``min(positions, 1024)``).
        options: further space options (:func:`search_spaces.transformer_space.transformer_space`).

    Raises:
        ConfigError: unsupported ``model_type`` (named, with the supported ones), or a
            choice above the model's size.
        MissingFileError: no such folder or no ``config.json`` in it.
    """
    model = load_model(source)
    hf_config = config_dict(model.config)
    given: dict[str, Sequence[Any] | None] = {
        "depth": depth, "heads": heads, "embed_dim": embed_dim, "mlp_ratio": mlp_ratio}
    choices = {k: list(v if given[k] is None else given[k] or [])
               for k, v in default_choices(model.config, exportable).items()}
    positions = hf_space(model.config, "probe").meta["max_positions"]
    options = {"seq_len": min(int(positions), 1024) if seq_len is None else seq_len, **options}
    space = rebuild_space(name or space_name(source, hf_config["model_type"]), hf_config,
                          choices, options)
    supernet = DecoderSupernet(space, num_classes=int(hf_config["vocab_size"]))
    load_hf(supernet, model)
    return supernet.eval()
