"""Importing Hugging Face causal LMs as supernets (``from_hf``, ``nas train --from-hf``).

Models are built here from configs (random weights, nothing downloaded) and saved with
``save_pretrained``: they play the user's checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the 'hf' extra is not installed")

import nas  # noqa: E402
from nas.cli import main  # noqa: E402
from nas.errors import ConfigError, MissingFileError  # noqa: E402
from nas.rundir import RunDir  # noqa: E402
from search_spaces.hf_space import from_hf  # noqa: E402

SMALL = {"vocab_size": 256, "bos_token_id": None, "eos_token_id": None, "pad_token_id": None}


def make_model(kind: str) -> Any:
    """A 4-layer model of ``kind`` (LLaMA and Mistral with grouped-query attention)."""
    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(n_layer=4, n_embd=64, n_head=4, n_positions=128, **SMALL)
        return transformers.GPT2LMHeadModel(config).eval()
    sizes = {"num_hidden_layers": 4, "hidden_size": 64, "num_attention_heads": 4,
             "num_key_value_heads": 2, "intermediate_size": 176, "head_dim": 16, **SMALL}
    if kind == "llama":
        config = transformers.LlamaConfig(max_position_embeddings=128, **sizes)
        return transformers.LlamaForCausalLM(config).eval()
    config = transformers.MistralConfig(max_position_embeddings=4096, sliding_window=128, **sizes)
    return transformers.MistralForCausalLM(config).eval()


def _max_diff(supernet: Any, model: Any, seq_len: int = 48) -> float:
    supernet.set_active(supernet.space.largest())
    ids = torch.randint(0, 256, (2, seq_len), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return float((supernet(ids) - model(ids).logits).abs().max())


@pytest.mark.parametrize("kind", ["gpt2", "llama", "mistral"])
def test_folder_import_computes_the_model(kind: str, tmp_path: Path) -> None:
    model = make_model(kind)
    model.save_pretrained(tmp_path / kind)
    supernet = from_hf(tmp_path / kind)
    assert supernet.space.name == f"hf_{kind}_{kind}"
    assert _max_diff(supernet, model) <= 1e-5
    # the model's sizes are the largest choice, with smaller defaults below them
    assert supernet.space["depth"].values == (2, 3, 4)
    widths = supernet.space["embed_dim"].values
    assert max(widths) == 64 and len(widths) > 1
    assert len(supernet.space["l0.heads"].values) > 1
    ours = supernet.extract(supernet.space.largest())
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in model.parameters())


def test_model_object_import_and_overrides() -> None:
    model = make_model("llama")
    supernet = from_hf(model, name="my_llama", depth=[3], heads=[], embed_dim=[48])
    space = supernet.space
    assert space.name == "my_llama" and space["depth"].values == (3, 4)
    assert space["l0.heads"].values == (4,) and space["embed_dim"].values == (48, 64)
    assert _max_diff(supernet, model) <= 1e-5
    assert nas.create_space("my_llama").fingerprint() == space.fingerprint()


def test_mistral_positions_are_capped_at_the_sliding_window() -> None:
    supernet = from_hf(make_model("mistral"))
    assert supernet.plan.max_positions == 128


def test_unsupported_model_type_names_it(tmp_path: Path) -> None:
    config = transformers.BertConfig(num_hidden_layers=1, hidden_size=32, num_attention_heads=2,
                                     intermediate_size=64, vocab_size=100)
    config.save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match=r"model_type 'bert' is not supported; supported: "
                                          r"\['gpt2', 'llama', 'mistral'\]"):
        from_hf(tmp_path)
    with pytest.raises(MissingFileError, match="no such model folder"):
        from_hf(tmp_path / "missing")


def test_recipe_rebuilds_the_space_without_the_model() -> None:
    from nas.registry import REGISTRY
    from nas.space_recipes import recipe_of, resolve_recorded_space

    space = from_hf(make_model("gpt2"), name="hf_recipe_probe").space
    recipe = recipe_of(space)
    assert recipe is not None
    json.dumps(recipe)  # recorded as JSON
    REGISTRY._entries.pop("hf_recipe_probe")  # as in a fresh process
    rebuilt = resolve_recorded_space("hf_recipe_probe", recipe=recipe)
    assert rebuilt.fingerprint() == space.fingerprint()


def test_space_ref_carries_the_recipe_to_other_processes() -> None:
    """Ray workers and device subprocesses rebuild spaces from a SpaceRef."""
    import pickle

    from nas.registry import REGISTRY, SpaceRef

    space = from_hf(make_model("llama"), name="hf_ref_probe").space
    ref = pickle.loads(pickle.dumps(SpaceRef.of(space)))  # what travels to a worker
    REGISTRY._entries.pop("hf_ref_probe")  # the worker's registry has never seen it
    assert ref.resolve().fingerprint() == space.fingerprint()


def test_cli_train_from_hf_records_what_later_verbs_need(tmp_path: Path, capsys: Any) -> None:
    model = make_model("gpt2")
    model.save_pretrained(tmp_path / "model")
    args = ["train", "--from-hf", str(tmp_path / "model"), "--teacher", "initial", "--data",
            "pydoc", "--seq-len", "32", "--limit", "64", "--epochs", "1", "--batch-size", "16",
            "--runs-dir", str(tmp_path / "runs"), "--run", "ft", "--json"]
    assert main(args) == 0
    capsys.readouterr()
    run = tmp_path / "runs" / "ft"
    spec = json.loads((run / "space.json").read_text())
    assert spec["meta"]["recipe"]["module"] == "search_spaces.hf_space"
    assert json.loads((run / "supernet" / "config.json").read_text())["build"]["num_classes"] == 256
    from nas.registry import REGISTRY

    REGISTRY._entries.pop(spec["name"])  # a later verb in a fresh process
    assert RunDir.open(run).space.fingerprint() == spec["fingerprint"]
    supernet = nas.flow.load_supernet(run)
    assert supernet.num_classes == 256
    assert main([*args[:-1], "--resume"]) == 0  # resumable; finished runs just report
    with pytest.raises(SystemExit):  # one source only
        main(["train", "--space", "gpt_tiny", "--from-hf", "x"])
