"""Placeholder classes and functions that raise when used."""

from __future__ import annotations

from typing import Any


class Unavailable:
    """Any torchvision class: subclassable, but constructing it raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"{type(self).__name__}: torchvision is a stub in bench/.ofa-env")

    @staticmethod
    def get_params(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("torchvision is a stub in bench/.ofa-env")


def unavailable(*args: Any, **kwargs: Any) -> Any:
    """Any torchvision function: raises."""
    raise RuntimeError("torchvision is a stub in bench/.ofa-env")
