"""The project's tasks: plain Django ``@task`` functions, nothing of Job Handler in sight."""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from django.tasks import task  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:
    from django_tasks import task  # type: ignore[assignment, unused-ignore]


class ReportError(Exception):
    pass


@task
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name="reports", priority=10)
async def report(name: str, *, rows: int) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"name": name, "rows": rows, "columns": ["z", "a"]}


@task(takes_context=True)
def attempt_number(context: Any) -> int:  # Django's TaskContext
    return int(context.attempt)


@task
def broken(message: str) -> None:
    raise ReportError(message)


@task(takes_context=True)
def flaky(context: Any) -> int:
    """Fails its first attempt: retried (TASK_OPTIONS gives it two)."""
    if int(context.attempt) < 2:
        raise RuntimeError("not yet")
    return int(context.attempt)
