"""Parity with the reference implementations: Hugging Face GPT-2 / LLaMA and timm ViT / DeiT.

Reference models are built from their configs with random weights (nothing is downloaded),
their weights loaded into our supernet, and the largest subnet's outputs compared in float32.
The tests skip when ``transformers`` / ``timm`` are absent (extras ``hf`` / ``vision``). timm
runs in a subprocess with a stand-in torchvision (``bench/bench_transformer_reference.py``).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import nas
from search_spaces.decoder_net import DecoderSupernet
from search_spaces.transformer_layers import layer_specs

ROOT = Path(__file__).resolve().parents[1]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _hf_parity(config: Any, seq_len: int, **choices: Any) -> tuple[float, int, int]:
    """(max |logits diff|, reference params, our params) for a HF config with random weights."""
    transformers = pytest.importorskip("transformers")
    from search_spaces.hf_import import hf_space, load_hf

    torch.manual_seed(0)
    cls = transformers.GPT2LMHeadModel if config.model_type == "gpt2" else (
        transformers.LlamaForCausalLM)
    reference = cls(config).eval()
    supernet = DecoderSupernet(hf_space(config, "hf_parity", **choices),
                               num_classes=config.vocab_size).eval()
    load_hf(supernet, reference)
    supernet.set_active(supernet.space.largest())
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, config.vocab_size, (2, seq_len), generator=generator)
    with torch.no_grad():
        diff = float((reference(ids).logits - supernet(ids)).abs().max())
    specs = layer_specs(supernet.space, supernet.space.largest(), config.vocab_size)
    assert sum(s.params() for s in specs) == _params(supernet)  # counting is exact too
    return diff, _params(reference), _params(supernet)


def test_gpt2_4_layers_matches_hugging_face() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=4, n_embd=128, n_head=4, vocab_size=512,
                                     n_positions=128)
    diff, ref, ours = _hf_parity(config, 64, depth=[2, 3], heads=[2], embed_dim=[64])
    assert diff <= 1e-5
    assert ref == ours


def test_llama_4_layers_gqa_matches_hugging_face() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=512, hidden_size=128, intermediate_size=344, num_hidden_layers=4,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=128,
    )
    diff, ref, ours = _hf_parity(config, 64, depth=[2], heads=[4], mlp_ratio=[2.0])
    assert diff <= 1e-5
    assert ref == ours


def test_import_names_mismatched_fields() -> None:
    transformers = pytest.importorskip("transformers")
    from search_spaces.hf_import import load_hf

    reference = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=256, n_positions=64))
    supernet = nas.create_supernet("gpt_tiny", num_classes=256)
    with pytest.raises(ValueError, match="depth: supernet 4, model 2; embed_dim: supernet 64"):
        load_hf(supernet, reference)  # type: ignore[arg-type]


@pytest.mark.slow
def test_gpt2_small_matches_hugging_face() -> None:
    transformers = pytest.importorskip("transformers")
    diff, ref, ours = _hf_parity(transformers.GPT2Config(), 128)
    assert diff <= 1e-4
    assert ref == ours == 124_439_808


def _timm_reference(name: str, tmp_path: Path) -> dict[str, Any]:
    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed (extra 'vision')")
    out = tmp_path / f"{name}.pt"
    script = ROOT / "bench" / "bench_transformer_reference.py"
    subprocess.run([sys.executable, str(script), "timm", name, str(out)], check=True, cwd=ROOT)
    return dict(torch.load(out, weights_only=True))


@pytest.mark.slow
@pytest.mark.parametrize(
    "timm_name,space", [("deit_tiny_patch16_224", "vit_ti16"), ("vit_small_patch16_224", "vit_s16")]
)
def test_vit_matches_timm(timm_name: str, space: str, tmp_path: Path) -> None:
    from search_spaces.timm_import import load_timm_vit

    reference = _timm_reference(timm_name, tmp_path)
    supernet = nas.create_supernet(space, num_classes=1000).eval()
    load_timm_vit(supernet, reference["state_dict"])  # type: ignore[arg-type]
    supernet.set_active(supernet.space.largest())
    with torch.no_grad():
        diff = float((supernet(reference["input"]) - reference["output"]).abs().max())
    assert diff <= 1e-5
    assert reference["params"] == _params(supernet)
    assert nas.count(supernet.space, supernet.space.largest(), 1000)["params"] == _params(supernet)
