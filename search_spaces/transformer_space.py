"""Transformer search spaces from a model size and lists of choices (ViT, GPT, LLaMA).

A transformer space has the dimensions ``depth`` (the first k layers), ``embed_dim`` (the
residual width), and per layer ``l<i>.heads`` (query heads; head size fixed) and
``l<i>.mlp_ratio`` (MLP hidden units = ``round(ratio * embed_dim)``). Layer ``i``'s dimensions
exist only while ``depth >= i + 1``. With grouped-query attention (``kv_heads`` below
``heads``) the query heads come in groups of ``meta["heads_per_group"]`` sharing one key/value
head, so ``l<i>.heads`` takes multiples of it and a subnet has ``heads / heads_per_group``
key/value heads: the number of query groups is what shrinks. The family (``vit``, ``gpt``,
``llama``) fixes the rest — norm, MLP kind, biases, positions, causality — in ``space.meta``,
which :class:`TransformerPlan` reads.

Example (GPT-2 small's size with smaller choices, registered for the whole flow):
    >>> size = TransformerSize(layers=12, heads=12, embed_dim=768, mlp_ratio=4.0)
    >>> def make_space() -> SearchSpace:
    ...     return transformer_space("my_gpt", "gpt", size, depth=[8, 10, 12],
    ...                              heads=[8, 12], embed_dim=[512, 768], mlp_ratio=[2, 4],
    ...                              seq_len=256)
    >>> register_transformer("my_gpt", make_space, description="my GPT-2 space")
    >>> supernet = nas.create_supernet("my_gpt", num_classes=50257)   # vocabulary size
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError
from nas.shapes import mlp_hidden
from nas.space import ArchConfig, Choice, Condition, SearchSpace, choice

FAMILIES: dict[str, dict[str, Any]] = {
    "vit": {
        "norm": "layernorm", "norm_eps": 1e-6, "mlp": "gelu", "bias": True, "causal": False,
        "positions": "learned", "rope_base": None, "tie_embeddings": False,
        "resolution": 224, "patch_size": 16, "in_channels": 3,
    },
    "gpt": {
        "norm": "layernorm", "norm_eps": 1e-5, "mlp": "gelu_tanh", "bias": True, "causal": True,
        "positions": "learned", "rope_base": None, "tie_embeddings": True,
        "max_positions": 1024, "seq_len": 1024, "task": "language_modelling",
    },
    "llama": {
        "norm": "rmsnorm", "norm_eps": 1e-6, "mlp": "swiglu", "bias": False, "causal": True,
        "positions": "rotary", "rope_base": 10000.0, "tie_embeddings": False,
        "max_positions": 2048, "seq_len": 2048, "task": "language_modelling",
    },
}
ALLOWED = {"norm": ("layernorm", "rmsnorm"), "mlp": ("gelu", "gelu_tanh", "swiglu"),
           "positions": ("learned", "rotary")}


@dataclass(frozen=True, kw_only=True)
class TransformerSize:
    """The largest network of a space (a published model's size).

    Args:
        layers: number of blocks.
        heads: query heads per block.
        embed_dim: residual width.
        mlp_ratio: MLP hidden units over ``embed_dim`` (GPT-2: 4; LLaMA-7B: 11008/4096).
        head_dim: features per head (default ``embed_dim // heads``).
        kv_heads: key/value heads (query groups; default ``heads``: multi-head attention).
    """

    layers: int
    heads: int
    embed_dim: int
    mlp_ratio: float
    head_dim: int | None = None
    kv_heads: int | None = None

    def __post_init__(self) -> None:
        for name in ("layers", "heads", "embed_dim"):
            _positive(name, getattr(self, name))
        if self.head_dim is None and self.embed_dim % self.heads:
            raise ConfigError(
                f"head_dim: embed_dim={self.embed_dim} is not a multiple of heads={self.heads}; "
                "give head_dim"
            )
        kv = self.heads if self.kv_heads is None else self.kv_heads
        _positive("kv_heads", kv)
        if self.heads % kv:
            raise ConfigError(f"kv_heads={kv} must divide heads={self.heads}")

    @property
    def heads_per_group(self) -> int:
        """Query heads per key/value head."""
        return self.heads // (self.heads if self.kv_heads is None else self.kv_heads)


def transformer_space(
    name: str,
    family: str,
    size: TransformerSize,
    *,
    depth: Sequence[int] = (),
    heads: Sequence[int] = (),
    embed_dim: Sequence[int] = (),
    mlp_ratio: Sequence[float] = (),
    patch_sizes: Sequence[int] = (),
    **options: Any,
) -> SearchSpace:
    """A space whose largest network is ``size``, with the given smaller choices.

    Each choice list adds values to the size's own (which is always included); an empty list
    keeps that dimension fixed. ``patch_sizes`` (ViT) adds an elastic ``patch_size``
    dimension: sides at least the base ``patch_size`` that divide the resolution (FlexiViT's
    PI-resized projection; the base patch is the largest network). ``options`` override the
    family's defaults in ``meta``
    (:data:`FAMILIES`, e.g. ``seq_len``, ``max_positions``, ``resolution``, ``patch_size``,
    ``norm_eps``, ``rope_base``).

    Raises:
        ConfigError: unknown family or option, a choice above the size, heads not a multiple
            of ``heads_per_group``, or a bad option value.
    """
    if family not in FAMILIES:
        raise ConfigError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    meta = _meta(family, size, options)
    per = size.heads_per_group
    depths = _values("depth", depth, size.layers)
    widths = _values("embed_dim", embed_dim, size.embed_dim)
    head_values = _values("heads", heads, size.heads)
    bad = [h for h in head_values if h % per]
    if bad:
        raise ConfigError(f"heads {bad} are not multiples of heads_per_group={per}")
    ratios = _values("mlp_ratio", [float(r) for r in mlp_ratio], float(size.mlp_ratio))
    dims: list[Choice] = [choice("depth", depths), choice("embed_dim", widths)]
    if patch_sizes:
        dims.insert(0, choice("patch_size", _patch_values(meta, patch_sizes)))
    for i in range(size.layers):
        when = None if i + 1 <= depths[0] else Condition(dim="depth", at_least=i + 1)
        dims.append(choice(f"l{i}.heads", head_values, when=when))
        dims.append(choice(f"l{i}.mlp_ratio", ratios, when=when))
    return SearchSpace(name, dims, meta)


def _meta(family: str, size: TransformerSize, options: dict[str, Any]) -> dict[str, Any]:
    defaults = FAMILIES[family]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ConfigError(
            f"unknown options {unknown} for family {family!r}; allowed are {sorted(defaults)}"
        )
    meta: dict[str, Any] = {"family": family, **defaults, **options}
    for key, allowed in ALLOWED.items():
        if meta[key] not in allowed:
            raise ConfigError(f"{key} must be one of {list(allowed)}, got {meta[key]!r}")
    meta["head_dim"] = size.head_dim or size.embed_dim // size.heads
    meta["heads_per_group"] = size.heads_per_group
    if family == "vit" and meta["resolution"] % meta["patch_size"]:
        raise ConfigError(
            f"resolution={meta['resolution']} is not a multiple of patch_size={meta['patch_size']}"
        )
    if family != "vit" and meta["seq_len"] > meta["max_positions"]:
        raise ConfigError(
            f"seq_len={meta['seq_len']} exceeds max_positions={meta['max_positions']}"
        )
    return meta


def _patch_values(meta: dict[str, Any], given: Sequence[int]) -> list[int]:
    """Patch sides, largest patch (smallest network) first, the base patch last."""
    base, resolution = int(meta.get("patch_size", 0)), int(meta.get("resolution", 0))
    if meta["family"] != "vit":
        raise ConfigError(f"patch_sizes is for family 'vit', not {meta['family']!r}")
    values = sorted({*given, base}, reverse=True)
    bad = [p for p in values if not isinstance(p, int) or p < base or resolution % p]
    if bad:
        raise ConfigError(
            f"patch_sizes {bad} must be ints >= patch_size={base} that divide "
            f"resolution={resolution}"
        )
    return values


def _values(name: str, given: Sequence[Any], largest: Any) -> list[Any]:
    values = sorted({*given, largest})
    too_big = [v for v in values if v > largest]
    if too_big:
        raise ConfigError(f"{name} choices {too_big} exceed the model size's {largest}")
    if any(v <= 0 for v in values):
        raise ConfigError(f"{name} choices must be positive, got {values}")
    return values


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class LayerShape:
    """One active block: query heads, query groups (= key/value heads), MLP hidden units."""

    heads: int
    groups: int
    hidden: int


@dataclass(frozen=True)
class ArchShape:
    """The sizes of one architecture's network: width, blocks, tokens per sample and (ViT)
    patch side."""

    width: int
    layers: tuple[LayerShape, ...]
    tokens: int = 0
    patch_size: int = 0


@dataclass(frozen=True, kw_only=True)
class TransformerPlan:
    """The fixed skeleton of a transformer space (maxima and family options), from ``meta``."""

    family: str
    max_depth: int
    max_width: int
    max_groups: int
    max_hidden: int
    head_dim: int
    heads_per_group: int
    norm: str
    norm_eps: float
    mlp: str
    bias: bool
    causal: bool
    positions: str
    rope_base: float | None
    tie_embeddings: bool
    max_positions: int
    seq_len: int
    resolution: int
    patch_size: int
    in_channels: int
    extra_patch_sizes: tuple[int, ...] = ()

    @classmethod
    def of(cls, space: SearchSpace) -> TransformerPlan:
        """The plan of ``space``; raises ``ConfigError`` for a space of another family."""
        meta = space.meta
        if meta.get("family") not in FAMILIES:
            raise ConfigError(
                f"space {space.name!r} has family {meta.get('family')!r}; a transformer space "
                f"has one of {sorted(FAMILIES)}"
            )
        heads = [int(v) for c in space.choices if c.name.endswith(".heads") for v in c.values]
        ratios = [
            float(v) for c in space.choices if c.name.endswith(".mlp_ratio") for v in c.values
        ]
        width = int(max(space["embed_dim"].values))  # type: ignore[type-var]
        per = int(meta["heads_per_group"])
        vit = meta["family"] == "vit"
        patches = (int(meta["resolution"]) // int(meta["patch_size"])) ** 2 if vit else 0
        return cls(
            family=str(meta["family"]), max_depth=int(max(space["depth"].values)),  # type: ignore[type-var]
            max_width=width, max_groups=max(heads) // per,
            max_hidden=mlp_hidden(width, max(ratios)), head_dim=int(meta["head_dim"]),
            heads_per_group=per, norm=str(meta["norm"]), norm_eps=float(meta["norm_eps"]),
            mlp=str(meta["mlp"]), bias=bool(meta["bias"]), causal=bool(meta["causal"]),
            positions=str(meta["positions"]),
            rope_base=None if meta["rope_base"] is None else float(meta["rope_base"]),
            tie_embeddings=bool(meta["tie_embeddings"]),
            max_positions=patches + 1 if vit else int(meta["max_positions"]),
            seq_len=patches + 1 if vit else int(meta["seq_len"]),
            resolution=int(meta.get("resolution", 0)), patch_size=int(meta.get("patch_size", 0)),
            in_channels=int(meta.get("in_channels", 0)),
            extra_patch_sizes=tuple(
                int(v) for c in space.choices if c.name == "patch_size" for v in c.values
                if int(v) != int(meta.get("patch_size", 0))  # type: ignore[call-overload]
            ),
        )

    def shape(self, arch: ArchConfig) -> ArchShape:
        """Width and per-block sizes of ``arch``'s network (active blocks only)."""
        width = int(arch["embed_dim"])
        layers = tuple(
            LayerShape(
                heads=int(arch[f"l{i}.heads"]),
                groups=int(arch[f"l{i}.heads"]) // self.heads_per_group,
                hidden=mlp_hidden(width, float(arch[f"l{i}.mlp_ratio"])),
            )
            for i in range(int(arch["depth"]))
        )
        patch = int(arch["patch_size"]) if "patch_size" in arch else self.patch_size
        tokens = (self.resolution // patch) ** 2 + 1 if self.family == "vit" else self.seq_len
        return ArchShape(width, layers, tokens=tokens, patch_size=patch)

    @property
    def patch_sizes(self) -> tuple[int, ...]:
        """Every patch side of the space (ViT; the base ``patch_size`` first)."""
        return (self.patch_size, *self.extra_patch_sizes)
