"""Elastic patch size (FlexiViT): PI-resized projection, resized positions, counts, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nas
from nas.elastic import ElasticPatchEmbed
from nas.elastic.patch_embed import pi_resize_matrix
from nas.elastic.positions import ElasticLearnedPositions, resize_grid_positions
from nas.errors import ConfigError
from search_spaces.transformer_space import TransformerSize, transformer_space


def test_pi_resize_keeps_tokens_of_upsampled_patches() -> None:
    torch.manual_seed(0)
    embed = ElasticPatchEmbed(3, 16, patch_size=4, patch_sizes=(8,)).eval()
    small = torch.randn(2, 3, 12, 12)
    # each 4x4 patch resized on its own to 8x8 (FlexiViT's identity is per patch)
    patches = small.unfold(2, 4, 4).unfold(3, 4, 4).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, 4, 4)
    up = F.interpolate(patches, size=(8, 8), mode="bilinear", align_corners=False)
    big = up.reshape(2, 3, 3, 3, 8, 8).permute(0, 3, 1, 4, 2, 5).reshape(2, 3, 24, 24)
    with torch.no_grad():
        base = embed(small)                      # 3 x 3 patches of 4 pixels
        embed.active_patch = 8
        resized = embed(big)                     # 3 x 3 patches of 8 pixels
    assert resized.shape == base.shape == (2, 9, 16)
    assert float((resized - base).abs().max()) <= 1e-4


def test_pi_resize_matrix_is_identity_at_the_base() -> None:
    assert torch.equal(pi_resize_matrix(4, 4), torch.eye(16, dtype=torch.float64))
    assert pi_resize_matrix(4, 8).shape == (16, 64)


def test_positions_follow_the_active_grid() -> None:
    table = torch.randn(1 + 16, 8)
    resized = resize_grid_positions(table, 4, 2)
    assert resized.shape == (1 + 4, 8)
    assert torch.equal(resized[0], table[0])     # the class token's row is kept
    pos = ElasticLearnedPositions(17, 8, grid=4)
    pos.active_grid = 2
    assert pos.export().weight.shape == (5, 8)
    with pytest.raises(ConfigError, match="active grid"):
        pos(torch.randn(1, 17, 8))


def test_space_offers_patch_sizes_largest_network_last() -> None:
    space = nas.create_space("vit_flex")
    assert space["patch_size"].values == (14, 7, 4)
    assert space.largest()["patch_size"] == 4
    assert space.smallest()["patch_size"] == 14


def test_counts_and_outputs_follow_the_patch() -> None:
    torch.manual_seed(0)
    supernet = nas.create_supernet("vit_flex", num_classes=10).eval()
    space = supernet.space
    x = torch.randn(2, 3, 28, 28)
    seen = set()
    for arch in space.sample_many(12, np.random.default_rng(0)):
        supernet.set_active(arch)
        model = supernet.extract(arch).eval()
        with torch.no_grad():
            assert float((supernet(x) - model(x)).abs().max()) <= 1e-5
        params = sum(p.numel() for p in model.parameters())
        assert nas.count(space, arch, 10)["params"] == params
        seen.add(arch["patch_size"])
    assert len(seen) > 1
    macs = [nas.count(space, space.largest().replace(space, patch_size=p), 10)["macs"]
            for p in (14, 7, 4)]
    assert macs[0] < macs[1] < macs[2]           # smaller patches, more tokens, more MACs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_sizes": [5]}, "divide resolution"),
        ({"patch_sizes": [2]}, ">= patch_size=4"),
    ],
)
def test_bad_patch_sizes_are_named(kwargs: dict[str, object], message: str) -> None:
    size = TransformerSize(layers=2, heads=2, embed_dim=32, mlp_ratio=2.0)
    with pytest.raises(ConfigError, match=message):
        transformer_space("v", "vit", size, resolution=28, patch_size=4, **kwargs)  # type: ignore[arg-type]


def test_patch_sizes_only_for_vit() -> None:
    size = TransformerSize(layers=2, heads=2, embed_dim=32, mlp_ratio=2.0)
    with pytest.raises(ConfigError, match="family 'vit'"):
        transformer_space("g", "gpt", size, patch_sizes=[8])
