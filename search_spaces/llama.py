"""LLaMA-style decoder spaces (family ``llama``): RMSNorm, SwiGLU MLP, rotary embeddings,
grouped-query attention, untied output head. The vocabulary is the supernet's
``num_classes``.

* ``llama_tiny`` — width {32, 48, 64}, depth {2, 3, 4}, 2 or 4 query heads of 16 in groups of
  2 (1 or 2 key/value heads), SwiGLU ratio {1.5, 2, 2.75} (176 hidden units at the largest);
  MACs per sequence of 128 tokens. For tests and CPUs.
"""

from __future__ import annotations

from nas.space import SearchSpace
from search_spaces.transformer_registry import register_transformer
from search_spaces.transformer_space import TransformerSize, transformer_space


def llama_tiny() -> SearchSpace:
    """``llama_tiny``: a 4-layer, 64-wide LLaMA with grouped-query attention."""
    size = TransformerSize(
        layers=4, heads=4, embed_dim=64, mlp_ratio=2.75, head_dim=16, kv_heads=2
    )
    return transformer_space(
        "llama_tiny", "llama", size, depth=[2, 3], heads=[2], embed_dim=[32, 48],
        mlp_ratio=[1.5, 2.0], max_positions=256, seq_len=128,
    )


register_transformer("llama_tiny", llama_tiny, description="tiny LLaMA-style decoder (GQA)")
