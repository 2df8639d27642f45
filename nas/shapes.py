"""Channel and spatial-size arithmetic shared by blocks, layer specs and supernets (no torch).

Example:
    >>> make_divisible(16 * 1.2), se_channels(96), conv_output_size(56, kernel=5, stride=2)
    (24, 24, 28)
"""

from __future__ import annotations


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` as MobileNet/Once-for-All do.

    Rounds to the nearest multiple (halves up), never below ``min_value`` (default
    ``divisor``), and adds one ``divisor`` when rounding lost more than 10 %.

    Example:
        >>> make_divisible(16 * 1.2), make_divisible(112 * 1.2)
        (24, 136)
    """
    floor = divisor if min_value is None else min_value
    new = max(floor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def se_channels(channels: int, reduction: int = 4, divisor: int = 8) -> int:
    """Hidden channels of a squeeze-and-excite module over ``channels`` (as in OFA)."""
    return make_divisible(channels // reduction, divisor)


def conv_output_size(size: int, kernel: int, stride: int) -> int:
    """Spatial output size of a 'same'-padded (``kernel // 2``) convolution."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def mlp_hidden(width: int, ratio: float) -> int:
    """Hidden units of an MLP of ratio ``ratio`` over width ``width``: ``round(width*ratio)``."""
    return max(1, round(width * float(ratio)))
