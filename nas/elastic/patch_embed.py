"""Elastic patch embedding (ViT): non-overlapping patches projected to an elastic width.

A ``patch x patch`` convolution with stride ``patch`` whose output channels are a prefix of
the largest weight; the result is flattened to tokens ``(batch, patches, width)``.

The patch size can be elastic too (FlexiViT, Beyer et al. 2023): the weight is stored at the
base patch size ``P``; a subnet with patch ``p`` uses its *PI-resize*
``w_p = pinv(B^T) w_P``, where ``B`` is bilinear resizing of a ``P x P`` patch to ``p x p``.
For ``p >= P`` this keeps the projection of a resized patch equal to the base projection of
the original one. The resize matrices are fixed buffers, one per patch choice.

Example:
    >>> embed = ElasticPatchEmbed(3, 384, patch_size=16, patch_sizes=(16, 32))
    >>> embed.active_width, embed.active_patch = 192, 32
    >>> embed(torch.randn(2, 3, 224, 224)).shape     # 7 x 7 patches of 32 pixels
    torch.Size([2, 49, 192])
    >>> conv = embed.export()                          # nn.Conv2d(3, 192, 32, stride=32)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import build_uninitialized, check_width
from nas.elastic.width import ActiveWidth
from nas.errors import ConfigError


def pi_resize_matrix(base: int, patch: int) -> torch.Tensor:
    """``(base**2, patch**2)`` matrix ``M`` with ``w_patch = w_base @ M`` (flattened kernels):
    ``M = pinv(B^T)^T`` for ``B`` the bilinear resize of a ``base x base`` patch to
    ``patch x patch`` (FlexiViT's PI-resize; the identity when ``patch == base``)."""
    if patch == base:
        return torch.eye(base * base, dtype=torch.float64)
    basis = torch.eye(base * base, dtype=torch.float64).reshape(-1, 1, base, base)
    resized = F.interpolate(basis, size=(patch, patch), mode="bilinear", align_corners=False,
                            antialias=False)
    b = resized.reshape(base * base, patch * patch).T  # (patch**2, base**2): x -> resize(x)
    return torch.linalg.pinv(b.T).T


class ElasticPatchEmbed(ActiveWidth, nn.Module):
    """Patchify and project images to ``active_width`` features per patch.

    Args:
        in_channels: image channels.
        max_width: embedding width of the largest configuration.
        patch_size: base patch side (kernel and stride of the stored projection).
        patch_sizes: every patch side a subnet may use (default: the base only).

    Attributes:
        proj: the projection ``nn.Conv2d(in_channels, max_width, patch_size, patch_size)``.
        active_width: output features per patch.
        active_patch: patch side ``forward`` uses.
    """

    def __init__(
        self, in_channels: int, max_width: int, patch_size: int,
        patch_sizes: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.patch_size = check_width("patch_size", patch_size, patch_size)
        self.max_width = max_width
        self.proj = nn.Conv2d(in_channels, max_width, patch_size, stride=patch_size)
        self._active = max_width
        self.patch_sizes = tuple(sorted({patch_size, *patch_sizes}))
        for p in self.patch_sizes:
            check_width("patch_sizes", p, p)
            if p != patch_size:
                matrix = pi_resize_matrix(patch_size, p).to(self.proj.weight.dtype)
                self.register_buffer(f"_resize_{p}", matrix, persistent=False)
        self._patch = patch_size

    @property
    def active_patch(self) -> int:
        """Patch side of the active configuration."""
        return self._patch

    @active_patch.setter
    def active_patch(self, value: int) -> None:
        if value not in self.patch_sizes:
            raise ConfigError(f"active_patch must be one of {list(self.patch_sizes)}, got {value}")
        self._patch = value


    def _slices(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        w, b, d = self.proj.weight, self.proj.bias, self._active
        if d != self.max_width:
            w, b = w.narrow(0, 0, d), None if b is None else b.narrow(0, 0, d)
        p = self._patch
        if p != self.patch_size:
            matrix: torch.Tensor = getattr(self, f"_resize_{p}")
            w = (w.flatten(2) @ matrix).unflatten(2, (p, p))
        return w, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self._slices()
        return F.conv2d(x, weight, bias, stride=self._patch).flatten(2).transpose(1, 2)

    def export(self) -> nn.Conv2d:
        """The plain projection ``nn.Conv2d`` at the active width (flatten in the caller)."""
        p = self._patch
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
        return (f"patch_size={self.patch_size}, patch_sizes={list(self.patch_sizes)}, "
                f"active_patch={self._patch}, active_width={self._active}")
