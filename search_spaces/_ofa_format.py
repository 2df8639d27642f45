"""Field readers shared by the Once-for-All dict formats (MobileNetV3 and ResNet)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nas.space import InvalidArchError


def read_list(config: Mapping[str, Any], key: str, length: int, *, ints: bool = False) -> list[Any]:
    """``config[key]`` as a list of ``length`` values (ints only if ``ints``)."""
    value = config.get(key)
    if not isinstance(value, (list, tuple)) or len(value) != length:
        kind = "ints" if ints else "values"
        raise InvalidArchError(
            f"OFA config field {key!r} must be a list of {length} {kind}, got {value!r}"
        )
    if ints and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InvalidArchError(f"OFA config field {key!r} must hold ints, got {value!r}")
    return list(value)


def read_resolution(config: Mapping[str, Any]) -> int:
    """The resolution from ``r`` or ``image_size``, an int or a one-element list."""
    if not isinstance(config, Mapping):
        raise InvalidArchError(f"an OFA config is a dict, got {type(config).__name__}")
    key = "r" if "r" in config else "image_size" if "image_size" in config else None
    if key is None:
        raise InvalidArchError("OFA config needs a resolution: 'r' or 'image_size'")
    value = config[key]
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise InvalidArchError(f"OFA config field {key!r} must be one int, got {value!r}")
        value = value[0]
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArchError(f"OFA config field {key!r} must be an int, got {value!r}")
    return value


def check_keys(config: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Refuse keys of an OFA config that the conversion would not read (a typo, another
    space's config): silently dropping them would convert something else."""
    unknown = sorted(str(k) for k in config if k not in allowed)
    if unknown:
        raise InvalidArchError(f"OFA config has unknown key(s) {unknown}; allowed {list(allowed)}")
