"""Hardware profiles, latency measurement and lookup-table building.

``profile``: :class:`HardwareProfile` (JSON files with provenance and per-space latency
models), :func:`load_profile`, :func:`list_profiles`, :func:`save_profile`. ``measure``:
:func:`measure_latency`. ``build``: :func:`build_lookup_table` over a space's distinct layers.
``inputs``: what layers and subnets are timed on (images, features, token ids; a language
model at a sequence length, see :mod:`nas.sequence`). ``quantized``: a quantized space's
layers (one entry per layer and precision) and subnets timed in ONNX Runtime as
:func:`nas.export_quantized` deploys them.

Example:
    >>> import nas
    >>> profile = nas.load_profile("ofa_mbv3_2080ti_64")
    >>> stats = nas.measure_latency(model, (1, 3, 224, 224), repeats=20)
"""

from __future__ import annotations

from nas.hardware.build import (
    build_lookup_table,
    covering_archs,
    distinct_layers,
    measure_subnets,
)
from nas.hardware.measure import LatencyStats, measure_latency, measure_onnx
from nas.hardware.profile import (
    KINDS,
    RUNTIMES,
    HardwareProfile,
    LatencyModel,
    Provenance,
    list_profiles,
    load_profile,
    save_profile,
)

__all__ = [
    "KINDS",
    "RUNTIMES",
    "HardwareProfile",
    "LatencyModel",
    "LatencyStats",
    "Provenance",
    "build_lookup_table",
    "covering_archs",
    "distinct_layers",
    "list_profiles",
    "load_profile",
    "measure_latency",
    "measure_onnx",
    "measure_subnets",
    "save_profile",
]
