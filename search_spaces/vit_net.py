"""The Vision Transformer supernet (family ``vit``): ViT / DeiT as in timm.

Images ``(B, C, H, W)`` at the space's resolution → logits ``(B, num_classes)``. Skeleton
(timm's ``VisionTransformer`` with ``global_pool="token"``): patch embedding (elastic width),
a class token, learned positions over class token + patches, the elastic block stack, a final
LayerNorm and a linear head on the class token.

Example:
    >>> supernet = nas.create_supernet("vit_mini", num_classes=10)
    >>> arch = supernet.sample_active(np.random.default_rng(0))
    >>> logits = supernet(torch.randn(2, 3, 32, 32))             # (2, 10)
    >>> model = supernet.extract(arch)                          # ViTNet, plain torch
"""

from __future__ import annotations

import torch
from torch import nn

from nas.elastic import ElasticLearnedPositions, ElasticLinear, ElasticPatchEmbed
from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace
from nas.supernet import Supernet
from search_spaces.transformer_blocks import PatchEmbed, TransformerBlock
from search_spaces.transformer_space import TransformerPlan
from search_spaces.transformer_stack import (
    activate_stack,
    blocks_of,
    elastic_norm,
    elastic_stack,
    export_stack,
    init_transformer_weights,
)


def _check_images(x: torch.Tensor, channels: int, resolution: int) -> None:
    if x.dim() != 4 or x.shape[1] != channels or tuple(x.shape[2:]) != (resolution, resolution):
        raise ConfigError(
            f"input must be images (batch, {channels}, {resolution}, {resolution}), "
            f"got {tuple(x.shape)}"
        )


class ViTNet(nn.Module):
    """A static ViT (what :meth:`ViTSupernet.extract` returns).

    Args:
        patch_embed: the patch projection.
        cls_token: the class token, ``(1, 1, width)``.
        positions: the position table over class token + patches.
        blocks: the transformer blocks.
        norm: the final norm.
        head: the classifier on the class token.
    """

    def __init__(
        self,
        patch_embed: PatchEmbed,
        cls_token: torch.Tensor,
        positions: nn.Embedding,
        blocks: list[TransformerBlock],
        norm: nn.Module,
        head: nn.Linear,
    ) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.cls_token = nn.Parameter(cls_token)
        self.positions = positions
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of images ``(B, C, H, W)``."""
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1) + self.positions.weight
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)[:, 0])


class ViTSupernet(Supernet):
    """Weight-sharing ViT over a ``vit`` space.

    Args:
        space: a transformer space of family ``vit`` (meta: resolution, patch size, channels).
        num_classes: classifier outputs.
        init_std: standard deviation of the initial weights (timm: 0.02).
    """

    def __init__(self, space: SearchSpace, num_classes: int = 1000, *, init_std: float = 0.02):
        super().__init__(space, num_classes)
        plan = TransformerPlan.of(space)
        if plan.family != "vit":
            raise ConfigError(f"space {space.name!r} has family {plan.family!r}, not 'vit'")
        self.plan = plan
        self.patch_embed = ElasticPatchEmbed(
            plan.in_channels, plan.max_width, plan.patch_size, patch_sizes=plan.patch_sizes
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, plan.max_width))
        self.positions = ElasticLearnedPositions(
            plan.max_positions, plan.max_width, grid=plan.resolution // plan.patch_size
        )
        self.blocks = elastic_stack(plan)
        self.norm = elastic_norm(plan)
        self.head = ElasticLinear(plan.max_width, num_classes)
        init_transformer_weights(self, init_std)
        nn.init.normal_(self.cls_token, std=1e-6)
        self._width = plan.max_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of the active subnet for images ``(B, C, H, W)``."""
        _check_images(x, self.plan.in_channels, self.plan.resolution)
        tokens = self.patch_embed(x)
        cls: torch.Tensor = self.cls_token
        if self._width != self.plan.max_width:
            cls = cls.narrow(2, 0, self._width)
        cls = cls.expand(tokens.shape[0], -1, -1)
        h = self.positions(torch.cat([cls, tokens], dim=1))
        return self.head(self.norm(self.blocks(h))[:, 0])

    def _activate(self, arch: ArchConfig) -> None:
        shape = self.plan.shape(arch)
        self._width = shape.width
        self.patch_embed.active_width = shape.width
        self.patch_embed.active_patch = shape.patch_size
        self.positions.active_width = shape.width
        self.positions.active_grid = self.plan.resolution // shape.patch_size
        activate_stack(self.blocks, shape)
        self.norm.active_features = shape.width
        self.head.active_in_features = shape.width

    def _build_static(self, arch: ArchConfig) -> nn.Module:
        return ViTNet(
            PatchEmbed(self.patch_embed.export()),
            self.cls_token.detach()[:, :, : self._width].clone(),
            self.positions.export(),
            export_stack(self.blocks),
            self.norm.export(),
            self.head.export(),
        )

    @torch.no_grad()
    def reorganize_channels(self) -> None:
        """Sort every block's heads and MLP units by importance (OFA's re-organisation); the
        largest subnet's function is unchanged."""
        for block in blocks_of(self.blocks, active_only=False):
            block.reorganize_channels()
