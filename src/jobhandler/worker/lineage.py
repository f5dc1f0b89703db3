"""A workflow job's context as the worker fills it: its parents' results, read in one store
read before the run, and the spawner behind ``ctx.spawn``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from jobhandler.model.jobs import Job, NewJob
from jobhandler.model.workflows import ParentOutcome
from jobhandler.service.workflows import Workflows

T = TypeVar("T")
ParentReader = Callable[[Job], Awaitable[list[ParentOutcome]]]


class ServiceSpawner:
    """Stores a running job's children through the service, fenced by the run's attempt."""

    def __init__(
        self, workflows: Workflows, job: Job, run_sync: Callable[[Awaitable[str]], str]
    ) -> None:
        self._workflows = workflows
        self._job = job
        self._run_sync = run_sync  # the App's sync bridge: from a thread task, onto the loop

    async def spawn(self, new: NewJob, key: str | None) -> str:
        return (await self._workflows.spawn(self._job, new, key)).id

    def spawn_sync(self, new: NewJob, key: str | None) -> str:
        return self._run_sync(self.spawn(new, key))
