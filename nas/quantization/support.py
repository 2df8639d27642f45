"""Which spaces can be quantized: per space family, the hooks that name its policy groups.

A plug-in registers a :class:`QuantSupport` for a space *family* (``space.meta["family"]``):
the bits its layers offer, its granularities and scheme (``"static"``: calibrated int8 QDQ
convolutions; ``"weight_only"``: ``MatMulNBits`` linear layers, :mod:`.weight_only`) and, per
architecture, how many weights each policy group holds (for ``size_bytes``). The supernet
lists the modules of each group (``Supernet.quant_groups``, or the support's ``groups``
function, see :class:`QuantLayer`).

Example:
    >>> register_quant_support("mobilenetv3", QuantSupport(bits=(8, 32), weights=fn))
    >>> register_quant_support("gpt", QuantSupport(bits=(4, 8, 32), weights=fn,
    ...     scheme="weight_only", granularities=("block", "layer"), groups=groups_fn))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace

FLOAT_BITS = 32
# (space, arch) -> {block group ("s1.b0"): number of weights quantized with it}
WeightsFunction = Callable[[SearchSpace, ArchConfig], dict[str, int]]
# (space, arch) -> {layer ("l0.qkv"): (K inputs, N outputs)} of the weight-only linear layers
ShapesFunction = Callable[[SearchSpace, ArchConfig], dict[str, tuple[int, int]]]
SCHEMES = ("static", "weight_only")


@dataclass(frozen=True, kw_only=True)
class QuantSupport:
    """What a space family offers.

    Args:
        bits: the allowed bits (32 = float).
        weights: per-group weight counts of an architecture.
        scheme: ``"static"`` (calibrated QDQ int8) or ``"weight_only"`` (``MatMulNBits``).
        granularities: the policy granularities offered (``"block"``, ``"stage"``,
            ``"layer"``).
        layer_names: the linear layers of one block, for ``granularity="layer"``.
        shapes: per-layer ``(K, N)`` of the quantizable linears (weight-only sizes).
        groups: ``(supernet, arch) -> {group: [QuantLayer]}`` for supernets without a
            ``quant_groups`` method.
    """

    bits: tuple[int, ...]
    weights: WeightsFunction
    scheme: str = "static"
    granularities: tuple[str, ...] = ("block", "stage")
    layer_names: tuple[str, ...] = ()
    shapes: ShapesFunction | None = None
    groups: Callable[[Any, ArchConfig], dict[str, list[QuantLayer]]] | None = None

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ConfigError(f"scheme must be one of {list(SCHEMES)}, got {self.scheme!r}")


@dataclass(frozen=True, kw_only=True)
class QuantLayer:
    """One quantizable convolution of a supernet's active subnet.

    Args:
        name: e.g. ``"s1.b0.expand"`` (a weight-only linear: ``"l0.qkv"``).
        conv: the elastic conv or dense layer (its ``active_weight`` is fake-quantized).
        input_at: the module whose first input is the conv's input tensor (quantized there,
            so every consumer of that tensor sees it quantized, as in a QDQ graph); ``None``
            for weight-only layers.
        output_at: the module whose output is the conv's output once BN is folded (the BN);
            ``None`` for weight-only layers.
        weight_name: the conv weight's name in the extracted subnet (and the exported ONNX
            initializer), e.g. ``"blocks.3.expand.conv.weight"``.
    """

    name: str
    conv: Any  # torch modules; this module imports no torch (plug-ins import it at load)
    input_at: Any
    output_at: Any
    weight_name: str


_SUPPORT: dict[str, QuantSupport] = {}


def register_quant_support(family: str, support: QuantSupport) -> None:
    """Declare that spaces of ``family`` can be quantized (a plug-in calls this on import)."""
    _SUPPORT[family] = support


def quant_support(space: SearchSpace) -> QuantSupport:
    """The support of ``space``'s family; :class:`ConfigError` if its layers cannot be
    quantized."""
    from nas.registry import REGISTRY

    REGISTRY.names()  # imports the plug-ins, which register their support
    family = space.meta.get("family")
    support = _SUPPORT.get(str(family))
    if support is None:
        raise ConfigError(
            f"space {space.name!r} (family {family!r}) has no quantizable layers; "
            f"quantization policies are offered for families {sorted(_SUPPORT)}"
        )
    return support


def quant_layers(supernet: Any, arch: ArchConfig) -> dict[str, list[QuantLayer]]:
    """``supernet.quant_groups(arch)``: block group -> its layers; :class:`ConfigError` if the
    supernet has no quant groups."""
    groups = getattr(supernet, "quant_groups", None)
    if not callable(groups):
        support = _SUPPORT.get(str(supernet.space.meta.get("family")))
        groups = None if support is None or support.groups is None else (
            lambda a: support.groups(supernet, a))  # type: ignore[misc]
    if not callable(groups):
        raise ConfigError(
            f"supernet {type(supernet).__name__} of space {supernet.space.name!r} has no "
            "quant_groups: its layers cannot be quantized"
        )
    return groups(arch)  # type: ignore[no-any-return]
