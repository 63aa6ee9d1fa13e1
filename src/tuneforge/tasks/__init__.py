"""The task registry: a name in the config (`task: multilabel`) -> the `Task` that knows that kind of learning.

Stages (train, evaluate, predict, serve, compress) ask the task; they never test
`if task == ...`. Adding a task is one `Task` subclass and one line here (or a
`register_task` call from a plugin or a test).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from tuneforge.errors import ConfigError

# name -> "module:Class", imported on first use so `import tuneforge` stays cheap
_BUILTIN = {
    "classify": "tuneforge.tasks.classify.task:ClassifyTask",
    "multilabel": "tuneforge.tasks.multilabel.task:MultiLabelTask",
    "entities": "tuneforge.tasks.entities.task:EntitiesTask",
    "recommend": "tuneforge.tasks.recommend.task:RecommendTask",
    "chat": "tuneforge.tasks.chat.task:ChatTask",
    "lm": "tuneforge.tasks.lm.task:LanguageModelTask",
}
_REGISTERED: dict[str, Callable[[], object]] = {}


def register_task(name: str, factory: Callable[[], object]) -> None:
    """Make `task: <name>` available; `factory()` returns the Task instance."""
    _REGISTERED[name] = factory


def task_names() -> list[str]:
    return sorted({*_BUILTIN, *_REGISTERED})


def get_task(name: str):
    """The Task for `name`; a ConfigError listing the known tasks otherwise."""
    if name in _REGISTERED:
        return _REGISTERED[name]()
    target = _BUILTIN.get(name)
    if target is None:
        raise ConfigError(f"invalid config:\n  task: unknown task {name!r}; known: {', '.join(task_names())}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)()


def resolve_task(config):
    """The config's task, after checking it supports the chosen training method."""
    task = get_task(config.task)
    method = task.method_of(config)
    if method not in task.methods:
        raise ConfigError(
            f"invalid config:\n  {task.method_setting}: task {task.name!r} supports {', '.join(task.methods)}; got {method!r}"
        )
    return task
