"""Helpers for tests that build the ``tiny`` supernet."""

from __future__ import annotations

from typing import Any

import nas


def make_tiny(num_classes: int = 10) -> Any:
    """A freshly initialised ``tiny`` supernet (seed torch first for identical weights)."""
    return nas.create_supernet("tiny", num_classes=num_classes)
