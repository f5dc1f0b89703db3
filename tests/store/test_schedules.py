"""The store's part of periodic jobs, on both stores: one job per due time, pause kept."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest

from jobhandler.model.jobs import JobStatus, NewJob
from jobhandler.model.records import JobFilter, ScheduleView
from jobhandler.model.schedules import ScheduleNotFound
from jobhandler.settings import Settings
from jobhandler.store import Store, open_store

NOW = 1_900_000_000.0


def view(name: str = "tick", next_run_at: float = NOW + 60, **changes: object) -> ScheduleView:
    base = ScheduleView(
        name=name,
        task="t",
        cron=None,
        every=60.0,
        timezone="UTC",
        payload={"n": 1},
        missed="skip",
        paused=False,
        next_run_at=next_run_at,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def job_at(run_at: float) -> NewJob:
    return NewJob(str(uuid.uuid4()), "t", "default", {"n": 1}, 0, 3, None, run_at)


async def jobs_of(store: Store) -> list[float]:
    page = await store.list_jobs(JobFilter(task="t"), 100, None)
    return sorted(j.run_at for j in page.jobs)


async def test_sync_keeps_pause_and_next_run_unless_the_timing_changed(store: Store) -> None:
    await store.sync_schedules([view(), view("other", NOW + 5)], NOW)
    await store.pause_schedule("tick", True, NOW)
    # A restart with the same timing keeps next run and pause; a new payload is taken.
    await store.sync_schedules([view(next_run_at=NOW + 120, payload=[2])], NOW + 60)
    (other, tick) = await store.list_schedules()
    assert (other.name, tick.name) == ("other", "tick")
    assert tick.paused and tick.next_run_at == NOW + 60 and tick.payload == [2]
    # A new timing starts from the next run it gives.
    await store.sync_schedules([view(every=None, cron="* * * * *", next_run_at=NOW + 7)], NOW)
    (_, tick) = await store.list_schedules()
    assert (tick.cron, tick.every, tick.next_run_at, tick.paused) == (
        "* * * * *",
        None,
        NOW + 7,
        True,
    )


async def test_fire_makes_one_job_and_moves_the_next_run(store: Store) -> None:
    await store.sync_schedules([view(next_run_at=NOW)], NOW)
    assert await store.fire_schedule("tick", NOW, job_at(NOW), NOW + 60, NOW + 0.01)
    # A second scheduler that read the same row loses: no second job for that due time.
    assert not await store.fire_schedule("tick", NOW, job_at(NOW), NOW + 60, NOW + 0.02)
    assert await jobs_of(store) == [NOW]
    (tick,) = await store.list_schedules()
    assert (tick.next_run_at, tick.last_run_at) == (NOW + 60, NOW)
    job = await store.get_job(tick.last_job_id or "")
    assert job is not None and job.status is JobStatus.QUEUED and job.payload == {"n": 1}


async def test_fire_never_repeats_or_goes_back_to_a_run_already_made(store: Store) -> None:
    await store.sync_schedules([view(next_run_at=NOW)], NOW)
    assert await store.fire_schedule("tick", NOW, job_at(NOW), NOW + 60, NOW)
    # Even with next run moved back (a changed timing, a host whose clock is behind).
    await store.sync_schedules([view(every=30.0, next_run_at=NOW)], NOW)
    assert not await store.fire_schedule("tick", NOW, job_at(NOW), NOW + 30, NOW)
    assert await jobs_of(store) == [NOW]


async def test_a_paused_schedule_makes_no_job_but_can_be_advanced(store: Store) -> None:
    await store.sync_schedules([view(next_run_at=NOW)], NOW)
    paused = await store.pause_schedule("tick", True, NOW)
    assert paused.paused
    assert not await store.fire_schedule("tick", NOW, job_at(NOW), NOW + 60, NOW)
    assert await store.advance_schedule("tick", NOW, NOW + 60, NOW)
    assert not await store.advance_schedule("tick", NOW, NOW + 60, NOW)  # compare-and-set
    resumed = await store.pause_schedule("tick", False, NOW)
    assert not resumed.paused and resumed.next_run_at == NOW + 60
    assert await jobs_of(store) == []
    with pytest.raises(ScheduleNotFound):
        await store.pause_schedule("nope", True, NOW)


async def test_racing_schedulers_make_exactly_one_job_per_due_time(
    store: Store, database_url: str
) -> None:
    await store.sync_schedules([view(next_run_at=NOW)], NOW)
    others = [open_store(Settings(database_url=database_url)) for _ in range(3)]
    try:
        for due in (NOW, NOW + 60, NOW + 120):
            wins = await asyncio.gather(
                *(s.fire_schedule("tick", due, job_at(due), due + 60, due) for s in others)
            )
            assert sum(won is not None for won in wins) == 1
    finally:
        for other in others:
            await other.close()
    assert await jobs_of(store) == [NOW, NOW + 60, NOW + 120]
