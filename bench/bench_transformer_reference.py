"""Reference models for the transformer parity checks, built in a process of their own.

timm imports torchvision, which does not import beside this torch; this script installs a
stand-in ``torchvision`` (an import hook: modules whose every name is a placeholder class, and
a real ``InterpolationMode`` enum) before importing timm, builds the model from its config
with random weights (``pretrained=False``: nothing is downloaded), and saves its state dict,
an input, its output and its parameter count with ``torch.save`` for the caller (the parity
tests and ``bench_transformer_parity.py``) to compare against. Only this process sees the stub.

Usage:
    python bench/bench_transformer_reference.py timm deit_tiny_patch16_224 OUT.pt [--seed 0]
"""

from __future__ import annotations

import argparse
import enum
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any


class InterpolationMode(enum.Enum):
    """torchvision's interpolation names (timm builds lookup tables of them at import)."""

    NEAREST = 0
    NEAREST_EXACT = 1
    BILINEAR = 2
    BICUBIC = 3
    BOX = 4
    HAMMING = 5
    LANCZOS = 6


class _Meta(type):
    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return cls


class _Placeholder(metaclass=_Meta):
    """Any torchvision class: importable and subclassable; constructing it raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("torchvision is a stub in this process")


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return InterpolationMode if name == "InterpolationMode" else _Placeholder


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torchvision`` and its (lower-case) submodules as stub modules."""

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        last = fullname.rpartition(".")[2]
        if (fullname == "torchvision" or fullname.startswith("torchvision.")) and last.islower():
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__version__"] = "0.0.0+stub"


def install_torchvision_stub() -> None:
    """Make ``import torchvision`` (and its submodules) load the stub in this process."""
    if "torchvision" in sys.modules:
        raise RuntimeError("torchvision is already imported; install the stub first")
    sys.meta_path.insert(0, _StubFinder())


def build_timm(name: str, seed: int) -> dict[str, Any]:
    """timm model ``name`` with seeded random weights, an input, its output and its size."""
    install_torchvision_stub()
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False).eval()
    config: Any = model.default_cfg
    size = config.get("input_size", (3, 224, 224))
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        y = model(x)
    return {
        "state_dict": model.state_dict(), "input": x, "output": y,
        "params": sum(p.numel() for p in model.parameters()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", choices=["timm"])
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    torch.save(build_timm(args.model, args.seed), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
