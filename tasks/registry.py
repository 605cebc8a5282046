"""Registry of task classes, keyed by the ``kind`` field of a task config."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from benchmark.schema import TaskSpec
from benchmark.tasks.base import Task

_TASKS: dict[str, type[Task]] = {}


def register_task(kind: str, schema: type[TaskSpec] = TaskSpec) -> Callable[[type[Task]], type[Task]]:
    """Class decorator registering a :class:`Task` subclass under ``kind``, with the dataclass its config is
    checked against when composed (``configs/task/<name>.yaml`` starts from ``/schema/task/<kind>@_here_``)."""

    def decorate(cls: type[Task]) -> type[Task]:
        if kind in _TASKS:
            raise ValueError(f"task kind {kind!r} registered twice")
        _TASKS[kind] = cls
        cls.config_schema = schema
        return cls

    return decorate


def task_kinds() -> list[str]:
    _import_builtin_tasks()
    return sorted(_TASKS)


def task_schemas() -> dict[str, type[TaskSpec]]:
    """Every task kind's config schema (benchmark.config_store stores them for Hydra)."""
    _import_builtin_tasks()
    return {kind: cls.config_schema for kind, cls in _TASKS.items()}


def build_task(task_cfg: Mapping[str, Any]) -> Task:
    """Instantiate the task a task config describes (``task_cfg['kind']`` picks the class)."""
    _import_builtin_tasks()
    kind = task_cfg.get("kind")
    if kind not in _TASKS:
        raise KeyError(f"unknown task kind {kind!r}; registered kinds: {', '.join(sorted(_TASKS))}")
    return _TASKS[kind](cfg=task_cfg)


def _import_builtin_tasks() -> None:
    """Import every module of the ``benchmark.tasks`` package (the ``tasks/`` folder): importing a task module registers its tasks."""
    import importlib
    import pkgutil

    import benchmark.tasks

    for module in pkgutil.iter_modules(benchmark.tasks.__path__):
        importlib.import_module(f"benchmark.tasks.{module.name}")
