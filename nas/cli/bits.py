"""``--bits`` and ``--granularity``: a quantized space (``nas.quantized``) from the command line.

Example:
    >>> space = space_with_bits(args, "onnxruntime")   # --space tiny --bits 32,8: tiny+q8-32b
    >>> # --space vit_mini --bits 4,8,32: vit_mini+q4-8-32b (weight-only MatMulNBits)
"""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli import UsageError
from nas.registry import resolve_space


def add_bits_options(p: argparse.ArgumentParser) -> None:
    """Add ``--bits`` and ``--granularity`` to a verb's parser."""
    p.add_argument("--bits", default=None, metavar="B,B",
                   help="quantize the space: per-layer precisions to offer, e.g. 32,8 (needs "
                   "--runtime onnxruntime; same as --space SPACE+q8-32b)")
    p.add_argument("--granularity", default=None, choices=["block", "stage", "layer"],
                   help="one precision per block (default), per stage (CNNs) or per linear "
                   "layer (transformers), with --bits")


def space_with_bits(args: argparse.Namespace, runtime: str) -> Any:
    """``--space``, quantized with ``--bits`` (``--granularity``) when given."""
    from nas.quantization import is_quantized, quantized

    space = resolve_space(args.space)
    if args.bits is None:
        if args.granularity:
            raise UsageError("--granularity needs --bits (the precisions to offer, e.g. 32,8)")
        return space
    try:
        bits = sorted({int(b) for b in args.bits.split(",")})
    except ValueError:
        raise UsageError(f"--bits must be integers separated by commas, e.g. 32,8; got "
                         f"{args.bits!r}") from None
    if runtime != "onnxruntime":
        raise UsageError(f"--bits needs --runtime onnxruntime, got {runtime!r} (torch eager "
                         "has no int8 kernels here)")
    if is_quantized(space):
        info = space.meta["quantization"]
        if bits != list(info["bits"]) or args.granularity not in (None, info["granularity"]):
            raise UsageError(
                f"space {space.name!r} is quantized already (bits {info['bits']}, "
                f"{info['granularity']}-wise); drop --bits, or give its base space "
                f"{info['base']!r}")
        return space
    return quantized(space, granularity=args.granularity or "block", bits=bits)
