"""The scheduler of periodic jobs: each due time of a schedule becomes one ordinary job.

Every worker stores its app's schedules as it starts (``sync``); only the elected maintenance
leader fires them (worker/maintenance.py), waking at the next due time. Exactly once is the
store's rule (``Store.fire_schedule``: a compare-and-set of the next due time in the insert's
transaction), so two leaders overlapping for a moment still make one job per due time.

A due time the scheduler reaches more than ``schedule_grace`` seconds late passed while no
scheduler ran: the schedule's ``missed`` policy decides. "skip" drops it; "catch_up" runs once,
for the latest due time. Several due times passed at once always make one job (the latest),
never a burst. A paused schedule's due times pass without jobs, so a resume starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from datetime import UTC, datetime

from jobhandler.app import App
from jobhandler.model.errors import JobHandlerError
from jobhandler.model.records import ScheduleView
from jobhandler.model.schedules import Periodic
from jobhandler.model.tasks import JobOptions
from jobhandler.settings import Settings
from jobhandler.worker.leader import Elector

log = logging.getLogger("jobhandler.scheduler")

LOOK_EVERY = 1.0  # seconds: the longest wait between looks (pauses, a new schedule, a new leader)


class Scheduler:
    def __init__(self, app: App, settings: Settings) -> None:
        self.app = app
        self.grace = settings.schedule_grace
        self.declared = {p.name: p for p in app.periodics}

    async def sync(self) -> None:
        """Store the app's schedules: new ones start at their next due time after now."""
        now = self.app.clock()
        await self.app.service.store.sync_schedules(
            [_view(p, now) for p in self.declared.values()], now
        )

    async def run(self, elector: Elector, kick: asyncio.Event) -> None:
        """Sync, then fire due schedules while ``elector`` leads, until cancelled."""
        if not self.declared:
            return
        synced = False
        while True:
            wait = LOOK_EVERY
            try:
                if not synced:
                    await self.sync()
                    synced = True
                if elector.leading:
                    wait = min(wait, max(0.0, await self.run_once() - self.app.clock()))
            except JobHandlerError as exc:
                log.warning("periodic jobs: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(kick.wait(), wait)
            kick.clear()

    async def run_once(self) -> float:
        """Fire every declared schedule that is due; when the next one is due (inf: none)."""
        now = self.app.clock()
        upcoming, seen = math.inf, 0
        for stored in await self.app.service.store.list_schedules():
            schedule = self.declared.get(stored.name)
            if schedule is None:  # declared by another app sharing the store: not ours to run
                continue
            seen += 1
            due = stored.next_run_at
            if due <= now:
                due = await self._fire(schedule, stored, now)
            upcoming = min(upcoming, due)
        if seen < len(self.declared):  # the store lost some (a restored backup): store them
            await self.sync()
        return upcoming

    async def _fire(self, schedule: Periodic, stored: ScheduleView, now: float) -> float:
        """Make the job of the latest due time (or pass it by); the next due time."""
        store, timing = self.app.service.store, schedule.timing
        run_at = max(timing.latest_until(now), stored.next_run_at)
        next_run_at = timing.next_after(now)
        late = now - run_at
        fresh = stored.last_run_at is None or run_at > stored.last_run_at
        wanted = late <= self.grace or schedule.missed == "catch_up"
        if stored.paused or not fresh or not wanted:
            await store.advance_schedule(schedule.name, stored.next_run_at, next_run_at, now)
            if not stored.paused and fresh:
                log.info(
                    "periodic %s: skipped runs missed (the latest %.0f s ago)", schedule.name, late
                )
            return next_run_at
        task, events = self.app.tasks.get(schedule.task), self.app.events
        new = task.new_job(schedule.payload, now, JobOptions(run_at=run_at))
        with events.submitting([new]) as (new,):  # a submit as any other: traced, logged
            job = await store.fire_schedule(
                schedule.name, stored.next_run_at, new, next_run_at, now
            )
        if job is not None:
            events.submitted([job])
            log.info("periodic %s: job %s for %s", schedule.name, job.id, _when(run_at))
        return next_run_at


def _view(schedule: Periodic, now: float) -> ScheduleView:
    timing = schedule.timing
    return ScheduleView(
        name=schedule.name,
        task=schedule.task,
        cron=timing.cron,
        every=timing.every,
        timezone=timing.timezone,
        payload=schedule.payload,
        missed=schedule.missed,
        paused=False,  # not written: the pause state lives in the store
        next_run_at=timing.next_after(now),
    )


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
