"""Tasks by name: :func:`create_task`, :func:`register_task`, :func:`task_for_space`.

Example:
    >>> create_task("classification").metric        # 'accuracy'
    >>> task_for_space(nas.create_space("tiny")).name
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from nas.errors import ConfigError
from nas.space import SearchSpace
from nas.tasks.base import Task

DEFAULT_TASK = "classification"

# name -> "module:Class" (imported on first use, so torch-free code can list tasks)
_BUILTIN: dict[str, str] = {
    "classification": "nas.tasks.classification:ClassificationTask",
    "language_modelling": "nas.tasks.language_modelling:LanguageModellingTask",
}


class TaskRegistry:
    """Maps task names to factories; the default instance is :data:`TASKS`."""

    def __init__(self) -> None:
        self._factories: dict[str, Callable[[], Task]] = {}

    def register(self, name: str, factory: Callable[[], Task]) -> None:
        """Register (or replace) ``name``."""
        self._factories[name] = factory

    def names(self) -> list[str]:
        """Every task name, sorted."""
        return sorted({*_BUILTIN, *self._factories})

    def create(self, name: str) -> Task:
        """A new task ``name``."""
        if name in self._factories:
            return self._factories[name]()
        target = _BUILTIN.get(name)
        if target is None:
            raise ConfigError(f"unknown task {name!r}; registered tasks are {self.names()}")
        module, cls = target.split(":")
        task: Task = getattr(importlib.import_module(module), cls)()
        return task


TASKS = TaskRegistry()


def register_task(name: str, factory: Callable[[], Task]) -> None:
    """Make ``create_task(name)`` return ``factory()`` (plug-ins call this on import)."""
    TASKS.register(name, factory)


def create_task(name: str) -> Task:
    """The task registered as ``name``."""
    return TASKS.create(name)


def list_tasks() -> list[str]:
    """Registered task names."""
    return TASKS.names()


def task_for_space(space: SearchSpace) -> Task:
    """The task a space is for: its ``meta["task"]``, else image classification."""
    return create_task(str(space.meta.get("task", DEFAULT_TASK)))
