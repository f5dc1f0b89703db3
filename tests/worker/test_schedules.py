"""The scheduler on both stores, with the clock in the test's hands: due runs become jobs,
a restart across due times follows each missed-run policy, a pause holds, and racing
schedulers make one job per due time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest

from jobhandler import App, JobStatus
from jobhandler.model.records import JobFilter
from jobhandler.model.schedules import Missed
from jobhandler.settings import Settings
from jobhandler.worker.schedules import Scheduler

T0 = 1_900_000_020.0  # a multiple of 60: every=60 is due on it
GRACE = 5.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def periodic_app(clock: Clock, missed: Missed = "skip") -> App:
    """A fresh App, as a restarted process would declare it."""
    app = App(clock=clock)

    @app.periodic(every=60, payload={"n": 7}, missed=missed)
    @app.task
    def tick(payload: dict[str, int]) -> int:
        return payload["n"]

    return app


Start = Callable[[App], Awaitable[Scheduler]]


@pytest.fixture
async def start(database_url: str) -> AsyncIterator[Start]:
    """Connect an app to the test's store and give it a synced scheduler."""
    async with AsyncExitStack() as stack:

        async def started(app: App) -> Scheduler:
            settings = Settings(database_url=database_url, schedule_grace=GRACE)
            await stack.enter_async_context(app.connected(settings))
            scheduler = Scheduler(app, settings)
            await scheduler.sync()
            return scheduler

        yield started


async def run_ats(app: App) -> list[float]:
    page = await app.service.jobs.page(JobFilter(task="tick"))
    return sorted(job.run_at for job in page.jobs)


async def test_each_due_time_makes_one_ordinary_job(start: Start) -> None:
    clock = Clock(T0 - 30)
    app = periodic_app(clock)
    scheduler: Scheduler = await start(app)
    (stored,) = await app.service.schedules.all()
    assert (stored.next_run_at, stored.last_run_at, stored.paused) == (T0, None, False)
    assert await scheduler.run_once() == T0  # nothing due yet: when to look again
    assert await run_ats(app) == []
    clock.now = T0 + 0.01
    assert await scheduler.run_once() == T0 + 60
    assert await scheduler.run_once() == T0 + 60  # asked again: no second job
    assert await run_ats(app) == [T0]
    (stored,) = await app.service.schedules.all()
    assert (stored.next_run_at, stored.last_run_at) == (T0 + 60, T0)
    job = await app.service.jobs.get(stored.last_job_id or "")
    assert job.status is JobStatus.QUEUED and job.payload == {"n": 7} and job.task == "tick"


@pytest.mark.parametrize(("missed", "expected"), [("skip", []), ("catch_up", [T0 + 180])])
async def test_a_restart_across_due_times_follows_the_missed_policy(
    start: Start, missed: Missed, expected: list[float]
) -> None:
    clock = Clock(T0 - 30)
    first = periodic_app(clock, missed)
    scheduler: Scheduler = await start(first)
    clock.now = T0
    await scheduler.run_once()
    assert await run_ats(first) == [T0]
    # Nothing runs from T0 + 1 to T0 + 200: due times T0+60, +120, +180 pass unseen.
    clock.now = T0 + 200
    restarted = periodic_app(clock, missed)
    scheduler = await start(restarted)
    (stored,) = await restarted.service.schedules.all()
    assert stored.next_run_at == T0 + 60  # the restart kept it: the runs were missed
    assert await scheduler.run_once() == T0 + 240
    # skip: none of the missed runs; catch_up: one run, for the latest of them.
    assert await run_ats(restarted) == [T0, *expected]
    clock.now = T0 + 240
    await scheduler.run_once()
    assert await run_ats(restarted) == [T0, *expected, T0 + 240]


async def test_a_late_scheduler_within_the_grace_still_runs_once(
    start: Start,
) -> None:
    clock = Clock(T0 - 30)
    app = periodic_app(clock, "skip")
    scheduler: Scheduler = await start(app)
    clock.now = T0 + 60 + GRACE - 1  # two due times passed, the latest within the grace
    await scheduler.run_once()
    assert await run_ats(app) == [T0 + 60]


async def test_a_paused_schedule_makes_no_jobs_and_resumes_afresh(
    start: Start,
) -> None:
    clock = Clock(T0 - 30)
    app = periodic_app(clock, "catch_up")
    scheduler: Scheduler = await start(app)
    assert (await app.service.schedules.pause("tick")).paused
    for step in range(3):
        clock.now = T0 + 60 * step
        await scheduler.run_once()
    assert await run_ats(app) == []
    # The pause lives in the store: a restart keeps it.
    restarted: Scheduler = await start(periodic_app(clock, "catch_up"))
    (stored,) = await app.service.schedules.all()
    assert stored.paused and stored.next_run_at == T0 + 180
    resumed = await app.service.schedules.resume("tick")
    assert not resumed.paused
    clock.now = T0 + 180
    await restarted.run_once()
    assert await run_ats(app) == [T0 + 180]  # no catch-up of the paused runs


async def test_racing_schedulers_make_one_job_per_due_time(
    start: Start,
) -> None:
    clock = Clock(T0 - 30)
    apps = [periodic_app(clock) for _ in range(3)]
    schedulers: list[Scheduler] = [await start(a) for a in apps]
    for step in range(4):
        clock.now = T0 + 60 * step
        await asyncio.gather(*(s.run_once() for s in schedulers))
    assert await run_ats(apps[0]) == [T0, T0 + 60, T0 + 120, T0 + 180]
