"""Load published Once-for-All MobileNetV3 weights into a :class:`MobileNetV3Supernet`.

The supernet is OFA's ``OFAMobileNetV3`` layer for layer, so a checkpoint of the reference
implementation (e.g. ``ofa_mbv3_d234_e346_k357_w1.0``, downloaded by the user; nothing is
downloaded here) maps onto it by renaming keys. Both the current key format
(``blocks.N.conv.…``) and the older one (``blocks.N.mobile_inverted_conv.…``) are read.

Example:
    >>> supernet = nas.create_supernet("ofa_mbv3_w1.0", num_classes=1000)
    >>> load_ofa_checkpoint(supernet, "ofa_mbv3_d234_e346_k357_w1.0")   # a local file
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from nas.errors import ConfigError
from search_spaces.mobilenet_v3_net import MobileNetV3Supernet

_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
# (OFA pattern, our name) for everything outside the elastic blocks and block 0
_FIXED = [
    (r"first_conv\.conv\.weight", "stem.conv.weight"),
    (rf"first_conv\.bn\.{_BN}", r"stem.bn.\1"),
    (r"blocks\.0\.conv\.depth_conv\.conv\.weight", "first_block.depthwise.conv.weight"),
    (rf"blocks\.0\.conv\.depth_conv\.bn\.{_BN}", r"first_block.depthwise.bn.\1"),
    (r"blocks\.0\.conv\.point_linear\.conv\.weight", "first_block.project.conv.weight"),
    (rf"blocks\.0\.conv\.point_linear\.bn\.{_BN}", r"first_block.project.bn.\1"),
    (r"final_expand_layer\.conv\.weight", "final_expand.conv.weight"),
    (rf"final_expand_layer\.bn\.{_BN}", r"final_expand.bn.\1"),
    (r"feature_mix_layer\.conv\.weight", "feature_mix.conv.weight"),
    (r"classifier\.linear\.(weight|bias)", r"classifier.\1"),
]
# (OFA pattern inside an elastic block, our name inside ElasticMBConv)
_BLOCK = [
    (r"inverted_bottleneck\.conv\.conv\.weight", "expand_conv.weight"),
    (rf"inverted_bottleneck\.bn\.bn\.{_BN}", r"expand_bn.\1"),
    (r"depth_conv\.conv\.conv\.weight", "depthwise_conv.weight"),
    (r"depth_conv\.conv\.(\d+to\d+_matrix)", r"depthwise_conv.\1"),
    (rf"depth_conv\.bn\.bn\.{_BN}", r"depthwise_bn.\1"),
    (r"depth_conv\.se\.fc\.(reduce|expand)\.(weight|bias)", r"se.\1.\2"),
    (r"point_linear\.conv\.conv\.weight", "project_conv.weight"),
    (rf"point_linear\.bn\.bn\.{_BN}", r"project_bn.\1"),
]


def ofa_key_map(supernet: MobileNetV3Supernet, keys: list[str]) -> dict[str, str]:
    """Map OFA checkpoint keys to this supernet's state-dict keys.

    Raises:
        ValueError: a key matches no known OFA layer (the one-line message names it).
    """
    starts = [
        (i, b) for i, st in enumerate(supernet.plan.stages) for b in range(st.max_depth)
    ]
    out = {}
    for key in keys:
        name = key.replace(".mobile_inverted_conv.", ".conv.")
        target = _match(_FIXED, name)
        block = re.fullmatch(r"blocks\.(\d+)\.conv\.(.+)", name)
        if target is None and block is not None and int(block.group(1)) >= 1:
            index = int(block.group(1)) - 1
            inner = _match(_BLOCK, block.group(2))
            if inner is not None and index < len(starts):
                stage_index, b = starts[index]
                target = f"stages.{stage_index}.{b}.{inner}"
        if target is None:
            raise ConfigError(
                f"OFA checkpoint key {key!r} matches no layer of {supernet.space.name}"
            )
        out[key] = target
    return out


def _match(rules: list[tuple[str, str]], name: str) -> str | None:
    for pattern, repl in rules:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, repl, name)
    return None


def load_ofa_state_dict(
    supernet: MobileNetV3Supernet, state_dict: Mapping[str, torch.Tensor]
) -> None:
    """Copy an OFA ``OFAMobileNetV3`` state dict into ``supernet`` (same width and space).

    Raises:
        ValueError: a key is unknown, a tensor's shape differs, or a supernet tensor is missing.
    """
    mapping = ofa_key_map(supernet, list(state_dict))
    own = supernet.state_dict()
    renamed = {}
    for key, target in mapping.items():
        value = state_dict[key]
        if target not in own or own[target].shape != value.shape:
            shape = tuple(own[target].shape) if target in own else None
            raise ConfigError(
                f"OFA checkpoint key {key!r} has shape {tuple(value.shape)}, but {target!r} "
                f"has {shape}: is it a checkpoint of {supernet.space.name}?"
            )
        renamed[target] = value
    missing = [k for k in own if k not in renamed]
    if missing:
        raise ConfigError(f"the OFA checkpoint lacks {len(missing)} tensors, e.g. {missing[:3]}")
    supernet.load_state_dict(renamed)


def load_ofa_checkpoint(supernet: MobileNetV3Supernet, path: str | Path) -> None:
    """Read a local OFA checkpoint file (``weights_only``) and load it into ``supernet``."""
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(data, Mapping) and "state_dict" in data:
        data = data["state_dict"]
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: not a state dict (got {type(data).__name__})")
    load_ofa_state_dict(supernet, data)
