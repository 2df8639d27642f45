"""Position information: learned absolute positions (elastic width) and rotary embeddings.

* :class:`ElasticLearnedPositions` — GPT-2's ``wpe`` / ViT's ``pos_embed``: a table of
  ``max_positions x max_width`` whose first ``T`` rows and ``d`` columns are added to a
  ``(batch, T, d)`` input. A ViT table (``grid``: class token + ``grid x grid`` patches)
  with an elastic patch size is resized to the active grid instead (bicubic, as timm's
  ``resample_abs_pos_embed``; :func:`resize_grid_positions`).
* :func:`rotary_cos_sin` and :func:`apply_rotary` — LLaMA's rotary embedding (Hugging Face's
  ``rotate_half`` convention). It acts per head, so with a fixed head size it has nothing to
  slice; elastic and static attention both call these functions.

Example:
    >>> pos = ElasticLearnedPositions(1024, 768)
    >>> pos(torch.randn(2, 16, 512)).shape            # adds positions 0..15, width 512
    torch.Size([2, 16, 512])
    >>> cos, sin = rotary_cos_sin(16, 64, base=10000.0)
    >>> q = apply_rotary(torch.randn(2, 4, 16, 64), cos, sin)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.elastic.conv import build_uninitialized
from nas.elastic.slicing import prefix
from nas.elastic.width import ActiveWidth
from nas.errors import ConfigError


def resize_grid_positions(table: torch.Tensor, grid: int, new_grid: int) -> torch.Tensor:
    """``table`` ``(prefix + grid**2, d)`` with its grid rows resized to ``new_grid x new_grid``
    (bicubic, antialiased); the ``prefix`` rows (class token) are kept."""
    if new_grid == grid:
        return table
    prefix = table.shape[0] - grid * grid
    rows = table[prefix:].T.reshape(1, table.shape[1], grid, grid)
    rows = F.interpolate(rows, size=(new_grid, new_grid), mode="bicubic", align_corners=False,
                         antialias=True)
    return torch.cat([table[:prefix], rows.reshape(table.shape[1], -1).T], dim=0)


class ElasticLearnedPositions(ActiveWidth, nn.Module):
    """A learned position table added to the input, sliced to its length and width.

    Args:
        max_positions: the longest sequence (ViT: patches + class token).
        max_width: width of the largest configuration.
        grid: ViT: the side of the patch grid the table holds (after one class-token row);
            ``None`` for a sequence table.

    Attributes:
        weight: ``(max_positions, max_width)``.
        active_width: width :meth:`export` keeps (``forward`` follows the input).
        active_grid: ViT: the patch grid of the active configuration.
    """

    def __init__(self, max_positions: int, max_width: int, *, grid: int | None = None) -> None:
        super().__init__()
        self.max_positions = max_positions
        self.max_width = max_width
        self.weight = nn.Parameter(torch.zeros(max_positions, max_width))
        self._active = max_width
        self.grid = grid
        self.active_grid = grid

    @property
    def active_positions(self) -> int:
        """Rows of the active table (ViT: class token + active grid; else ``max_positions``)."""
        if self.grid is None or self.active_grid is None:
            return self.max_positions
        return self.max_positions - self.grid**2 + self.active_grid**2

    def _table(self, t: int, d: int) -> torch.Tensor:
        if self.grid is None or self.active_grid is None:
            return prefix(self.weight, (t, d))  # first t positions, d features: one view
        weight = self.weight if d == self.max_width else self.weight.narrow(1, 0, d)
        weight = resize_grid_positions(weight, self.grid, self.active_grid)
        if t != weight.shape[0]:
            raise ConfigError(f"input of {t} positions; the active grid has "
                              f"{weight.shape[0]} (class token + {self.active_grid}**2)")
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, d = x.shape[-2], x.shape[-1]
        if t > self.max_positions or d > self.max_width:
            raise ConfigError(
                f"input of {t} positions x {d} features exceeds the table's "
                f"max_positions={self.max_positions} x max_width={self.max_width}"
            )
        return x + self._table(t, d)

    def export(self) -> nn.Embedding:
        """A plain ``nn.Embedding(positions, active_width)`` holding the (resized) table."""
        with torch.no_grad():
            table = self._table(self.active_positions, self._active)
            n = table.shape[0]
            static = build_uninitialized(
                lambda: nn.Embedding(n, self._active, dtype=self.weight.dtype),
                self.weight.device,
            )
            static.weight.copy_(table)
        return static

    def extra_repr(self) -> str:
        return f"{self.max_positions}, {self.max_width}, active_width={self._active}"


def rotary_cos_sin(
    seq_len: int,
    head_dim: int,
    *,
    base: float,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` of shape ``(seq_len, head_dim)`` for positions ``0..seq_len-1``.

    Frequencies ``base ** (-2i / head_dim)`` in float32, duplicated over the two halves of
    the head (Hugging Face LLaMA's convention).
    """
    if head_dim % 2:
        raise ConfigError(f"head_dim must be even for rotary embeddings, got {head_dim}")
    steps = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float()
    inv_freq = 1.0 / (base ** (steps / head_dim))
    positions = torch.arange(seq_len, device=device, dtype=torch.int64).float()
    freqs = positions[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` of shape ``(..., seq_len, head_dim)`` by the angles of ``cos``/``sin``."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
