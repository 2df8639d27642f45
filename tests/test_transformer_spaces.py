"""Transformer spaces: dimensions and masking, the derivation helper, exact counting."""

from __future__ import annotations

import numpy as np
import pytest

import nas
from nas.counting import count_many
from nas.layers import layer_kind
from search_spaces.transformer_layers import layer_specs
from search_spaces.transformer_space import TransformerPlan, TransformerSize, transformer_space

TINY = {"gpt_tiny": 256, "llama_tiny": 256, "vit_mini": 10}
PUBLISHED = {
    # name: (num_classes, params of the largest network)
    "gpt2_small": (50257, 124_439_808),   # GPT-2 small (Radford et al. 2019; HF gpt2)
    "vit_ti16": (1000, 5_717_416),        # timm deit_tiny_patch16_224
    "vit_s16": (1000, 22_050_664),        # timm vit_small_patch16_224 / deit_small
    "vit_b16": (1000, 86_567_656),        # timm vit_base_patch16_224
}


def test_spaces_are_registered_with_dotted_dims() -> None:
    names = nas.list_spaces()
    for name in [*TINY, *PUBLISHED]:
        assert name in names
    space = nas.create_space("gpt_tiny")
    assert space.names[:4] == ("depth", "embed_dim", "l0.heads", "l0.mlp_ratio")
    assert "l3.heads" in space.names and space["l3.mlp_ratio"].when is not None
    assert space["l1.heads"].when is None  # every depth keeps the first two layers


def test_layers_beyond_depth_are_inactive() -> None:
    space = nas.create_space("vit_mini")
    arch = space.smallest()  # depth 2
    assert not space.is_active(arch, "l2.heads")
    other = arch.replace(space, **{"l3.heads": 4, "l2.mlp_ratio": 4.0})
    assert other.key == arch.key
    deeper = arch.replace(space, depth=3)
    assert deeper.key != arch.key


def test_helper_derives_space_from_size() -> None:
    size = TransformerSize(layers=6, heads=8, embed_dim=256, mlp_ratio=4.0, kv_heads=4)
    space = transformer_space("my_llama", "llama", size, depth=[4], heads=[4, 6],
                              embed_dim=[192], mlp_ratio=[2, 3], seq_len=64, max_positions=64)
    assert space["depth"].values == (4, 6) and space["l0.heads"].values == (4, 6, 8)
    assert space["l0.mlp_ratio"].values == (2.0, 3.0, 4.0)
    plan = TransformerPlan.of(space)
    assert (plan.head_dim, plan.heads_per_group, plan.max_groups, plan.max_hidden) == (32, 2, 4,
                                                                                      1024)
    assert space.meta["norm"] == "rmsnorm" and space.meta["seq_len"] == 64


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"family": "bert"}, "family must be one of"),
        ({"depth": [5]}, "depth choices \\[5\\] exceed"),
        ({"heads": [3]}, "not multiples of heads_per_group=2"),
        ({"dropout": 0.1}, "unknown options \\['dropout'\\]"),
        ({"norm": "batchnorm"}, "norm must be one of"),
        ({"seq_len": 4096}, "seq_len=4096 exceeds max_positions=2048"),
    ],
)
def test_helper_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    size = TransformerSize(layers=4, heads=4, embed_dim=64, mlp_ratio=4.0, kv_heads=2)
    family = str(kwargs.pop("family", "llama"))
    with pytest.raises(ValueError, match=message):
        transformer_space("bad", family, size, **kwargs)  # type: ignore[arg-type]


def test_size_validation() -> None:
    with pytest.raises(ValueError, match="head_dim"):
        TransformerSize(layers=2, heads=3, embed_dim=64, mlp_ratio=4.0)
    with pytest.raises(ValueError, match="kv_heads=3 must divide heads=4"):
        TransformerSize(layers=2, heads=4, embed_dim=64, mlp_ratio=4.0, kv_heads=3)


@pytest.mark.parametrize("name,spec", PUBLISHED.items())
def test_published_sizes_count_exactly(name: str, spec: tuple[int, int]) -> None:
    classes, params = spec
    space = nas.create_space(name)
    assert nas.count(space, space.largest(), num_classes=classes)["params"] == params


def test_counts_match_extracted_networks() -> None:
    rng = np.random.default_rng(0)
    for name, classes in TINY.items():
        supernet = nas.create_supernet(name, num_classes=classes)
        archs = [supernet.space.largest(), supernet.space.smallest(),
                 *supernet.space.sample_many(4, rng)]
        for arch, counted in zip(archs, count_many(supernet.space, archs, classes)):
            model = supernet.extract(arch)
            assert counted["params"] == sum(p.numel() for p in model.parameters()), (name, arch)


def test_macs_per_sequence_and_per_image() -> None:
    space = nas.create_space("gpt2_small")
    specs = layer_specs(space, space.largest(), 50257)
    block = next(s for s in specs if s.kind == "transformer_block")
    t, d = 1024, 768
    assert block.macs() == t * 12 * d * d + 2 * 12 * t * t * 64  # qkv+proj+mlp, QK and AV
    assert specs[-1].kind == "lm_head" and specs[-1].params() == 0  # tied to the embedding
    assert specs[-1].macs() == t * d * 50257
    vit = nas.create_space("vit_ti16")
    # DeiT-Ti: 1.3 GMACs per 224x224 image (Touvron et al. 2021, Table 1)
    assert nas.count(vit, vit.largest(), 1000)["macs"] == pytest.approx(1.25e9, rel=0.01)


def test_block_specs_build_and_run() -> None:
    import torch

    space = nas.create_space("llama_tiny")
    for spec in layer_specs(space, space.largest(), 256):
        kind = layer_kind(spec.kind)
        module = spec.build()
        built = sum(p.numel() for p in module.parameters())
        assert built == spec.params() or spec.kind == "lm_head"  # a tied head owns nothing
        example = getattr(kind, "example_input", None)
        if example is not None:
            with torch.no_grad():
                module(example(spec, 2))
