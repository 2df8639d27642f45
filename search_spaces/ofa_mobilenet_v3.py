"""Once-for-All MobileNetV3 (widths 1.0 and 1.2), exactly as published.

Five elastic stages of up to four inverted-residual blocks; per block kernel {3, 5, 7} and
expand ratio {3, 4, 6}; per stage depth {2, 3, 4}; resolution 128..224 in steps of 4.
Reference: Cai et al., "Once-for-All", ICLR 2020 (github.com/mit-han-lab/once-for-all, MIT).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.space import ArchConfig, InvalidArchError, SearchSpace, choice, stage
from search_spaces import mobilenet_v3_quant  # noqa: F401  (registers quantization support)
from search_spaces._ofa_format import check_keys, read_list, read_resolution

N_STAGES = 4 + 1
MAX_DEPTH = 4
KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
RESOLUTIONS = tuple(range(128, 225, 4))


class OFAMobileNetV3Space(SearchSpace):
    """The OFA-MobileNetV3 space, with conversion from and to OFA's ``ks/e/d/r`` dicts."""

    def from_ofa(self, config: Mapping[str, Any]) -> ArchConfig:
        """Convert ``{"ks": [20], "e": [20], "d": [5], "r": int | [int]}`` (or ``image_size``).

        Example:
            >>> space.from_ofa({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 224})
        """
        if not isinstance(config, Mapping):
            raise InvalidArchError(f"an OFA config is a dict, got {type(config).__name__}")
        check_keys(config, ("ks", "e", "d", "r", "image_size", "wid"))
        n_blocks = N_STAGES * MAX_DEPTH
        ks = read_list(config, "ks", n_blocks, ints=True)
        e = read_list(config, "e", n_blocks, ints=True)
        d = read_list(config, "d", N_STAGES, ints=True)
        values: dict[str, Any] = {}
        for s in range(N_STAGES):
            values[f"s{s + 1}.depth"] = d[s]
            for b in range(MAX_DEPTH):
                values[f"s{s + 1}.b{b}.kernel"] = ks[s * MAX_DEPTH + b]
                values[f"s{s + 1}.b{b}.expand"] = e[s * MAX_DEPTH + b]
        values["resolution"] = read_resolution(config)
        return self.arch(values)

    def to_ofa(self, arch: ArchConfig) -> dict[str, Any]:
        """OFA's dict: ``{"ks": [...], "e": [...], "d": [...], "r": int}``."""
        self.validate(arch)
        stages = range(1, N_STAGES + 1)
        blocks = range(MAX_DEPTH)
        return {
            "ks": [arch[f"s{s}.b{b}.kernel"] for s in stages for b in blocks],
            "e": [arch[f"s{s}.b{b}.expand"] for s in stages for b in blocks],
            "d": [arch[f"s{s}.depth"] for s in stages],
            "r": arch["resolution"],
        }


def make_space(width_mult: float = 1.0) -> OFAMobileNetV3Space:
    """The OFA-MobileNetV3 space at ``width_mult`` (1.0 or 1.2)."""
    dims = []
    for s in range(1, N_STAGES + 1):
        dims += stage(f"s{s}", depth=DEPTHS, block={"kernel": KERNELS, "expand": EXPANDS})
    dims.append(choice("resolution", RESOLUTIONS))
    meta = {
        "family": "mobilenetv3",
        "width_mult": width_mult,
        "stem_width": 16,
        "first_block_width": 16,
        "stage_widths": [24, 40, 80, 112, 160],
        "strides": [2, 2, 2, 1, 2],
        "activations": ["relu", "relu", "h_swish", "h_swish", "h_swish"],
        "squeeze_excite": [False, True, False, True, True],
        "final_expand_width": 960,
        "last_channel": 1280,
    }
    return OFAMobileNetV3Space(f"ofa_mbv3_w{width_mult}", dims, meta)


def make_supernet(space: SearchSpace, **kwargs: Any) -> Any:
    """The MobileNetV3-family supernet of ``space`` (imports torch only when called)."""
    from search_spaces.mobilenet_v3_net import MobileNetV3Supernet

    return MobileNetV3Supernet(space, **kwargs)


def layers(space: SearchSpace, arch: ArchConfig, num_classes: int = 1000) -> list[Any]:
    """The layers (``nas.layers.LayerSpec``) of ``arch``, for counting and lookup tables."""
    from search_spaces.mobilenet_v3_net import layer_specs

    return layer_specs(space, arch, num_classes)
