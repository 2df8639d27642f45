"""A stand-in for torchvision with only the names the ``ofa`` package imports.

The benchmark builds OFA's networks, never its data pipeline, so none of these run; any call
raises. It keeps torchvision (and its torch pin) out of bench/.ofa-env.
"""

from torchvision import datasets, transforms

__all__ = ["datasets", "transforms"]
__version__ = "0.0.0+stub"
