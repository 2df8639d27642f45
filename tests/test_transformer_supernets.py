"""Transformer supernets: supernet == extract for random archs, sorting, inputs, ONNX."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import nas
from nas.supernet import Supernet

TINY = {"gpt_tiny": 256, "llama_tiny": 256, "vit_mini": 10, "vit_flex": 10}
TOLERANCE = 1e-5


def _input(supernet: Supernet, batch: int = 2, seq_len: int = 24) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if supernet.space.meta["family"] == "vit":
        r = int(supernet.space.meta["resolution"])
        return torch.randn(batch, 3, r, r, generator=gen)
    return torch.randint(0, supernet.num_classes, (batch, seq_len), generator=gen)


def _max_diff(supernet: Supernet, n_archs: int, seed: int) -> float:
    supernet.eval()
    x = _input(supernet)
    worst = 0.0
    with torch.no_grad():
        for arch in supernet.space.sample_many(n_archs, np.random.default_rng(seed)):
            supernet.set_active(arch)
            model = supernet.extract(arch)
            assert not any(type(m).__module__.startswith("nas.elastic") for m in model.modules())
            worst = max(worst, float((supernet(x) - model(x)).abs().max()))
    return worst


@pytest.fixture(scope="module")
def supernets() -> dict[str, Supernet]:
    torch.manual_seed(0)
    return {name: nas.create_supernet(name, num_classes=c) for name, c in TINY.items()}


@pytest.mark.parametrize("name", TINY)
def test_extract_equals_supernet_10_archs(supernets: dict[str, Supernet], name: str) -> None:
    assert _max_diff(supernets[name], 10, seed=1) <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("name", TINY)
def test_extract_equals_supernet_100_archs(supernets: dict[str, Supernet], name: str) -> None:
    assert _max_diff(supernets[name], 100, seed=2) <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit_ti16", "gpt2_small"])
def test_extract_equals_supernet_published_sizes(name: str) -> None:
    classes = 1000 if name.startswith("vit") else 50257
    supernet = nas.create_supernet(name, num_classes=classes)
    assert _max_diff(supernet, 3, seed=3) <= TOLERANCE


def test_output_shapes(supernets: dict[str, Supernet]) -> None:
    assert supernets["gpt_tiny"](_input(supernets["gpt_tiny"])).shape == (2, 24, 256)
    assert supernets["vit_mini"](_input(supernets["vit_mini"])).shape == (2, 10)


@pytest.mark.parametrize("name", TINY)
def test_sorting_keeps_largest_function(name: str) -> None:
    torch.manual_seed(1)
    supernet = nas.create_supernet(name, num_classes=TINY[name]).eval()
    x = _input(supernet)
    supernet.set_active(supernet.space.largest())
    with torch.no_grad():
        for p in supernet.parameters():  # away from the symmetric initialisation
            p.add_(torch.randn_like(p) * 0.05)
        before = supernet(x)
        supernet.reorganize_channels()  # type: ignore[operator]
        after = supernet(x)
    assert float((after - before).abs().max()) <= TOLERANCE


def test_sorting_puts_important_heads_first() -> None:
    torch.manual_seed(2)
    supernet = nas.create_supernet("gpt_tiny", num_classes=64)
    block: Any = supernet.blocks[0]  # type: ignore[index]
    with torch.no_grad():
        block.attn.proj.weight[:, 48:64] *= 10.0  # make the last head the most important
    supernet.reorganize_channels()  # type: ignore[operator]
    norms = block.attn.proj.weight.abs().view(64, 4, 16).sum(dim=(0, 2))
    assert int(norms.argmax()) == 0 and torch.all(norms[:-1] >= norms[1:])


def test_bad_inputs_are_named(supernets: dict[str, Supernet]) -> None:
    with pytest.raises(ValueError, match="token ids of shape"):
        supernets["gpt_tiny"](torch.randn(2, 8))
    with pytest.raises(ValueError, match="exceeds max_positions=256"):
        supernets["gpt_tiny"](torch.zeros(1, 257, dtype=torch.long))
    with pytest.raises(ValueError, match=r"images \(batch, 3, 28, 28\)"):
        supernets["vit_mini"](torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="ViT space"):
        from search_spaces.decoder_net import DecoderSupernet

        DecoderSupernet(nas.create_space("vit_mini"), num_classes=10)


def _onnx_diff(model: nn.Module, x: torch.Tensor, *, dynamo: bool) -> float:
    import onnxruntime

    model.eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = str(Path(tmp) / "model.onnx")
        extra = {} if dynamo else {"dynamic_axes": {"input": {0: "batch"}, "logits": {0: "batch"}}}
        torch.onnx.export(model, (x,), path, dynamo=dynamo, input_names=["input"],
                          output_names=["logits"], **extra)  # type: ignore[arg-type]
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        (y,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        return float(np.abs(y - model(x).numpy()).max())


def test_onnx_of_extracted_decoder_matches_torch(supernets: dict[str, Supernet]) -> None:
    supernet = supernets["gpt_tiny"]
    arch = supernet.space.sample(np.random.default_rng(4))
    assert _onnx_diff(supernet.extract(arch), _input(supernet), dynamo=False) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", TINY)
def test_onnx_dynamo_matches_torch(supernets: dict[str, Supernet], name: str) -> None:
    supernet = supernets[name]
    for seed in range(3):
        arch = supernet.space.sample(np.random.default_rng(seed))
        assert _onnx_diff(supernet.extract(arch), _input(supernet), dynamo=True) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit_mini", "vit_flex", "gpt_tiny"])
def test_export_subnet_runs_in_onnxruntime(
    supernets: dict[str, Supernet], name: str, tmp_path: Path
) -> None:
    supernet = supernets[name].eval()
    arch = supernet.space.sample(np.random.default_rng(5))
    out = nas.export_subnet(supernet, arch, tmp_path / name)
    session = nas.load_subnet(out, format="onnx")
    x = supernet.example_input(arch, 3)  # type: ignore[attr-defined]
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert float(np.abs(y - supernet.extract(arch).eval()(x).numpy()).max()) <= 1e-4
