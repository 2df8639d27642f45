"""The weight-shared supernet: one network whose active subnet is chosen by an ArchConfig.

Concrete supernets (``search_spaces/``) subclass :class:`Supernet` and implement
:meth:`Supernet._activate` (push the arch's choices into the elastic layers) and
:meth:`Supernet._build_static` (a plain ``nn.Module`` with the active weights copied).

Example:
    >>> supernet = nas.create_supernet("tiny", num_classes=10)
    >>> arch = supernet.sample_active(np.random.default_rng(0))
    >>> y = supernet(torch.randn(2, 3, arch["resolution"], arch["resolution"]))
    >>> model = supernet.extract(arch)      # same function, no nas.elastic inside
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.errors import ConfigError
from nas.space import ArchConfig, SearchSpace


class Supernet(nn.Module, ABC):
    """Base class of weight-shared supernets.

    Args:
        space: the search space whose architectures this network realises.
        num_classes: size of the classifier output.
        **options: size options of the skeleton that are not part of the search space (e.g.
            NAS-Bench-201's ``channels``); recorded so exports can rebuild the same network.
    """

    def __init__(self, space: SearchSpace, num_classes: int, **options: Any) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes must be a positive int, got {num_classes!r}")
        self.space = space
        self.num_classes = num_classes
        self.options: dict[str, Any] = dict(options)
        self._active: ArchConfig | None = None

    def input_resolution(self, arch: ArchConfig) -> int | None:
        """The input size of ``arch``: its ``resolution`` dimension, else the ``resolution``
        option or the space's ``meta["resolution"]`` (``None`` when none says)."""
        if "resolution" in self.space.names:
            return int(arch["resolution"])
        value = self.options.get("resolution", self.space.meta.get("resolution"))
        return None if value is None else int(value)

    def example_input(self, arch: ArchConfig, batch: int = 2) -> torch.Tensor:
        """A seeded random input of ``arch`` (exports trace with it): images of the arch's
        resolution here; token-id networks override it."""
        from nas.errors import ConfigError

        resolution = self.input_resolution(arch)
        if not isinstance(resolution, int):
            raise ConfigError(f"space {self.space.name!r} has no 'resolution' dimension or "
                              "meta; pass example_input")
        generator = torch.Generator().manual_seed(0)
        return torch.randn(batch, 3, resolution, resolution, generator=generator)

    def build_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``nas.create_supernet`` that rebuild this network."""
        return {"num_classes": self.num_classes, **self.options}

    @property
    def active(self) -> ArchConfig:
        """The active architecture (the largest until :meth:`set_active` is called)."""
        if self._active is None:
            self.set_active(self.space.largest())
        assert self._active is not None
        return self._active

    def set_active(self, arch: ArchConfig) -> None:
        """Make ``arch`` the subnet that ``forward`` computes.

        Raises:
            InvalidArchError: ``arch`` is not an architecture of this supernet's space.
        """
        self.space.validate(arch)
        self._activate(arch)
        self._active = arch

    def sample_active(self, rng: np.random.Generator) -> ArchConfig:
        """Activate a uniformly random architecture and return it."""
        arch = self.space.sample(rng)
        self.set_active(arch)
        return arch

    def extract(self, arch: ArchConfig | None = None) -> nn.Module:
        """A standalone ``nn.Module`` computing ``arch`` (default: the active one).

        Weights (and BN statistics) are copied, so training the result leaves the supernet
        untouched. The result is in the supernet's train/eval mode and on its device.
        """
        target = self.active if arch is None else arch
        self.space.validate(target)
        previous = self._active
        self._activate(target)
        try:
            model = self._build_static(target)
        finally:
            if previous is not None:
                self._activate(previous)
        model.train(self.training)
        return model

    @abstractmethod
    def _activate(self, arch: ArchConfig) -> None:
        """Configure the elastic layers for ``arch`` (already validated)."""

    @abstractmethod
    def _build_static(self, arch: ArchConfig) -> nn.Module:
        """A static copy of the active subnet (``arch`` is active when this is called)."""
