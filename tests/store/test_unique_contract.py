"""Unique keys, idempotency records and bulk actions: the store contract, on both stores."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest

from jobhandler.model.errors import DuplicateJob
from jobhandler.model.jobs import JobStatus, NewJob, Outcome, Transition
from jobhandler.model.records import IdempotencyKeyTaken, IdempotencyRecord, JobFilter
from jobhandler.settings import Settings
from jobhandler.store import Store, open_store

NOW = 1_900_000_000.0


def new_job(key: str | None = None, until: float | None = None, **fields: object) -> NewJob:
    job = NewJob(
        id=str(uuid.uuid4()),
        task="t",
        queue="default",
        payload="p",
        priority=0,
        max_attempts=3,
        timeout=None,
        run_at=NOW,
        unique_key=key,
        unique_until=until,
    )
    return replace(job, **fields)  # type: ignore[arg-type]


async def finish(store: Store, job_id: str) -> None:
    (job,) = await store.claim_jobs(["default"], "w1", 1, NOW, 30)
    assert job.id == job_id
    outcome = Outcome(job.id, job.attempt, Transition.COMPLETE, result="ok")
    assert await store.finish_jobs([outcome], NOW) == [True]


async def test_a_live_key_is_held_until_its_job_ends(store: Store) -> None:
    first = new_job("k")
    (stored,) = await store.insert_jobs([first], NOW)
    assert stored.id == first.id and stored.unique_key == "k"
    (again,) = await store.insert_jobs([new_job("k")], NOW)
    assert again.id == first.id  # the holder answers; nothing new was stored
    page = await store.list_jobs(JobFilter(), 10, None)
    assert [j.id for j in page.jobs] == [first.id]
    await finish(store, first.id)
    later = new_job("k")
    (stored,) = await store.insert_jobs([later], NOW)
    assert stored.id == later.id  # the job ended: the key is free


async def test_a_batch_reports_its_duplicates_and_stores_the_rest(store: Store) -> None:
    held = new_job("a")
    await store.insert_jobs([held], NOW)
    batch = [new_job("a"), new_job(), new_job("b"), new_job("b")]
    stored = await store.insert_jobs(batch, NOW)
    assert [j.id for j in stored] == [held.id, batch[1].id, batch[2].id, batch[2].id]
    page = await store.list_jobs(JobFilter(), 10, None)
    assert len(page.jobs) == 3


async def test_a_window_key_is_held_for_its_window_whatever_the_job_does(store: Store) -> None:
    first = new_job("w", until=NOW + 60)
    await store.insert_jobs([first], NOW)
    await finish(store, first.id)
    (again,) = await store.insert_jobs([new_job("w", until=NOW + 70)], NOW + 30)
    assert again.id == first.id and again.status is JobStatus.COMPLETED
    after = new_job("w", until=NOW + 200)
    (stored,) = await store.insert_jobs([after], NOW + 61)  # the window ran out
    assert stored.id == after.id
    # A live-scoped key of the same text is another scope.
    live = new_job("w")
    assert (await store.insert_jobs([live], NOW + 61))[0].id == live.id


async def test_a_deleted_jobs_window_frees_its_key(store: Store) -> None:
    first = new_job("d", until=NOW + 600)
    await store.insert_jobs([first], NOW)
    await finish(store, first.id)
    assert await store.delete_job(first.id)
    second = new_job("d", until=NOW + 600)
    assert (await store.insert_jobs([second], NOW + 1))[0].id == second.id


async def test_expired_windows_and_old_records_are_pruned(store: Store) -> None:
    await store.insert_jobs([new_job("x", until=NOW + 10), new_job("y", until=NOW + 99)], NOW)
    record = IdempotencyRecord("anonymous", "key-1", "f", False, (), NOW)
    await store.insert_jobs([new_job()], NOW, idempotency=[record])
    assert await store.prune_keys(NOW + 50, NOW - 1, 100) == 1  # the window of x
    assert await store.get_idempotency("anonymous", "key-1") is not None
    assert await store.prune_keys(NOW + 50, NOW + 1, 100) == 1  # the record
    assert await store.get_idempotency("anonymous", "key-1") is None


async def test_an_idempotency_key_is_stored_once_with_its_jobs(store: Store) -> None:
    job = new_job("u")
    items = ((job.id, "u", False),)
    record = IdempotencyRecord("owner", "key", "fp", True, items, NOW)
    await store.insert_jobs([job], NOW, idempotency=[record])
    assert await store.get_idempotency("owner", "key") == record
    assert await store.get_idempotency("someone else", "key") is None
    with pytest.raises(IdempotencyKeyTaken):
        await store.insert_jobs([new_job()], NOW, idempotency=[record])
    assert len((await store.list_jobs(JobFilter(), 10, None)).jobs) == 1  # nothing more
    dup = new_job("u")
    other = IdempotencyRecord("owner", "key2", "fp", False, ((dup.id, "u", False),), NOW)
    await store.insert_jobs([dup], NOW, idempotency=[other])
    assert [j.id for j in await store.idempotent_jobs(other)] == [job.id]  # type: ignore[union-attr]
    with pytest.raises(DuplicateJob):
        await store.insert_jobs([replace(job, unique_key=None)], NOW)  # an id taken still is


async def test_concurrent_submits_of_one_key_create_one_job(database_url: str) -> None:
    """Separate stores (connections, on PostgreSQL pools) racing, as separate servers would."""
    stores = [open_store(Settings(database_url=database_url)) for _ in range(4)]
    await stores[0].migrate()
    try:
        for key, until in (("race", None), ("race-window", NOW + 60)):
            answers = await asyncio.gather(
                *(s.insert_jobs([new_job(key, until)], NOW) for s in stores for _ in range(5))
            )
            assert len({job.id for (job,) in answers}) == 1
        page = await stores[0].list_jobs(JobFilter(), 100, None)
        assert len(page.jobs) == 2
    finally:
        for s in stores:
            await s.close()


async def bulk(store: Store, action: str, where: JobFilter, limit: int = 2) -> int:
    total, after = 0, 0
    while True:
        step = await store.bulk_step(action, where, after, limit, NOW + 1)  # type: ignore[arg-type]
        total += step.changed
        if step.next_after is None:
            return total
        after = step.next_after


async def test_bulk_actions_change_only_what_the_filter_and_state_machine_allow(
    store: Store,
) -> None:
    other = new_job(queue="other")
    jobs = [new_job() for _ in range(5)]
    await store.insert_jobs([*jobs, other], NOW)
    (running,) = await store.claim_jobs(["default"], "w1", 1, NOW, 30)
    assert await bulk(store, "delete", JobFilter()) == 0  # nothing has finished
    assert await bulk(store, "cancel", JobFilter(queue="default")) == 5
    statuses = await store.job_statuses([j.id for j in [*jobs, other]])
    assert statuses[other.id] is JobStatus.QUEUED
    assert statuses[running.id] is JobStatus.PROCESSING  # flagged for its worker
    assert (await store.get_job(running.id)).cancel_requested  # type: ignore[union-attr]
    assert await bulk(store, "cancel", JobFilter(queue="default")) == 0  # flagged once
    assert await bulk(store, "retry", JobFilter(statuses=frozenset({JobStatus.CANCELLED}))) == 4
    assert await bulk(store, "retry", JobFilter()) == 0
    await bulk(store, "cancel", JobFilter())
    assert await bulk(store, "delete", JobFilter(created_before=NOW)) == 0
    assert await bulk(store, "delete", JobFilter(created_before=NOW + 1), limit=1000) == 5
    assert len((await store.list_jobs(JobFilter(), 100, None)).jobs) == 1  # the running one
