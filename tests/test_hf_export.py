"""Export format ``"hf"``: subnets as ``save_pretrained`` folders plain ``transformers`` loads.

GPT-2 and LLaMA (grouped-query attention) models with 4 layers are made here, saved and
imported; random subnets that a Hugging Face config can describe are exported, reloaded with
``AutoModelForCausalLM.from_pretrained`` and compared with the supernet: logits within 1e-5
and the same greedy tokens from ``generate`` as our own greedy decoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the 'hf' extra is not installed")

import nas  # noqa: E402
from nas.errors import ConfigError, InvalidArchError  # noqa: E402
from nas.space import ArchConfig  # noqa: E402
from search_spaces.hf_export import HFFormat  # noqa: E402
from search_spaces.hf_space import from_hf  # noqa: E402

NO_TOKENS = {"bos_token_id": None, "eos_token_id": None, "pad_token_id": None}


def _model(kind: str) -> Any:
    """A 4-layer model with peaked logits (large init), so greedy tokens have no near-ties."""
    torch.manual_seed(0)
    if kind == "gpt2":
        return transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=4, n_embd=64, n_head=4, n_positions=128, vocab_size=256,
            initializer_range=0.1, **NO_TOKENS)).eval()
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        num_hidden_layers=4, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=176, max_position_embeddings=128, vocab_size=256,
        initializer_range=0.1, **NO_TOKENS)).eval()


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def imported(request: Any, tmp_path_factory: Any) -> tuple[Any, Any]:
    """(supernet, original model), imported from a save_pretrained folder."""
    model = _model(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    return from_hf(folder), model


def exportable_arch(supernet: Any, rng: np.random.Generator) -> ArchConfig:
    """A random arch with one head count and one MLP ratio for all layers (GPT-2: width =
    heads x head size)."""
    space = supernet.space
    values = space.largest().to_dict()
    heads = int(rng.choice(space["l0.heads"].values))
    ratio = float(rng.choice(space["l0.mlp_ratio"].values))
    values["depth"] = int(rng.choice(space["depth"].values))
    gpt = supernet.plan.family == "gpt"
    values["embed_dim"] = (heads * supernet.plan.head_dim if gpt
                           else int(rng.choice(space["embed_dim"].values)))
    for i in range(supernet.plan.max_depth):
        values[f"l{i}.heads"], values[f"l{i}.mlp_ratio"] = heads, ratio
    return space.arch(values)


def greedy(supernet: Any, ids: torch.Tensor, steps: int) -> torch.Tensor:
    """Our greedy decoding: append the arg-max token ``steps`` times."""
    with torch.no_grad():
        for _ in range(steps):
            ids = torch.cat([ids, supernet(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids


def _check_exports(imported: tuple[Any, Any], tmp_path: Path, n: int) -> None:
    supernet, _ = imported
    rng = np.random.default_rng(0)
    ids = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(1))
    for k in range(n):
        arch = exportable_arch(supernet, rng)
        out = nas.export_subnet(supernet, arch, tmp_path / str(k), formats=["torch", "hf"])
        assert {"config.json", "model.safetensors"} <= {p.name for p in (out / "hf").iterdir()}
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(out / "hf").eval()
        supernet.set_active(arch)
        with torch.no_grad():
            diff = float((reloaded(ids).logits - supernet(ids)).abs().max())
        assert diff <= 1e-5, (arch.to_dict(), diff)
        tokens = reloaded.generate(ids, max_new_tokens=6, do_sample=False)
        assert torch.equal(tokens, greedy(supernet, ids, 6)), arch.to_dict()


def test_random_exportable_subnets_reload_exactly(imported: Any, tmp_path: Path) -> None:
    _check_exports(imported, tmp_path, 10)


@pytest.mark.slow
def test_fifty_random_exportable_subnets_reload_exactly(imported: Any, tmp_path: Path) -> None:
    _check_exports(imported, tmp_path, 50)


def test_largest_subnet_export_is_the_original_model(imported: Any, tmp_path: Path) -> None:
    supernet, model = imported
    out = nas.export_subnet(supernet, supernet.space.largest(), tmp_path, formats=["hf"])
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out / "hf")
    for name, tensor in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    from nas.registry import REGISTRY

    REGISTRY._entries.pop(supernet.space.name)  # a fresh process: rebuilt from arch.json's recipe
    static = nas.load_subnet(out)  # the torch format is written and loads too
    ids = torch.randint(0, 256, (1, 16))
    with torch.no_grad():
        assert float((static(ids) - reloaded(ids).logits).abs().max()) <= 1e-5


def test_per_layer_shapes_fail_before_any_work(imported: Any, tmp_path: Path) -> None:
    supernet, _ = imported
    values = supernet.space.largest().to_dict()
    values["l1.heads"] = min(supernet.space["l1.heads"].values)
    arch = supernet.space.arch(values)
    with pytest.raises(InvalidArchError, match=r"per-layer head counts .* exportable=True"):
        nas.export_subnet(supernet, arch, tmp_path / "never", formats=["torch", "hf"])
    assert not (tmp_path / "never").exists()


def test_gpt2_width_must_match_heads(tmp_path: Path) -> None:
    supernet = from_hf(_model("gpt2"))
    values = supernet.space.largest().to_dict()
    values["embed_dim"] = 48  # 4 heads of 16 would need 64
    with pytest.raises(InvalidArchError, match="embed_dim = heads x head_dim"):
        HFFormat().check(supernet, supernet.space.arch(values))


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_exportable_space_exports_every_subnet(kind: str) -> None:
    supernet = from_hf(_model(kind), name=f"hf_{kind}_exportable", exportable=True)
    space = supernet.space
    assert space.size() > 1
    for arch in [space.smallest(), *space.sample_many(20, np.random.default_rng(0))]:
        HFFormat().check(supernet, arch)


def test_builtin_decoder_space_exports_too(tmp_path: Path) -> None:
    supernet = nas.create_supernet("llama_tiny", num_classes=256).eval()
    arch = supernet.space.largest()
    out = nas.export_subnet(supernet, arch, tmp_path, formats=["hf"])
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out / "hf").eval()
    ids = torch.randint(0, 256, (1, 16))
    supernet.set_active(arch)
    with torch.no_grad():
        assert float((reloaded(ids).logits - supernet(ids)).abs().max()) <= 1e-5


def test_unknown_format_lists_the_registered_ones(tmp_path: Path) -> None:
    supernet = nas.create_supernet("tiny", num_classes=10)
    with pytest.raises(ConfigError, match=r"allowed values are \['torch', 'export', 'onnx', 'hf'"):
        nas.export_subnet(supernet, supernet.space.largest(), tmp_path, formats=["nope"])
    with pytest.raises(ConfigError, match="decoder language models"):
        nas.export_subnet(supernet, supernet.space.largest(), tmp_path, formats=["hf"])
