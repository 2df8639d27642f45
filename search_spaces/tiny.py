"""``tiny``: a MobileNetV3-style space small enough for tests (and the quick demo).

Two elastic stages of up to two inverted-residual blocks (kernel {3, 5}, expand {2, 4},
depth {1, 2}) at resolution {16, 24, 32}: 1,200 networks that build and run in milliseconds.
"""

from __future__ import annotations

from nas.space import SearchSpace, choice, stage


def make_space() -> SearchSpace:
    """The ``tiny`` space."""
    dims = [
        *stage("s1", depth=[1, 2], block={"kernel": [3, 5], "expand": [2, 4]}),
        *stage("s2", depth=[1, 2], block={"kernel": [3, 5], "expand": [2, 4]}),
        choice("resolution", [16, 24, 32]),
    ]
    meta = {
        "family": "mobilenetv3",
        "width_mult": 1.0,
        "stem_width": 8,
        "first_block_width": 8,
        "stage_widths": [16, 24],
        "strides": [2, 2],
        "activations": ["relu", "h_swish"],
        "squeeze_excite": [False, True],
        "final_expand_width": 48,
        "last_channel": 64,
    }
    return SearchSpace("tiny", dims, meta)
