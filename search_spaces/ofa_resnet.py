"""Once-for-All ResNet50-D, as published (``ofa_resnet50``).

Input stem of three 3x3 convolutions whose middle one (a residual block) may be skipped;
four stages of bottleneck blocks with depth base+{0,1,2} (bases 2, 2, 4, 2), expand ratio
{0.2, 0.25, 0.35} per block and width multiplier {0.65, 0.8, 1.0} per stage and stem.
Reference: github.com/mit-han-lab/once-for-all (MIT), ``OFAResNets``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.space import ArchConfig, InvalidArchError, SearchSpace, choice, stage
from search_spaces._ofa_format import check_keys, read_list, read_resolution

BASE_DEPTHS = (2, 2, 4, 2)
DEPTH_DELTAS = (0, 1, 2)
EXPANDS = (0.2, 0.25, 0.35)
WIDTHS = (0.65, 0.8, 1.0)
RESOLUTIONS = (128, 160, 192, 224)


class OFAResNetSpace(SearchSpace):
    """The OFA-ResNet50 space, with conversion from and to OFA's ``d/e/w`` dicts.

    OFA's ``d`` holds depth *increments* (0..2) with ``d[0]`` the stem (2 keeps the skippable
    block), ``w`` holds width-multiplier *indices* for the stem (2) and the stages (4); here
    stage depths are block counts and widths are the multipliers themselves.
    """

    def from_ofa(self, config: Mapping[str, Any]) -> ArchConfig:
        """Convert ``{"d": [5], "e": [18], "w": [6], "r"/"image_size": int | [int]}``."""
        if not isinstance(config, Mapping):
            raise InvalidArchError(f"an OFA config is a dict, got {type(config).__name__}")
        check_keys(config, ("d", "e", "w", "r", "image_size"))
        d = read_list(config, "d", len(BASE_DEPTHS) + 1)
        e = read_list(config, "e", sum(BASE_DEPTHS) + len(BASE_DEPTHS) * max(DEPTH_DELTAS))
        w = read_list(config, "w", len(BASE_DEPTHS) + 2)
        for i, v in enumerate(w):
            if v not in range(len(WIDTHS)):
                raise InvalidArchError(f"OFA config w[{i}]={v!r}: allowed indices 0, 1, 2")
        for i, v in enumerate(d):
            if v not in DEPTH_DELTAS:
                raise InvalidArchError(
                    f"OFA config d[{i}]={v!r}: allowed values {list(DEPTH_DELTAS)}"
                )
        values: dict[str, Any] = {
            "stem.depth": 3 if d[0] == max(DEPTH_DELTAS) else 2,
            "stem.mid_width": WIDTHS[w[0]],
            "stem.width": WIDTHS[w[1]],
        }
        block = 0
        for s, base in enumerate(BASE_DEPTHS):
            values[f"s{s + 1}.depth"] = base + d[s + 1]
            values[f"s{s + 1}.width"] = WIDTHS[w[s + 2]]
            for b in range(base + max(DEPTH_DELTAS)):
                values[f"s{s + 1}.b{b}.expand"] = e[block]
                block += 1
        values["resolution"] = read_resolution(config)
        return self.arch(values)

    def to_ofa(self, arch: ArchConfig) -> dict[str, Any]:
        """OFA's dict: ``{"d": [...], "e": [...], "w": [...], "r": int}``."""
        self.validate(arch)
        stages = range(1, len(BASE_DEPTHS) + 1)
        d = [max(DEPTH_DELTAS) if arch["stem.depth"] == 3 else 0]
        d += [int(arch[f"s{s}.depth"]) - BASE_DEPTHS[s - 1] for s in stages]
        e = [
            arch[f"s{s}.b{b}.expand"]
            for s in stages
            for b in range(BASE_DEPTHS[s - 1] + max(DEPTH_DELTAS))
        ]
        w = [WIDTHS.index(arch[n]) for n in ("stem.mid_width", "stem.width")]  # type: ignore[arg-type]
        w += [WIDTHS.index(arch[f"s{s}.width"]) for s in stages]  # type: ignore[arg-type]
        return {"d": d, "e": e, "w": w, "r": arch["resolution"]}


def make_space() -> OFAResNetSpace:
    """The OFA-ResNet50 space."""
    dims = [
        choice("stem.depth", (2, 3)),
        choice("stem.mid_width", WIDTHS),
        choice("stem.width", WIDTHS),
    ]
    for s, base in enumerate(BASE_DEPTHS, start=1):
        depths = [base + delta for delta in DEPTH_DELTAS]
        dims += stage(f"s{s}", depth=depths, block={"expand": EXPANDS})
        dims.append(choice(f"s{s}.width", WIDTHS))
    dims.append(choice("resolution", RESOLUTIONS))
    meta = {
        "family": "resnet",
        "stem_width": 64,
        "stage_widths": [256, 512, 1024, 2048],
        "strides": [1, 2, 2, 2],
        "downsample": "avgpool_conv",
    }
    return OFAResNetSpace("ofa_resnet50", dims, meta)


def make_supernet(space: SearchSpace, **kwargs: Any) -> Any:
    """The OFA-ResNet50 supernet (imports torch only when called)."""
    from search_spaces.resnet_net import OFAResNetSupernet

    return OFAResNetSupernet(space, **kwargs)


def layers(space: SearchSpace, arch: ArchConfig, num_classes: int = 1000) -> list[Any]:
    """The layers (``nas.layers.LayerSpec``) of ``arch``, for counting and lookup tables."""
    from search_spaces.resnet_layers import layer_specs

    return layer_specs(space, arch, num_classes)
