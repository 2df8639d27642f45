"""GPT-2-style decoder spaces (family ``gpt``): LayerNorm, GELU (tanh), learned positions,
output head tied to the token embedding. The vocabulary is the supernet's ``num_classes``.

* ``gpt_tiny`` — width {32, 48, 64}, depth {2, 3, 4}, heads {2, 3, 4} of 16, MLP ratio
  {2, 3, 4}, 256 positions; MACs counted per sequence of 128 tokens. For tests and CPUs.
* ``gpt2_small`` — GPT-2 small (12 x 768, 12 heads, 1024 positions; 124,439,808 parameters
  with its 50,257-token vocabulary) as the largest network, depth {8, 10, 12}, width
  {512, 640, 768}, heads {8, 10, 12}, MLP ratio {2, 3, 4}; MACs per 1024-token sequence.
"""

from __future__ import annotations

from nas.space import SearchSpace
from search_spaces.transformer_registry import register_transformer
from search_spaces.transformer_space import TransformerSize, transformer_space


def gpt_tiny() -> SearchSpace:
    """``gpt_tiny``: a 4-layer, 64-wide GPT for tests and CPUs."""
    size = TransformerSize(layers=4, heads=4, embed_dim=64, mlp_ratio=4.0, head_dim=16)
    return transformer_space(
        "gpt_tiny", "gpt", size, depth=[2, 3], heads=[2, 3], embed_dim=[32, 48],
        mlp_ratio=[2, 3], max_positions=256, seq_len=128,
    )


def gpt2_small() -> SearchSpace:
    """``gpt2_small``: up to GPT-2 small (124M with vocabulary 50257)."""
    size = TransformerSize(layers=12, heads=12, embed_dim=768, mlp_ratio=4.0)
    return transformer_space(
        "gpt2_small", "gpt", size, depth=[8, 10], heads=[8, 10], embed_dim=[512, 640],
        mlp_ratio=[2, 3], max_positions=1024, seq_len=1024,
    )


register_transformer("gpt_tiny", gpt_tiny, description="tiny GPT-2-style decoder for tests")
register_transformer("gpt2_small", gpt2_small, description="GPT decoders up to GPT-2 small (124M)")
