"""Django's tasks framework: built in from Django 6 (``django.tasks``), else the backport
(``django-tasks``). Names that moved between their versions are settled here once."""

from __future__ import annotations

import importlib
from dataclasses import fields
from typing import Any

try:  # Django 6 and later
    importlib.import_module("django.tasks.base")
    PACKAGE = "django.tasks"
except ImportError:  # the django-tasks backport, on Django 4.2 to 5.2
    PACKAGE = "django_tasks"

_base = importlib.import_module(f"{PACKAGE}.base")
_exceptions = importlib.import_module(f"{PACKAGE}.exceptions")

BaseTaskBackend: Any = importlib.import_module(f"{PACKAGE}.backends.base").BaseTaskBackend
TaskContext: Any = _base.TaskContext
TaskError: Any = _base.TaskError
TaskResult: Any = _base.TaskResult
TaskResultStatus: Any = _base.TaskResultStatus
InvalidTask: Any = getattr(_exceptions, "InvalidTask", None) or _exceptions.InvalidTaskError
TaskResultDoesNotExist: Any = _exceptions.TaskResultDoesNotExist

# SUCCESSFUL in Django 6.0 and the backport until 0.12; SUCCEEDED after.
SUCCEEDED: Any = getattr(TaskResultStatus, "SUCCEEDED", None) or TaskResultStatus.SUCCESSFUL
_RESULT_FIELDS = {f.name for f in fields(TaskResult) if f.init}


def task_result(**values: Any) -> Any:
    """A TaskResult of whichever version is installed (later ones add ``metadata``)."""
    if "metadata" in _RESULT_FIELDS:
        values.setdefault("metadata", {})
    return TaskResult(**{k: v for k, v in values.items() if k in _RESULT_FIELDS})


__all__ = [
    "SUCCEEDED",
    "BaseTaskBackend",
    "InvalidTask",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "task_result",
]
