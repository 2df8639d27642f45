"""Text for language modelling without downloads: bytes as tokens, in fixed-length windows.

Sources: the embedded default ``"pydoc"`` (the English text of the standard library's
``pydoc_data.topics``, about 465 kB in every CPython), any UTF-8 ``.txt`` file, or a folder of
them (read in sorted order). The default tokenizer is byte-level (vocabulary 256, no
download); a Hugging Face tokenizer from a local folder can stand in (``tokenizer=``). A
:class:`TextData` is a set of windows of ``seq_len + 1`` tokens; ``batch(indices)`` returns
``(inputs, targets)``, the targets shifted by one, like :class:`nas.data.ImageData`'s batches.

Example:
    >>> data = load_text("pydoc", seq_len=64)
    >>> x, y = data.batch(np.arange(8))        # (8, 64) int64 token ids each
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.errors import ConfigError, MissingFileError

BYTE_VOCAB = 256
EMBEDDED_TEXT = ("pydoc",)


class TextData:
    """Non-overlapping windows of a token stream.

    Args:
        tokens: the stream of token ids.
        seq_len: tokens per example (each window holds one more: the last target).
        vocab_size: the tokenizer's vocabulary (the network's output width).
    """

    def __init__(self, tokens: torch.Tensor, seq_len: int, vocab_size: int = BYTE_VOCAB) -> None:
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ConfigError(f"seq_len must be a positive int, got {seq_len!r}")
        n = (len(tokens) - 1) // seq_len
        if n < 2:
            raise ConfigError(f"the text has {len(tokens)} tokens: too few for two windows of "
                              f"{seq_len + 1}")
        starts = torch.arange(n) * seq_len
        self.windows = tokens[starts[:, None] + torch.arange(seq_len + 1)].long()
        self.seq_len, self.num_classes = seq_len, vocab_size

    def __len__(self) -> int:
        return len(self.windows)

    def __repr__(self) -> str:
        return f"TextData({len(self)} windows of {self.seq_len} tokens, vocab {self.num_classes})"

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)``: ``(N, seq_len)`` token ids, the targets one token later."""
        w = self.windows[torch.as_tensor(np.asarray(indices), dtype=torch.long)]
        return w[:, :-1], w[:, 1:]


def read_text(spec: str | Path) -> str:
    """The text of ``"pydoc"`` (embedded), a UTF-8 file, or a folder of ``.txt`` files."""
    if str(spec) == "pydoc":
        from pydoc_data.topics import topics

        return "\n\n".join(topics[k] for k in sorted(topics))
    path = Path(spec)
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise MissingFileError(f"{path}: a folder with no .txt file")
        return "\n\n".join(_read(f) for f in files)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such text file or folder (or use 'pydoc')")
    return _read(path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc})") from None


def load_text(spec: str | Path, *, seq_len: int = 64, tokenizer: Any = None,
              limit: int | None = None) -> TextData:
    """Windows of ``seq_len`` tokens of ``spec`` (bytes, or ``tokenizer.encode`` ids);
    ``limit`` keeps the first windows."""
    text = read_text(spec)
    if tokenizer is None:
        tokens = torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8)
        data = TextData(tokens, seq_len)
    else:
        ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
        data = TextData(ids, seq_len, vocab_size=len(tokenizer))
    if limit is not None and limit < len(data):
        data.windows = data.windows[:limit]
    return data
