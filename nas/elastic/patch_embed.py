"""Elastic patch embedding (ViT): non-overlapping patches projected to an elastic width.

A ``patch x patch`` convolution with stride ``patch`` whose output channels are a prefix of
the largest weight; the result is flattened to tokens ``(batch, patches, width)``.

Example:
    >>> embed = ElasticPatchEmbed(3, 384, patch_size=16)
    >>> embed.active_width = 192
    >>> embed(torch.randn(2, 3, 224, 224)).shape
    torch.Size([2, 196, 192])
    >>> conv = embed.export()                          # nn.Conv2d(3, 192, 16, stride=16)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import build_uninitialized, check_width
from nas.elastic.width import ActiveWidth


class ElasticPatchEmbed(ActiveWidth, nn.Module):
    """Patchify and project images to ``active_width`` features per patch.

    Args:
        in_channels: image channels.
        max_width: embedding width of the largest configuration.
        patch_size: patch side (kernel and stride of the projection).

    Attributes:
        proj: the projection ``nn.Conv2d(in_channels, max_width, patch_size, patch_size)``.
        active_width: output features per patch.
    """

    def __init__(self, in_channels: int, max_width: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = check_width("patch_size", patch_size, patch_size)
        self.max_width = max_width
        self.proj = nn.Conv2d(in_channels, max_width, patch_size, stride=patch_size)
        self._active = max_width


    def _slices(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        w, b, d = self.proj.weight, self.proj.bias, self._active
        if d == self.max_width:
            return w, b
        return w.narrow(0, 0, d), None if b is None else b.narrow(0, 0, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self._slices()
        return F.conv2d(x, weight, bias, stride=self.patch_size).flatten(2).transpose(1, 2)

    def export(self) -> nn.Conv2d:
        """The plain projection ``nn.Conv2d`` at the active width (flatten in the caller)."""
        p = self.patch_size
        static = build_uninitialized(
            lambda: nn.Conv2d(
                self.proj.in_channels, self._active, p, stride=p,
                bias=self.proj.bias is not None, dtype=self.proj.weight.dtype,
            ),
            self.proj.weight.device,
        )
        weight, bias = self._slices()
        with torch.no_grad():
            static.weight.copy_(weight)
            if bias is not None and static.bias is not None:
                static.bias.copy_(bias)
        return static

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, active_width={self._active}"
