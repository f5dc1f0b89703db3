"""Periodic jobs, the service side: list, pause and resume the stored schedules.

Declarations and due times are in model/schedules.py (``@app.periodic``); the store keeps the
schedules (store/schedules.py); the elected worker fires them (worker/schedules.py).
"""

from __future__ import annotations

from collections.abc import Callable

from jobhandler.model.records import ScheduleView
from jobhandler.store import Store


class Schedules:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store, self._clock = store, clock

    async def all(self) -> list[ScheduleView]:
        """The stored schedules, by name, with their next and last run."""
        return await self._store.list_schedules()

    async def pause(self, name: str) -> ScheduleView:
        """Let the schedule's due times pass without jobs until resumed; kept in the store.
        Raises ScheduleNotFound."""
        return await self._store.pause_schedule(name, True, self._clock())

    async def resume(self, name: str) -> ScheduleView:
        """Run the schedule again from its next due time (paused runs are not caught up)."""
        return await self._store.pause_schedule(name, False, self._clock())
