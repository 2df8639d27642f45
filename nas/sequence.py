"""The sequence length of language-model spaces: its default, its checks, layers at a length.

A language-model space says how many tokens a sequence has in ``meta["seq_len"]`` (its
layers, and so MACs and lookup-table keys, are described at that length), and, with learned
positions, at most how many it takes in ``meta["max_positions"]``. Counting and timing may
ask for another length: :func:`sequence_length` checks it (and gives the default), and
:func:`at_seq_len` rewrites layer descriptions to it (a sequence layer keeps its token count
in the ``tokens`` field of ``LayerSpec.extra``). Image spaces (CNNs, ViTs) have no sequence
length: their token count follows from the resolution.

Example:
    >>> sequence_length(nas.create_space("gpt_tiny"), None)
    128
    >>> specs = at_seq_len(layers(space, arch, 256), 64)   # the same layers on 64 tokens
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from nas.errors import ConfigError
from nas.layers import LayerSpec
from nas.space import SearchSpace


def is_sequence_space(space: SearchSpace) -> bool:
    """Whether ``space``'s networks read token sequences of a chosen length."""
    return "seq_len" in space.meta


def sequence_length(space: SearchSpace, seq_len: int | None) -> int | None:
    """The tokens per sequence to count or time ``space`` at: ``seq_len``, by default the
    space's ``meta["seq_len"]``; ``None`` for an image space (where ``seq_len`` must be
    ``None``).

    Raises:
        ConfigError: ``seq_len`` is not a positive int, exceeds ``meta["max_positions"]``, or
            is given for a space without a sequence length.
    """
    if not is_sequence_space(space):
        if seq_len is not None:
            raise ConfigError(
                f"space {space.name!r} has no sequence length (its input is images), got "
                f"seq_len={seq_len!r}; leave it out"
            )
        return None
    if seq_len is None:
        return int(space.meta["seq_len"])
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1:
        raise ConfigError(f"seq_len must be a positive int, got {seq_len!r}")
    limit = space.meta.get("max_positions")
    if space.meta.get("positions", "learned") == "learned" and limit and seq_len > int(limit):
        raise ConfigError(
            f"seq_len={seq_len} exceeds space {space.name!r}'s max_positions={limit}"
        )
    return seq_len


def at_seq_len(specs: Sequence[LayerSpec], seq_len: int | None) -> list[LayerSpec]:
    """``specs`` with every ``tokens`` field set to ``seq_len`` (unchanged when ``None``)."""
    if seq_len is None:
        return list(specs)
    return [_at_tokens(s, seq_len) for s in specs]


def _at_tokens(spec: LayerSpec, tokens: int) -> LayerSpec:
    if not any(name == "tokens" for name, _ in spec.extra):
        return spec
    extra = tuple((n, tokens if n == "tokens" else v) for n, v in spec.extra)
    return replace(spec, extra=extra)
