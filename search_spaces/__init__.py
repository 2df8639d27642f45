"""The search spaces shipped with the platform; each module registers itself here."""

from __future__ import annotations

from nas.registry import register_space
from search_spaces import (
    gpt,  # noqa: F401  (registers gpt_tiny, gpt2_small)
    hf_plugin,  # noqa: F401  (registers the "hf" importer and export format)
    llama,  # noqa: F401  (registers llama_tiny)
    nas_bench_201,
    ofa_mobilenet_v3,
    ofa_resnet,
    tiny,
    vit,  # noqa: F401  (registers vit_mini, vit_ti16, vit_s16, vit_b16)
)

register_space(
    "ofa_mbv3_w1.0",
    lambda: ofa_mobilenet_v3.make_space(1.0),
    ofa_mobilenet_v3.make_supernet,
    layers=ofa_mobilenet_v3.layers,
    description="Once-for-All MobileNetV3, width 1.0 (2.2e19 networks x 25 resolutions)",
)
register_space(
    "ofa_mbv3_w1.2",
    lambda: ofa_mobilenet_v3.make_space(1.2),
    ofa_mobilenet_v3.make_supernet,
    layers=ofa_mobilenet_v3.layers,
    description="Once-for-All MobileNetV3, width 1.2",
)
register_space(
    "ofa_resnet50",
    ofa_resnet.make_space,
    ofa_resnet.make_supernet,
    layers=ofa_resnet.layers,
    description="Once-for-All ResNet50-D",
)
register_space(
    "nb201",
    nas_bench_201.make_space,
    nas_bench_201.make_supernet,
    layers=nas_bench_201.layers,
    description="NAS-Bench-201 cell space (15,625)",
)
register_space(
    "tiny",
    tiny.make_space,
    ofa_mobilenet_v3.make_supernet,
    layers=ofa_mobilenet_v3.layers,
    description="small MobileNetV3-style space for tests",
)
