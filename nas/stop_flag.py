"""Ctrl-C as a flag: a long loop checks it between steps and stops cleanly (saving first).

Example:
    >>> with StopFlag().installed() as stop:
    ...     for step in steps:
    ...         if stop.raised:
    ...             break
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class StopFlag:
    """Turns the first Ctrl-C into a flag checked between steps (a second one interrupts)."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.raised:
            raise KeyboardInterrupt
        self.raised = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        try:
            yield self
        finally:
            if self._installed:
                signal.signal(signal.SIGINT, self._previous)
