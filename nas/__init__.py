"""nas: neural architecture search with once-for-all supernets.

The public contract (see README): spaces and architectures, supernets, training and
evaluation, hardware profiles, search and export. Names that need torch or ray are imported
on first use, so ``import nas`` stays cheap for search workers.

Example:
    >>> import nas
    >>> space = nas.create_space("tiny")
    >>> arch = space.sample(np.random.default_rng(0))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nas.errors import (
    ConfigError,
    InvalidArchError,
    MissingFileError,
    NasError,
    ProfileError,
    RunDirError,
)
from nas.registry import (
    create_space,
    create_supernet,
    list_spaces,
    register_space,
    resolve_space,
)

# Imported eagerly: the subpackage ``nas.search`` would otherwise shadow the function
# ``nas.search`` once anything imports it. It needs neither torch nor ray.
from nas.search import SearchResult, search
from nas.space import ArchConfig, Choice, SearchSpace, choice, stage

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily)
_LAZY: dict[str, str] = {
    "Supernet": "nas.supernet",
    "count": "nas.counting",
    "export_subnet": "nas.export",
    "load_subnet": "nas.export",
    "train_supernet": "nas.train",
    "TrainConfig": "nas.train",
    "recalibrate_bn": "nas.evaluation",
    "evaluate": "nas.evaluation",
    "HardwareProfile": "nas.hardware",
    "load_profile": "nas.hardware",
    "list_profiles": "nas.hardware",
    "measure_latency": "nas.hardware",
    "search_devices": "nas.flow.search",
    "DevicePlan": "nas.devices",
    "MeasuredMetrics": "nas.devices",
    "DataSpec": "nas.tasks",
    "create_task": "nas.tasks",
    "quantized": "nas.quantization",
    "export_quantized": "nas.quantization.export",
}
# subpackages reachable as attributes (``nas.flow.train(...)``), imported on first use
_SUBMODULES = ("flow", "tasks", "predictor")

__all__ = [
    "ArchConfig",
    "Choice",
    "ConfigError",
    "InvalidArchError",
    "MissingFileError",
    "NasError",
    "ProfileError",
    "RunDirError",
    "SearchResult",
    "SearchSpace",
    "choice",
    "create_space",
    "create_supernet",
    "list_spaces",
    "register_space",
    "resolve_space",
    "search",
    "stage",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"nas.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from nas.counting import count as count
    from nas.export import export_subnet as export_subnet
    from nas.export import load_subnet as load_subnet
    from nas.quantization import quantized as quantized
    from nas.quantization.export import export_quantized as export_quantized
    from nas.supernet import Supernet as Supernet
