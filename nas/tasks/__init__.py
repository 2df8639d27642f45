"""Tasks: what a supernet is trained and measured for (loss, distillation, metric, batches).

Example:
    >>> from nas.tasks import create_task, DataSpec
    >>> task = create_task("classification")
    >>> train, val = task.load(DataSpec(data="digits"))
"""

from __future__ import annotations

from nas.tasks.base import DataSpec, Direction, Task
from nas.tasks.registry import create_task, list_tasks, register_task, task_for_space

__all__ = [
    "DataSpec",
    "Direction",
    "Task",
    "create_task",
    "list_tasks",
    "register_task",
    "task_for_space",
]
