"""The App's side of periodic jobs (a base of App): declare with ``@app.periodic``, then list,
pause and resume the stored schedules. Declarations and due times are in periodic.py; the
store keeps the schedules (store/schedules.py); the elected worker runs them
(worker/scheduler.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from jobhandler.model.records import ScheduleView
from jobhandler.model.schedules import Missed, PeriodicDecorator, ScheduleRegistry, Timing
from jobhandler.model.schedules import periodic_decorator as _decorator
from jobhandler.model.tasks import Task
from jobhandler.store import Store


class ScheduleOwner(Protocol):
    """What these methods need of their App (no import of App: it derives from them)."""

    periodics: ScheduleRegistry
    clock: Callable[[], float]

    @property
    def store(self) -> Store: ...

    def task(self, fn: Callable[..., Any]) -> Task[Any, Any]: ...


class ScheduleMethods:
    """The App's periodic-job methods; the App sets ``periodics`` (a ScheduleRegistry)."""

    def periodic(
        self: ScheduleOwner,
        *,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
        name: str | None = None,
        payload: Any = None,
        missed: Missed = "skip",
    ) -> PeriodicDecorator:
        """Run a task on a schedule: ``cron`` (five fields, in ``timezone``) or ``every`` N
        seconds, with a fixed ``payload`` (checked now against the task's payload type).

        Put it on ``@app.task`` (or on a plain function, registered as a task). ``name``: the
        schedule's, the task's by default. ``missed``: due times that passed while nothing ran
        are dropped ("skip") or run once ("catch_up"). Raises ValueError or InvalidPayload.
        """
        timing = Timing(cron, every, timezone)
        return _decorator(self.task, self.periodics, timing, name, payload, missed)

    async def schedules(self: ScheduleOwner) -> list[ScheduleView]:
        """The stored schedules, by name, with their next and last run."""
        return await self.store.list_schedules()

    async def pause_schedule(self: ScheduleOwner, name: str) -> ScheduleView:
        """Let the schedule's due times pass without jobs until resumed; kept in the store.
        Raises periodic.ScheduleNotFound."""
        return await self.store.pause_schedule(name, True, self.clock())

    async def resume_schedule(self: ScheduleOwner, name: str) -> ScheduleView:
        """Run the schedule again from its next due time (paused runs are not caught up)."""
        return await self.store.pause_schedule(name, False, self.clock())
