"""Stub ``torchvision.datasets``."""

from torchvision._stub import Unavailable


class ImageFolder(Unavailable): ...


__all__ = ["ImageFolder"]
